"""A sweep in MLflow: one run of its own, with each trial's pipeline run nested under it.

MLflow's UI lists the trials under the sweep's run and compares them (parallel coordinates,
scatter, the parameters and metrics of each) once they are selected; the sweep's run holds
what was swept, the objective, the table of trials and the best value. Plain data in, plain
data out: the sweep (``sweeps/``) decides, this module records.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .card import param_text
from .client import TAG_PREFIX, current_user
from .runs import PipelineTracker

SWEEP_TAG = TAG_PREFIX + "sweep"  # the sweep's id, on its run (trials name it as their parent)
BEST_TRIAL_TAG = TAG_PREFIX + "best_trial_run"


def start_sweep(
    tracker: PipelineTracker,
    sweep_id: str,
    space: dict[str, str],
    settings: dict[str, Any],
    trials: int,
) -> str:
    """Create the sweep's run; `settings` (metric, direction, seed, fixed values) become
    its parameters beside the swept parameters' candidates."""
    experiment = tracker.experiment()
    tracker.experiment_id = experiment
    source = tracker.bundle.source_path
    run = tracker.client.create_run(
        experiment,
        tags={
            "mlflow.runName": f"{tracker.bundle.name} sweep · {trials} trials",
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.user": current_user(),
            "mlflow.source.name": str(source) if source else tracker.bundle.name,
            TAG_PREFIX + "pipeline": tracker.bundle.name,
            SWEEP_TAG: sweep_id,
        },
    )
    from mlflow.entities import Param

    run_id = str(run.info.run_id)
    params = {f"sweep.{name}": text for name, text in space.items()}
    params.update({f"sweep.{key}": param_text(value) for key, value in settings.items()})
    tracker.client.log_batch(run_id, params=[Param(k, param_text(v)) for k, v in params.items()])
    return run_id


def resume_sweep(tracker: PipelineTracker, run_id: str) -> None:
    """The sweep's run is running again (an interrupted sweep resumed)."""
    tracker.experiment_id = tracker.client.get_run(run_id).info.experiment_id
    tracker.client.update_run(run_id, status="RUNNING")


def end_sweep(
    tracker: PipelineTracker,
    run_id: str,
    metrics: dict[str, float],
    tags: dict[str, str],
    files: list[Path],
    status: str,
) -> None:
    """Record the sweep's outcome and end its run (FINISHED, FAILED or KILLED) whatever
    fails before, so it never stays RUNNING."""
    from mlflow.entities import Metric

    try:
        now = int(time.time() * 1000)
        batch = [Metric(key, value, now, 0) for key, value in metrics.items()]
        if batch:
            tracker.client.log_batch(run_id, metrics=batch)
        for key, value in tags.items():
            tracker.client.set_tag(run_id, key, value)
        for path in files:
            tracker.client.log_artifact(run_id, str(path))
    finally:
        tracker.client.set_terminated(run_id, status)
