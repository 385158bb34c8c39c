"""Hand-set MLflow stores for the report's tests, in the layout the MLflow callback writes:
a trained run holds its own figures (``eval/<name>``), and each reference's figures are in a
reference run of its own, found through the trained run's ``dnt.reference_of`` tag."""

from __future__ import annotations

from collections import defaultdict

import mlflow

from dnt_rllib.names import BEST_PERIOD, POLICY, REFERENCE_OF_TAG, REFERENCE_TAG


def log_evaluation(client: mlflow.MlflowClient, run_id: str, figures: dict[str, float]) -> None:
    """Log a trial's final figures, given as ``"<label>/<name>"`` (``policy/return``,
    ``threshold/diff_threshold``, ``best_periodic/best_period``, ``greedy/line`` for a
    reference's learning-curve return): the policy's on the run, each reference's on a
    reference run of this trial's network (one per trial, tagged as the callback does)."""
    run = client.get_run(run_id)
    network = run.data.tags.get(REFERENCE_OF_TAG) or run_id
    client.set_tag(run_id, REFERENCE_OF_TAG, network)
    by_label: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in figures.items():
        label, name = key.split("/", 1)
        by_label[label][name] = value
    for label, named in by_label.items():
        if label == POLICY:
            for name, value in named.items():
                client.log_metric(run_id, f"eval/{name}", value)
            continue
        ref = client.create_run(run.info.experiment_id,
                                tags={REFERENCE_TAG: label, REFERENCE_OF_TAG: network})  # fmt: skip
        ref_id = ref.info.run_id
        for name, value in named.items():
            if name == BEST_PERIOD:
                client.log_param(ref_id, BEST_PERIOD, int(value))
            elif name == "line":
                client.log_metric(ref_id, "curve/return", value, step=1)
            else:
                client.log_metric(ref_id, f"eval/{name}", value)
        client.set_terminated(ref_id)
