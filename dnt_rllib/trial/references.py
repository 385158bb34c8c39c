"""The reference policies on a trial's episodes, played once per network and seed range.

Every trial compares its policy with the same references (the baselines, ``periodic(k)``
for k in :data:`~dnt_rllib.policies.TRIAL_PERIODS`, ``threshold``, ``ceiling`` and
``free_sync``) on its learning-curve and its evaluation episodes. Their results depend on
the network (the threshold fit's key: every config field that changes an episode), the
fitted (a, b) and the seeds, not on the learner: the trials of one network (its seeds, its
algorithms, a scheduler's samples) share them. They are cached as
``<twin cache dir>/references-<key>.json`` under a file lock, as the threshold fit is, and
``tune`` plays the missing ones as parallel Ray tasks before any trial starts
(``dnt_rllib.tuning.prepare.prepare_references``); a trial then only plays its own policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dnt_rllib.common import load_or_write_json, short_hash
from dnt_rllib.config import SystemConfig
from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies import TRIAL_PERIODS, ThresholdFit, load_or_fit, reference_policies
from dnt_rllib.policies.threshold import fit_key
from dnt_rllib.scoring import Summary, play_policies

#: Bump when what is played or stored changes, so that old files are not read.
REFERENCES_VERSION = 1


@dataclass(frozen=True)
class References:
    """The references' summaries on one seed range, not yet compared, and the notes on the
    ceiling's replay (:func:`~dnt_rllib.scoring.play_policies`)."""

    summaries: list[Summary]
    notes: list[str]


def references_path(config: SystemConfig, fit: ThresholdFit, seeds: range) -> Path:
    """``<twin cache dir>/references-<16 hex digits>.json``; the digits hash the fit's key,
    the fitted (a, b), the seeds, the periods and :data:`REFERENCES_VERSION`."""
    key = short_hash(
        {
            "network": fit_key(config),
            "rule": [fit.a, fit.b],
            "seeds": [seeds.start, seeds.stop],
            "periods": list(TRIAL_PERIODS),
            "version": REFERENCES_VERSION,
        }
    )
    return (Path(config.twin_cache_dir) / f"references-{key}.json").resolve()


def load_or_play(env: DNTSyncEnv, fit: ThresholdFit, seeds: range) -> References:
    """The references on ``seeds`` from the cache, played once under a file lock if
    missing (an empty range plays nothing)."""
    if not seeds:
        return References([], [])

    def play() -> dict[str, list]:
        summaries, notes = play_policies(env, reference_policies(env, TRIAL_PERIODS, fit), seeds)
        return {"summaries": [s.to_dict() for s in summaries], "notes": notes}

    record = load_or_write_json(references_path(env.config, fit, seeds), play)
    summaries = [Summary(**{**s, "returns": tuple(s["returns"])}) for s in record["summaries"]]
    return References(summaries, list(record["notes"]))


def play_network(config: SystemConfig, seeds: range) -> None:
    """Load the network's threshold fit (fitted once if missing) and play the references on
    ``seeds``: the Ray task ``tune`` runs per network and seed range."""
    env = DNTSyncEnv(config)
    load_or_play(env, load_or_fit(config, env.twin), seeds)
