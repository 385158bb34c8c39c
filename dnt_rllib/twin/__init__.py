"""The digital network twin: the predictor behind eq. (4).

``make_twin(config)`` returns the twin a config asks for: the hold-last twin, or a
pretrained GRU twin from the twin cache, trained once if missing: the paper's joint GRU over
the whole state (eqs. 6–12, ``gru``) or one GRU cell shared by all users (``gru_shared``).
"""

from __future__ import annotations

from dnt_rllib.config import SystemConfig
from dnt_rllib.twin.base import HoldLastTwin, Twin

__all__ = ["HoldLastTwin", "Twin", "make_twin"]


def make_twin(config: SystemConfig) -> Twin:
    """The twin for ``config.twin``: 'hold', 'gru' or 'gru_shared' (the GRUs cached, trained
    once if missing)."""
    if config.twin == "hold":
        return HoldLastTwin()
    from dnt_rllib.twin.cache import load_or_train

    return load_or_train(config)
