"""The numpy twin's products run on one BLAS thread wherever it is called."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.data import Normalisation
from dnt_rllib.twin.inference import NumpyGRUTwin, weight_shapes


class Spy(np.ndarray):
    """A weight matrix that records the BLAS thread counts when a product uses it."""

    seen: list[int]

    def __rmatmul__(self, other: np.ndarray) -> np.ndarray:
        Spy.seen += [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return np.matmul(other, self.view(np.ndarray))


def test_predict_uses_one_blas_thread() -> None:
    config = SystemConfig(num_users=3, history=4, twin="hold")
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.3, s) for k, s in weight_shapes(config.state_dim, 8).items()}
    twin = NumpyGRUTwin(weights, Normalisation.from_config(config), config.history)
    twin._w_in = twin._w_in.view(Spy)
    Spy.seen = []
    history = rng.uniform(-40, 40, (64, config.history, config.state_dim))
    with threadpool_limits(2, user_api="blas"):  # a library user's default on 2 cores
        twin.predict(history)
        after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert Spy.seen and set(Spy.seen) == {1}
    assert set(after) == {2}  # the caller's setting is back afterwards
