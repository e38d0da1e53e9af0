"""Run history: the run folders under a runs root, and runs whose runner died.

A run folder is ``<runs root>/<pipeline>/<run id>/`` with its ``run.json``. A runner killed
with SIGKILL (or a machine that lost power) can't write its own end, so a run still marked
``running`` whose process is gone is *abandoned*: reading the history marks it failed, in
``run.json`` and, when the tracking store is reachable, in MLflow, so nothing stays RUNNING.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from .runstate import (
    CANCELLED,
    QUEUED,
    RUN_FAILED,
    RUN_RUNNING,
    RUNNING,
    STATE_FILE,
    RunState,
    RunStateFile,
    StageError,
    read_run,
)

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def run_folders(runs_root: Path) -> Iterator[Path]:
    """Every run folder, newest first (run ids sort by time)."""
    folders = [p.parent for p in runs_root.glob(f"*/*/{STATE_FILE}")]
    yield from sorted(folders, key=lambda p: p.name, reverse=True)


def find_run(runs_root: Path, run_id: str) -> Path | None:
    if not RUN_ID.fullmatch(run_id):
        return None
    for folder in runs_root.glob(f"*/{run_id}"):
        if (folder / STATE_FILE).is_file():
            return folder
    return None


def runner_alive(pid: int) -> bool:
    """Whether a runner process still runs (and the pid wasn't reused by another program)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file():
        return b"mlops" in cmdline.read_bytes()
    return True


def load_run(folder: Path) -> RunState:
    """A run's state; an abandoned run is marked failed first."""
    state = read_run(folder)
    if state.status == RUN_RUNNING and not runner_alive(state.pid):
        state = mark_abandoned(state)
    return state


def mark_abandoned(state: RunState) -> RunState:
    """Record that a run's runner died: the run and its unfinished stages are failed."""
    message = (
        f"the runner process (pid {state.pid}) ended without finishing the run: it was killed "
        "or the machine stopped"
    )
    owner = RunStateFile(state)
    for stage in state.stages:
        if stage.status in (QUEUED, RUNNING):
            owner.update(stage.name, status=CANCELLED)
    owner.update(status=RUN_FAILED, finished=time.time(), error=StageError(message))
    _fail_in_mlflow(state)
    return state


def _fail_in_mlflow(state: RunState) -> None:
    """Best effort: the tracking server may be the very thing that went away."""
    if not state.tracking_uri or not state.parent_run_id:
        return
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=state.tracking_uri)
        run_ids = [state.parent_run_id, *[s.mlflow_run_id for s in state.stages]]
        for run_id in filter(None, run_ids):
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, "FAILED")
    except Exception:  # unreachable store: run.json still says failed
        pass
