"""One pipeline run as separate tasks of a scheduler: `begin`, one `stage` per stage, `end`.

Airflow, Kubeflow and similar systems run each stage as its own task, maybe on its own
machine. They share two things: the artifact store (an fsspec URL every task can reach) and
the MLflow tracking server. `begin` creates the parent MLflow run and writes a small
manifest into the run's store (parameters, tracking URI, parent run); each `stage` task
reads it and runs its stage with the ordinary runner, attached to that parent; `end`
collects the stages' outcomes, registers the models when all succeeded, and ends the parent
run FINISHED or FAILED. A scheduler passes nothing but the run id between tasks.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..artifacts import ArtifactStore, open_store
from ..bundle import Bundle
from ..errors import BadInput
from ..pipeline import Pipeline, prepare
from ..tracking import PipelineTracker, RegisteredModel, StageOutcome, resolve_tracking_uri
from .orphans import stop_with_owner
from .runner import PipelineRunner, RunOptions, new_run_id
from .runstate import RunState, shared_store

MANIFEST = "pipeline-run.json"


@dataclass
class PipelineRun:
    """What every task of one scheduled pipeline run needs to know."""

    run_id: str
    pipeline: str
    parent_run_id: str
    tracking_uri: str
    parameters: dict[str, Any]


def run_store(bundle: Bundle, artifact_store: str, run_id: str) -> ArtifactStore:
    """The store of one pipeline run (the same layout the runner uses)."""
    return open_store(shared_store(artifact_store, bundle.name, run_id))


def begin(
    bundle: Bundle,
    parameters: dict[str, Any],
    artifact_store: str,
    tracking_uri: str | None = None,
    run_id: str | None = None,
    nested_in: str | None = None,
) -> PipelineRun:
    """Start a scheduled pipeline run: the parent MLflow run (a sweep's trial when
    `nested_in` names the sweep's run) and the shared manifest."""
    run_id = run_id or new_run_id()
    store = run_store(bundle, artifact_store, run_id)
    tracker = PipelineTracker(resolve_tracking_uri(tracking_uri, near=bundle.root), bundle)
    parent = tracker.start(parameters, Path(store.location), nested_in=nested_in)
    run = PipelineRun(run_id, bundle.name, parent, tracker.tracking_uri, parameters)
    store.put_text(MANIFEST, json.dumps(asdict(run), indent=1))
    return run


def read_run_manifest(bundle: Bundle, artifact_store: str, run_id: str) -> PipelineRun:
    text = run_store(bundle, artifact_store, run_id).get_text(MANIFEST)
    if text is None:
        raise BadInput(
            f"no pipeline run `{run_id}` of `{bundle.name}` in {artifact_store}: run "
            "`jupyter-mlops begin` first and pass the run id it prints"
        )
    return PipelineRun(**json.loads(text))


def run_stage(
    bundle: Bundle,
    stage: str,
    artifact_store: str,
    run_id: str,
    runs_root: Path,
    kernel: str | None = None,
) -> RunState:
    """Run one stage of a scheduled pipeline run. Raises StageFailed when it fails."""
    run = read_run_manifest(bundle, artifact_store, run_id)
    options = RunOptions(
        only=[stage],
        tracking_uri=run.tracking_uri,
        runs_root=runs_root,
        kernel=kernel,
        run_id=run_id,
        artifact_store=artifact_store,
        parent_run_id=run.parent_run_id,
        fork=False,  # one stage per task: a zygote would import every stage's modules for it
    )
    runner = prepare(Pipeline(bundle), options, run.parameters)  # checked as `begin` did
    # Not `runner.run()`: the parent MLflow run is shared by every task and ended by `end`,
    # so an error here fails this task (and its stage's run), never the whole pipeline run.
    runner.start()
    with _stopped_with_task(runner):
        runner.run_stage(stage)
    return runner.finish()


@contextlib.contextmanager
def _stopped_with_task(runner: PipelineRunner) -> Iterator[None]:
    """The stage stops, FAILED, when its task is stopped (SIGTERM: a scheduler's cancel or
    timeout) or the process that started the task ends (a Dask worker killed with its
    machine, `orphans`): its kernel never outlives the task."""

    def terminated(signum: int, frame: Any) -> None:
        runner.stop_now("the task was stopped (SIGTERM)")

    def owner_ended(pid: int) -> None:
        runner.stop_now(f"the process that started this task (pid {pid}) ended")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminated) if main else None
    try:
        with stop_with_owner(owner_ended):
            yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def end(
    bundle: Bundle, artifact_store: str, run_id: str, register: bool = True
) -> tuple[bool, list[RegisteredModel]]:
    """Finish a scheduled pipeline run; returns whether every stage succeeded, and models
    (none when not to `register`: a sweep's trial)."""
    run = read_run_manifest(bundle, artifact_store, run_id)
    store = run_store(bundle, artifact_store, run_id)
    tracker = PipelineTracker(run.tracking_uri, bundle)
    tracker.attach(run.parent_run_id, run.parameters)
    tracker.fail_unfinished_stages()  # every task has ended: none of them can finish its run
    children = tracker.stage_runs()
    outcomes = []
    for name in bundle.stage_names:
        child = children.get(name)
        if child is None:  # its task never ran
            outcomes.append(StageOutcome(name, "", "FAILED", 0.0))
            continue
        record = store.read_record(name) if child.status == "FINISHED" else None
        outcomes.append(StageOutcome(name, child.run_id, child.status, child.duration, record))
    ended = tracker.end(outcomes, register=register)
    return ended.succeeded, ended.models
