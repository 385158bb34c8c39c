"""A trial actor that Ray killed for memory is an actor failure for Tune (retried under
max_failures), not an unexpected exception that ends the experiment. The end-to-end test
is tests/cluster/test_multinode.py::test_trials_survive_a_sigkill_a_lost_node_and_an_oom_kill."""

from unittest import mock

import pytest
from ray.air.execution._internal.actor_manager import RayActorManager
from ray.exceptions import ActorDiedError, OutOfMemoryError, RayActorError, RayTaskError

from dnt_rllib.tuning.killed import ActorKilledByRayError, as_actor_death, retry_killed_trials

OOM = "1 worker(s) were killed due to the node running low on memory."


def test_an_oom_kill_is_an_actor_death() -> None:
    death = as_actor_death(OutOfMemoryError(OOM))
    assert isinstance(death, ActorKilledByRayError) and isinstance(death, RayActorError)
    assert str(death) == f"OutOfMemoryError: {OOM}"
    assert not death.preempted  # counted as a failure
    died = ActorDiedError()
    assert as_actor_death(died) is died
    task = RayTaskError("train", "Traceback…", ValueError("x"))
    assert as_actor_death(task) is task


def failed_task() -> mock.MagicMock:
    task = mock.MagicMock()
    task._tracked_actor._on_error = mock.MagicMock()
    return task


def test_tunes_actor_manager_fails_the_actor_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # restored after the test, whatever retry_killed_trials does to the class
    monkeypatch.setattr(RayActorManager, "_actor_task_failed", RayActorManager._actor_task_failed)
    manager = mock.MagicMock()
    with pytest.raises(RuntimeError, match="Caught unexpected exception"):  # Ray as it is
        RayActorManager._actor_task_failed(manager, failed_task(), OutOfMemoryError(OOM))
    retry_killed_trials()
    retry_killed_trials()  # once only
    task = failed_task()
    RayActorManager._actor_task_failed(manager, tracked_actor_task=task,
                                       exception=OutOfMemoryError(OOM))  # fmt: skip
    manager._cleanup_actor.assert_called_once_with(tracked_actor=task._tracked_actor)
    (_, error), _ = task._tracked_actor._on_error.call_args
    assert isinstance(error, ActorKilledByRayError) and OOM in str(error)
    (_, error), _ = task._on_error.call_args  # the task's own callback, as for a dead actor
    assert isinstance(error, ActorKilledByRayError)
