"""Run history: the run folders under a runs root, and runs whose runner died.

A run folder is ``<runs root>/<pipeline>/<run id>/`` with its ``run.json``. A runner killed
with SIGKILL (or a machine that lost power) can't write its own end, so a run still marked
``running`` whose process is gone is *abandoned*: reading the history marks it failed, in
``run.json`` and, when the tracking store is reachable, in MLflow, so nothing stays RUNNING.

A run folder is also data anyone who can write a file there wrote (Jupyter's Contents API is
enough): a symlink may lead out of the runs root, and run.json may name any tracking server
or pid. So only folders really inside the runs root are listed, and MLflow is only told
about a run whose tracking URI is the one the reader itself uses.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
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
    """Every run folder, newest first (run ids sort by time); none outside the runs root."""
    real_root = Path(os.path.realpath(runs_root))
    folders = [
        p.parent
        for p in runs_root.glob(f"*/*/{STATE_FILE}")
        if RUN_ID.fullmatch(p.parent.name) and _inside(real_root, p.parent)
    ]
    yield from sorted(folders, key=lambda p: p.name, reverse=True)


def find_run(runs_root: Path, run_id: str) -> Path | None:
    if not RUN_ID.fullmatch(run_id):
        return None
    real_root = Path(os.path.realpath(runs_root))
    for folder in runs_root.glob(f"*/{run_id}"):
        if (folder / STATE_FILE).is_file() and _inside(real_root, folder):
            return folder
    return None


def _inside(real_root: Path, folder: Path) -> bool:
    """Whether a run folder really is two levels inside the runs root, symlinks resolved."""
    return Path(os.path.realpath(folder)).parent.parent == real_root


def runner_alive(pid: int, run_id: str | None = None) -> bool:
    """Whether a runner process still runs (and the pid wasn't reused by another program).

    With `run_id`, only the runner started for that run (`--run-id` on its command line)
    counts: what a server may signal, given a pid read from a file.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return run_id is None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.is_file():
        return run_id is None
    try:
        words = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    if not any(b"mlops" in word for word in words):
        return False
    if run_id is None or run_id.encode() in words:
        return True
    # A runner started ahead (run/spare.py) got its run after it started: its command line
    # doesn't name it, but its output is that run's log, in the run's folder.
    if SPARE_MODULE.encode() not in words:
        return False
    try:
        return run_id in os.readlink(f"/proc/{pid}/fd/1")
    except OSError:
        return False


SPARE_MODULE = "jupyter_mlops.run.spare"  # how a runner started ahead is started


def load_run(
    folder: Path, tracking_uri: str | AbstractSet[str] | None = None, background: bool = False
) -> RunState:
    """A run's state; an abandoned run is marked failed first.

    MLflow is told too when the run's tracking URI is `tracking_uri` (the reader's own; a
    server's: one of its projects' stores); `background` does that in a thread, for a reader
    that must answer at once (a server).
    """
    state = read_run(folder)
    if state.status == RUN_RUNNING and not runner_alive(state.pid):
        state = mark_abandoned(state, tracking_uri, background)
    return state


def mark_abandoned(
    state: RunState, tracking_uri: str | AbstractSet[str] | None = None, background: bool = False
) -> RunState:
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
    ours = {tracking_uri} if isinstance(tracking_uri, str) else (tracking_uri or set())
    if state.tracking_uri and state.tracking_uri in ours and state.parent_run_id:
        from ..tracking.client import set_fail_fast_defaults
        from ..tracking.runs import fail_abandoned

        set_fail_fast_defaults()  # here, not in the thread: os.environ isn't thread-safe
        args = (
            state.tracking_uri,
            state.parent_run_id,
            state.id,
            [stage.mlflow_run_id for stage in state.stages if stage.mlflow_run_id],
        )
        if background:
            threading.Thread(target=fail_abandoned, args=args, daemon=True).start()
        else:
            fail_abandoned(*args)
    return state
