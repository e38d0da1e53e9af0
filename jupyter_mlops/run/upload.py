"""`jupyter-mlops log RUN_DIR`: upload a run's local results to MLflow after the fact.

A run keeps everything it produced in its folder (run.json, the executed notebooks, the
stages' records in its artifact store), so when the tracking server went away during a run,
nothing is lost: once the server is back, this logs what MLflow is missing. It continues
the run's parent run when the server still has it (finishing the stage runs left RUNNING),
or creates a new one, and registers the models when every stage succeeded.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import StageRecord, open_store
from ..bundle import read_bundle
from ..errors import BadInput
from ..tracking import PipelineTracker, StageOutcome, resolve_tracking_uri
from .runstate import (
    CACHED,
    DONE,
    FAILED,
    RUN_FAILED,
    RUN_SUCCEEDED,
    RunStateFile,
    read_run,
    recorded_store,
)

LOGGED = (DONE, CACHED, FAILED)  # stage statuses that have results to log


def upload(run_dir: Path, tracking_uri: str | None = None) -> RunStateFile:
    try:
        state = read_run(run_dir)
    except (OSError, ValueError) as error:
        raise BadInput(f"{run_dir} is not a run folder (no readable run.json: {error})") from None
    if not state.bundle:
        raise BadInput(f"{run_dir} was made by an older version: it doesn't name its bundle")
    bundle = read_bundle(Path(state.bundle))
    tracker = PipelineTracker(resolve_tracking_uri(tracking_uri or state.tracking_uri), bundle)
    owner = RunStateFile(state)
    children = {}
    if state.parent_run_id and tracker.has_run(state.parent_run_id):
        tracker.attach(state.parent_run_id, state.parameters)
        children = tracker.stage_runs()
    else:
        owner.update(parent_run_id=tracker.start(state.parameters, run_dir))
    owner.update(tracking_uri=tracker.tracking_uri, experiment_id=tracker.experiment_id)
    store = open_store(recorded_store(state, run_dir))
    records: dict[str, StageRecord] = {
        s.name: store.read_record(s.name) for s in state.stages if s.status in (DONE, CACHED)
    }
    outcomes = []
    for stage_state in state.stages:
        if stage_state.status not in LOGGED:
            continue
        stage = bundle.stage(stage_state.name)
        child = children.get(stage.name)
        finished = child is not None and child.ended
        run_id = child.run_id if child else tracker.start_stage(stage, bundle.position(stage.name))
        status = "FAILED" if stage_state.status == FAILED else "FINISHED"
        duration = stage_state.duration or 0.0
        record = records.get(stage.name)
        if not finished:
            tracker.log_inputs(run_id, stage, records)
            notebooks = []
            if stage_state.notebook:
                executed = run_dir / stage_state.notebook
                notebooks = [executed, executed.with_suffix(".html")]
            message = stage_state.error.message if stage_state.error else None
            tracker.finish_stage(run_id, status, duration, record, notebooks, message)
        owner.update(stage.name, mlflow_run_id=run_id)
        outcomes.append(StageOutcome(stage.name, run_id, status, duration, record))
    complete = all(s.status in (DONE, CACHED) for s in state.stages)
    models = tracker.end(outcomes, complete=complete).models
    owner.update(
        status=RUN_SUCCEEDED if complete else RUN_FAILED,
        models=[m.to_dict() for m in models],
        error=None if complete else state.error,
    )
    return owner
