"""Every non-learned sync policy, side by side (SPEC "Baselines", "References").

A policy maps the env (what the BS knows: s_t, this slot's interference and its own copy of
the twin, hence ŝ_t) and the observation to an action. Baselines: ``never``, ``always``,
``periodic(k)``, ``greedy``. References: ``threshold`` (the fitted rule to beat),
``lookahead`` (a planner over sampled futures) and ``ceiling`` (perfect foresight; a bound
no policy can beat, played back in the env).
"""

from __future__ import annotations

from dnt_rllib.env import DNTSyncEnv
from dnt_rllib.policies.baselines import Policy, baseline_policies
from dnt_rllib.policies.ceiling import CeilingPolicy
from dnt_rllib.policies.lookahead import LookaheadPolicy
from dnt_rllib.policies.threshold import ThresholdFit, ThresholdRule, load_or_fit

#: The periods k of periodic(k) that every trial evaluates (and may name as reference).
TRIAL_PERIODS = range(2, 11)

__all__ = [
    "TRIAL_PERIODS",
    "CeilingPolicy",
    "LookaheadPolicy",
    "Policy",
    "ThresholdFit",
    "ThresholdRule",
    "baseline_policies",
    "load_or_fit",
    "reference_policies",
]


def reference_policies(
    env: DNTSyncEnv, periods: range | list[int], fit: ThresholdFit, lookahead: int = 0
) -> dict[str, Policy]:
    """The baselines, ``threshold``, ``lookahead`` with K = ``lookahead`` samples (0: left
    out, it costs minutes) and ``ceiling``, by name."""
    policies = baseline_policies(periods)
    policies["threshold"] = fit.rule
    if lookahead > 0:
        policies["lookahead"] = LookaheadPolicy(fit.rule, lookahead)
    policies["ceiling"] = CeilingPolicy(env)
    return policies
