"""Every name this project logs or writes, in one place: metric keys, MLflow tags and
artifacts, the learning curve's lines, the reference runs, and the files of a trial's
checkpoint. Writers (the trial, the MLflow callback, ``tune``'s summary, the evaluation) and
readers (``report``, ``evaluate --checkpoint``, the tests) import them from here. Nothing
here imports Ray.
"""

from __future__ import annotations

# --- a trial's checkpoint folder ---
TRIAL_FILE = "dnt_trial.json"  # the trial's spec (TrialSpec.to_params), JSON
WEIGHTS_FILE = "policy_weights.pt"  # the policy module's state_dict (tensors only)
ALGORITHM_DIR = "algorithm"  # RLlib's own checkpoint (pickles): read by --resume only
STATE_FILE = "progress.json"  # the trial's clock and episode window, for --resume
EVALUATION_FILE = "evaluation.json"  # the final evaluation's per-episode record

# --- metrics a trial reports each iteration ---
STEP_KEY = "iteration"  # the MLflow step of a trial's metrics
#: Training episodes the reported episode metrics are averaged over.
WINDOW_EPISODES = 100
#: What ``scheduler`` and ``search_alg`` maximise: the latest learning-curve Δ vs threshold.
SEARCH_METRIC = "search/diff_threshold"
#: The scheduler's clock: training seconds, the budget ``stop.time_total_s`` counts.
SCHEDULER_TIME = "wall_time_s"
#: The trained policy's label in ``eval/<label>/<key>`` and ``curve/<label>/<key>``.
POLICY = "policy"
#: The policies a trial's final evaluation scores beside the trained one.
EVAL_LABELS = ("never", "always", "greedy", "threshold", "ceiling", "free_sync")
#: What the final evaluation logs per policy (``eval/<label>/<key>``) from its summary,
#: beside ``diff_threshold`` and ``diff_threshold_ci95`` (paired with ``threshold``).
EVAL_KEYS = ("mean_return", "ci95", "sum_rate", "sync_gap", "sync_fraction", "paired_diff",
             "paired_ci95", "share", "infeasible_syncs")  # fmt: skip
#: The lines drawn under the learning curve (``curve/<label>/mean_return``).
CURVE_LABELS = ("never", "greedy", "best_periodic", "threshold", "ceiling")
BEST_PERIOD = "eval/best_period"  # the k of the best periodic(k) on the evaluation episodes
THRESHOLD_A, THRESHOLD_B = "eval/threshold_a", "eval/threshold_b"  # the fitted rule
EVAL_TABLE = "eval_table"  # the final evaluation as a markdown table (a result, not a metric)


def eval_key(label: str, key: str) -> str:
    """The final evaluation's metric ``key`` of policy ``label``."""
    return f"eval/{label}/{key}"


def curve_key(label: str, key: str = "mean_return") -> str:
    """The learning curve's metric ``key`` of policy ``label``."""
    return f"curve/{label}/{key}"


# --- MLflow ---
TRIAL_TAG = "ray.trial_id"  # a trial's run, found again on --resume
TUNE_TAG = "tune_experiment"  # the Tune experiment folder a trial's run belongs to
PARENT_TAG = "dnt.tune_parent"  # the parent run of one Tune experiment (value: its folder)
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: a child run's parent
RESULTS_ARTIFACT = "results.md"  # the parent's final table, as ``tune`` printed it
FIGURES_ARTIFACTS = "report"  # the parent's folder of the report's figures
BEST_CHECKPOINT_TAG = "best_checkpoint"  # the checkpoint the final evaluation scored
REFERENCE_TAG = "dnt.reference"  # the reference policy a run holds
REFERENCE_OF_TAG = "dnt.reference_of"  # the network and episodes it was scored on (a hash)
EVALUATION_TABLE_ARTIFACT = "evaluation.md"
MODEL_NAME = "policy"  # each scored trial's MLflow model
#: The reference policies logged as runs of their own, once per network and episodes.
REFERENCE_RUNS = ("threshold", "best_periodic", "greedy", "ceiling", "never")
#: What a reference run logs of its policy, under the trained runs' ``eval/policy/<key>``:
#: the evaluation's keys and the Δ vs threshold, not the pairing with the judged reference.
REFERENCE_RUN_KEYS = (*(k for k in EVAL_KEYS if not k.startswith("paired_")), "diff_threshold",
                      "diff_threshold_ci95")  # fmt: skip
#: Reference runs written by ``evaluate`` (not by trials) that ``report`` pairs with trials.
PAIRED_REFERENCE_RUNS = ("lookahead",)
