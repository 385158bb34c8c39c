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

# --- metrics: one vocabulary for every run, trained or reference ---
STEP_KEY = "iteration"  # the MLflow step of a trial's metrics
#: Training episodes the reported episode metrics are averaged over.
WINDOW_EPISODES = 100
#: What ``scheduler`` and ``search_alg`` maximise: the latest learning-curve Δ vs threshold.
SEARCH_METRIC = "search/diff_threshold"
#: The scheduler's clock: training seconds, the budget ``stop.time_total_s`` counts.
SCHEDULER_TIME = "wall_time_s"
#: The trained policy's label in a trial's per-episode record (``evaluation.json``).
POLICY = "policy"
#: A run's own final figures on the evaluation episodes, ``eval/<name>``, whichever policy
#: the run holds: name → the :class:`~dnt_rllib.scoring.Summary` field it is read from.
#: ``eval/diff_threshold`` (+ ``_ci95``) is the paired difference to the threshold rule;
#: the pairing with the evaluation's judged ``reference`` stays in ``evaluation.json``.
EVAL_FIELDS = {
    "return": "mean_return",
    "return_ci95": "ci95",
    "share": "share",
    "sync_fraction": "sync_fraction",
    "sum_rate": "sum_rate",
    "sync_gap": "sync_gap",
    "infeasible_syncs": "infeasible_syncs",
}
#: A run's learning-curve figures on the curve episodes, ``curve/<name>``: a trained run's
#: at its curve iterations, a reference run's (constant) at the same steps.
CURVE_NAMES = ("return", "diff_threshold", "diff_threshold_ci95")
#: The references whose curve values are logged under the learning curve.
CURVE_LABELS = ("never", "greedy", "best_periodic", "threshold", "ceiling")
BEST_PERIOD = "best_period"  # the k of the best periodic(k) on the evaluation episodes
THRESHOLD_A, THRESHOLD_B = "threshold_a", "threshold_b"  # the fitted rule
EVAL_TABLE = "eval_table"  # the final evaluation as a markdown table (a result, not a metric)


def eval_key(name: str) -> str:
    """A run's final figure ``name`` (:data:`EVAL_FIELDS`, ``diff_threshold``, ``_ci95``)."""
    return f"eval/{name}"


def curve_key(name: str = "return") -> str:
    """A run's learning-curve figure ``name`` (:data:`CURVE_NAMES`)."""
    return f"curve/{name}"


#: A trial's result carries its references' figures under ``ref/<label>/<metric>`` (and the
#: fitted rule's ``ref/threshold/threshold_a``…): the MLflow callback logs them to the
#: reference runs under ``<metric>``, never to the trained run.
REFERENCE_PREFIX = "ref/"


def reference_metric(label: str, metric: str) -> str:
    """Reference ``label``'s ``metric`` in a trial's result."""
    return f"{REFERENCE_PREFIX}{label}/{metric}"


def split_reference_metric(key: str) -> tuple[str, str] | None:
    """(label, metric) of a :func:`reference_metric`; None for a trained run's own key."""
    if not key.startswith(REFERENCE_PREFIX):
        return None
    label, _, metric = key[len(REFERENCE_PREFIX) :].partition("/")
    return label, metric


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
#: The reference policies logged as runs of their own, once per network and episodes, under
#: the same metric names as a trained run (``eval/return``, ``curve/diff_threshold``…).
REFERENCE_RUNS = ("threshold", "ceiling", "best_periodic", "greedy", "never", "always",
                  "free_sync")  # fmt: skip
#: Reference runs written by ``evaluate`` (not by trials) that ``report`` pairs with trials.
PAIRED_REFERENCE_RUNS = ("lookahead",)
