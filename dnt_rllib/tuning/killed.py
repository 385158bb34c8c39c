"""A trial whose process Ray killed for memory is retried, like any killed trial.

When Ray's memory monitor (its "OOM killer") kills a worker, the tasks pending on an actor
there fail with :class:`ray.exceptions.OutOfMemoryError` (``ErrorType.OUT_OF_MEMORY``:
the GCS records the actor's death with an OOM context), not with a ``RayActorError``.
Tune's actor manager knows two kinds of failure, ``RayActorError`` (the actor is gone:
the trial is retried under ``FailureConfig(max_failures)``) and ``RayTaskError`` (the
trainable raised); anything else ends the whole experiment with
``RuntimeError: Caught unexpected exception``: ``RayActorManager._actor_task_failed`` in
``ray/air/execution/_internal/actor_manager.py`` (Ray 2.60: line 260, the raise line 290).
A SIGKILL from outside Ray (the kernel's OOM killer, ``kill -9``) gives an
``ActorDiedError`` and is retried; only Ray's own kill stops the experiment. Ray changed
the OOM kill into a system error so that restartable actors restart (issue #28920, PR
#28943), but Tune's trials are not restartable actors and its actor manager still refuses
the OOM error.

:func:`retry_killed_trials` makes the actor manager take such an error for what it
means, the actor's death: it is passed on as an :class:`ActorKilledByRayError` (a
``RayActorError`` holding Ray's message), which Tune counts as one failure of the trial
and retries from the trial's latest checkpoint. Remove it once Tune handles
``OutOfMemoryError`` itself."""

from __future__ import annotations

from typing import Any

from ray.exceptions import (
    NodeDiedError,
    OutOfMemoryError,
    RayActorError,
    WorkerCrashedError,
)

#: Errors a task on an actor gets when Ray killed the actor's process or lost its node,
#: other than ``RayActorError``: all of them mean that the actor is gone.
PROCESS_GONE = (OutOfMemoryError, NodeDiedError, WorkerCrashedError)


class ActorKilledByRayError(RayActorError):
    """The trial's actor was killed by Ray (its memory monitor, or its node was lost);
    the message is Ray's, e.g. "1 worker(s) were killed due to the node running low on
    memory…"."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(error_msg=f"{type(cause).__name__}: {cause}")


def as_actor_death(exception: BaseException) -> BaseException:
    """``exception`` as Tune should see it: an :class:`ActorKilledByRayError` for an error of
    :data:`PROCESS_GONE`, any other exception unchanged."""
    if isinstance(exception, PROCESS_GONE) and not isinstance(exception, RayActorError):
        return ActorKilledByRayError(exception)
    return exception


def retry_killed_trials() -> None:
    """Wrap ``RayActorManager._actor_task_failed`` so that an actor killed by Ray is an
    actor failure (see the module's text). In the driver, before ``Tuner.fit``; idempotent."""
    from ray.air.execution._internal.actor_manager import RayActorManager

    original = RayActorManager._actor_task_failed
    if getattr(original, "_dnt_retries_killed", False):
        return

    def _actor_task_failed(self: Any, tracked_actor_task: Any, exception: Exception) -> None:
        original(self, tracked_actor_task, as_actor_death(exception))

    _actor_task_failed._dnt_retries_killed = True  # type: ignore[attr-defined]
    RayActorManager._actor_task_failed = _actor_task_failed  # type: ignore[method-assign]
