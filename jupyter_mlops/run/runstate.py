"""The state of one pipeline run, kept in ``<run dir>/run.json``.

The runner rewrites the file (atomically) at every change, so anything can watch a run
without talking to it: the CLI's progress display, the Jupyter server's ``GET runs/{id}``,
a CI job that inspects a run after the fact. Run history is simply the run folders.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_write

STATE_FILE = "run.json"
# A run folder's layout: <runs root>/<pipeline>/<run id>/ holds run.json, the bundle a
# notebook was converted to, the executed notebooks, the logs, and (unless the run was given
# a shared store) the artifact store the stages hand values through.
RUN_BUNDLE = "bundle"
RUN_ARTIFACTS = "artifacts"


def run_folder(runs_root: Path, pipeline: str, run_id: str) -> Path:
    """Where a run's folder is (not created here)."""
    return runs_root / pipeline / run_id


def shared_store(artifact_store: str, pipeline: str, run_id: str) -> str:
    """A run's place in a store shared by machines (a path or an fsspec URL every task of a
    scheduler's run reaches)."""
    return f"{artifact_store.rstrip('/')}/{pipeline}/{run_id}"


def store_location(artifact_store: str | None, folder: Path, pipeline: str, run_id: str) -> str:
    """Where a run's stages hand values over: the shared store given to it, else its folder."""
    if artifact_store:
        return shared_store(artifact_store, pipeline, run_id)
    return str(folder / RUN_ARTIFACTS)


def recorded_store(state: RunState, folder: Path) -> str:
    """The artifact store an earlier run used, as its run.json says (older runs: the folder)."""
    return state.artifact_store or str(folder / RUN_ARTIFACTS)


# Stage statuses, in the order a stage moves through them.
QUEUED, RUNNING, DONE, FAILED, CACHED, SKIPPED, CANCELLED = (
    "queued",
    "running",
    "done",
    "failed",
    "cached",
    "skipped",  # not run because an upstream stage failed or the run was stopped
    "cancelled",
)
# Run statuses.
RUN_RUNNING, RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED = (
    "running",
    "succeeded",
    "failed",
    "cancelled",
)


@dataclass
class StageError:
    message: str
    cell: int | None = None  # index in the source notebook
    line: int | None = None
    exception: str | None = None  # "ValueError: bad input"
    traceback: str | None = None


@dataclass
class StageState:
    name: str
    status: str = QUEUED
    started: float | None = None
    finished: float | None = None
    notebook: str | None = None  # executed notebook, relative to the run folder
    log: str | None = None
    mlflow_run_id: str | None = None
    cached_from: str | None = None
    key: str | None = None  # what its outputs depend on (run.cache.stage_key): lineage
    error: StageError | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # what its `metrics` cell logged
    timings: dict[str, float] = field(default_factory=dict)  # seconds by part (run/timings.py)

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


@dataclass
class RunState:
    id: str
    pipeline: str
    run_dir: str
    status: str = RUN_RUNNING
    created: float = field(default_factory=time.time)
    finished: float | None = None
    source: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    stages: list[StageState] = field(default_factory=list)
    tracking_uri: str | None = None
    experiment_id: str | None = None
    parent_run_id: str | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    error: StageError | None = None
    pid: int = field(default_factory=os.getpid)
    warnings: list[str] = field(default_factory=list)
    artifact_store: str | None = None  # where the stages handed values over
    bundle: str | None = None  # the bundle's folder: what `jupyter-mlops log` re-reads

    def stage(self, name: str) -> StageState:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stage, entry in zip(self.stages, data["stages"], strict=True):
            entry["duration"] = stage.duration
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        data = dict(data)
        stages = []
        for entry in data.pop("stages", []):
            entry = {k: v for k, v in entry.items() if k != "duration"}
            error = entry.pop("error", None)
            stages.append(StageState(**entry, error=StageError(**error) if error else None))
        error = data.pop("error", None)
        return cls(**data, stages=stages, error=StageError(**error) if error else None)


class RunStateFile:
    """Thread-safe owner of a run's state; every update is written through atomically."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.path = Path(state.run_dir) / STATE_FILE
        self._lock = threading.Lock()
        self.save()

    def update(self, stage: str | None = None, **changes: Any) -> None:
        with self._lock:
            target: Any = self.state.stage(stage) if stage else self.state
            for key, value in changes.items():
                setattr(target, key, value)
            self._write()

    def save(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        text = json.dumps(self.state.to_dict(), indent=1, default=str)
        atomic_write(self.path, text, private=True)  # it may hold the tracking URI's password


def read_run(run_dir: str | Path) -> RunState:
    """The state in a run folder, as far as it can be trusted.

    The file may have been written by anyone who can write in the runs folder, so what would
    lead elsewhere is dropped: the run folder is where the file was found, and a stage's log
    or executed notebook is kept only as a relative path inside it.
    """
    folder = Path(run_dir)
    try:
        state = RunState.from_dict(json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
    except (TypeError, AttributeError, KeyError, RecursionError) as error:
        raise ValueError(f"{folder / STATE_FILE} is not a run's state: {error}") from None
    _check_types(state)
    state.run_dir = os.path.abspath(folder)
    real = os.path.realpath(folder)
    for stage in state.stages:
        stage.log = inside_folder(real, stage.log)
        stage.notebook = inside_folder(real, stage.notebook)
    return state


def _check_types(state: RunState) -> None:
    """Raise ValueError unless the fields readers rely on have their types."""
    texts = [state.id, state.pipeline, state.status, *(s.name for s in state.stages)]
    texts += [s.status for s in state.stages]
    numbers = [state.created, *(t for s in state.stages for t in (s.started, s.finished) if t)]
    if (
        not all(isinstance(t, str) for t in texts)
        or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers)
        or not isinstance(state.parameters, dict)
        or not isinstance(state.models, list)
        or not isinstance(state.warnings, list)
        or not isinstance(state.pid, int)
    ):
        raise ValueError(f"run {state.id!r}: a field of its run.json has the wrong type")


def inside_folder(real_folder: str, relative: Any) -> str | None:
    """`relative` if it names a file inside the folder (symlinks resolved), else None."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        return None
    target = os.path.realpath(os.path.join(real_folder, relative))
    return relative if target.startswith(real_folder + os.sep) else None
