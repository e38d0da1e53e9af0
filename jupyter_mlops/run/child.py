"""A run as a child process: what the Jupyter server and the widget panel share.

The request is checked here with the same code the command uses (tagging, parameter types,
stage names, that earlier outputs exist), so a bad request is refused before any process
starts, and the child is simply the `jupyter-mlops run` command, behaving exactly as in a
terminal. Whether those outputs were computed with this run's code and parameters needs the
run's bundle written, so the child decides that, and a refusal is a failed run saying why.

Both owners of such a child (the server, on its event loop; a kernel's panels, from
threads) take from here everything that is not about asyncio or threads: how the child is
spawned (`child_arguments`), which runs may start now (`RunQueue`, a pure FIFO decision
each owner drives under its own lock or loop), how a run ended (`run_end`) and the end of
its log (`read_log_end`, `last_line`). This module runs in the owner's process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..parameters import values_json_text
from ..pipeline import prepare
from .history import SPARE_MODULE
from .orphans import owner_environment
from .runner import RunOptions
from .runstate import RUN_CANCELLED, RUN_FAILED, RUN_RUNNING, RunState, run_folder
from .scheduling import default_jobs
from .spare import request_line, usable_seconds

RUNNER_LOG = "runner.log"
LOG_END_BYTES = 4000  # enough for the last words of a command that refused a run


@dataclass(frozen=True)
class PreparedRun:
    run_id: str
    folder: Path  # the run folder; its run.json appears once the child has started
    pipeline: str
    command: list[str]
    tracking_uri: str = ""  # where it logs: the store to tell if its runner dies
    notebook: str = ""  # the notebook it runs: the next run's spare prepares for it

    @property
    def log(self) -> Path:
        return self.folder / RUNNER_LOG


def prepare_run(
    notebook: Path,
    parameters: dict[str, Any],
    runs_dir: Path,
    tracking_uri: str,
    jobs: int | None = None,
    from_stage: str | None = None,
    only: list[str] | None = None,
) -> PreparedRun:
    """Check a run request and return the command that runs it. Raises BadInput.

    The checks are the command's own (``pipeline.prepare``), made here so that a bad request
    is refused before any process starts; the child then runs them again, as a terminal would.
    """
    jobs = jobs or default_jobs()
    options = RunOptions(
        jobs=jobs,
        from_stage=from_stage,
        only=list(only or []),
        runs_root=runs_dir,
    )
    runner = prepare(notebook, options, parameters)  # checks only: nothing is written
    run_id, values = runner.run_id, runner.options.parameters
    folder = run_folder(runs_dir, runner.bundle.name, run_id)
    folder.mkdir(parents=True)
    request = folder / "parameters.json"  # JSON, as checked: `run -f x.json` reads JSON
    request.write_text(values_json_text(values), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "jupyter_mlops",
        "run",
        str(notebook),
        "--run-id",
        run_id,
        "--runs-dir",
        str(runs_dir),
        "--tracking-uri",
        tracking_uri,
        "-f",
        str(request),
        "--jobs",
        str(jobs),
    ]
    if from_stage:
        command += ["--from", from_stage]
    for stage in options.only:
        command += ["--only", stage]
    return PreparedRun(run_id, folder, runner.bundle.name, command, tracking_uri, str(notebook))


# --- spawning ---------------------------------------------------------------------------


@contextlib.contextmanager
def child_arguments(prepared: PreparedRun, cwd: Path) -> Iterator[dict[str, Any]]:
    """The keyword arguments that start `prepared.command` (for ``subprocess.Popen`` and
    ``asyncio.create_subprocess_exec`` alike), its log open for the child while in the block.

    The child writes stdout and stderr to the run's runner.log. It stops with this process
    however this process ends (SIGKILL included): the runner watches the owner that
    ``owner_environment`` names, and stops as a cancel does. It has a session of its own,
    so a Ctrl-C meant for its owner (a kernel interrupted, a server's "shut down?" prompt)
    doesn't stop it: only a cancel (SIGTERM) or its owner's end do.
    """
    with open(prepared.log, "wb") as log:
        yield {
            "cwd": cwd,
            "env": owner_environment(),
            "stdout": log,
            "stderr": subprocess.STDOUT,
            "stdin": subprocess.DEVNULL,
            "start_new_session": True,
        }


NO_SPARE_ENV = "JUPYTER_MLOPS_NO_SPARE"  # set: every run starts its command afresh


def spare_wanted() -> bool:
    """Whether an owner keeps a runner started ahead (`spare`) for its next run."""
    return os.environ.get(NO_SPARE_ENV, "").strip() in ("", "0")


def spare_arguments(cwd: Path, expected: str = "") -> dict[str, Any]:
    """The command and keyword arguments that start a spare runner (`spare`) for runs in
    `cwd`, expecting a run of the notebook `expected` (for ``subprocess.Popen`` and
    ``asyncio.create_subprocess_exec`` alike): as a run's (`child_arguments`), except that
    its output goes to a run's log only once it has a run, and its stdin is the pipe its
    request comes through."""
    return {
        "args": [sys.executable, "-m", SPARE_MODULE, *([expected] if expected else [])],
        "cwd": cwd,
        "env": owner_environment(),
        "stdin": subprocess.PIPE,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "start_new_session": True,
    }


def spare_conditions() -> str:
    """What a spare runner took from its owner when it started: the environment, and what
    was installed. A spare whose conditions are no longer its owner's is not used (a cell
    set an environment variable, or `%pip install` ran, since): a fresh command is."""
    from ..requirements import installed_fingerprint

    environment = json.dumps(sorted(owner_environment().items()))
    return f"{installed_fingerprint()}:{hashlib.sha256(environment.encode()).hexdigest()}"


def spare_request(prepared: PreparedRun) -> bytes:
    """What a spare reads to become `prepared`'s command; its log exists from now on, as a
    spawned child's does."""
    prepared.log.write_bytes(b"")
    return request_line(prepared.command, str(prepared.log), owner_environment())


P = TypeVar("P")


class SpareSlot(Generic[P]):
    """An owner's runner started ahead (`run/spare.py`): the decisions about it, no process
    handling inside, as `RunQueue`. The server drives it from its event loop, a kernel's
    panels under a lock; each owner only spawns, writes to and ends the processes.

    An owner keeps at most one spare, started while no run runs or waits (a spare's imports
    would slow them), for runs in the folder it started in, and hands it a run only under
    the conditions it started under (`spare_conditions`) and well before it ends by itself
    (`spare.usable_seconds`).
    """

    def __init__(self) -> None:
        self._spare: P | None = None
        self._cwd: Path | None = None
        self._conditions = ""
        self._starting: tuple[Path, str] | None = None  # (cwd, conditions) while one starts
        self._started_at = 0.0  # (time.monotonic) its spare ends by itself after a while
        self._closed = False

    def take(self, cwd: Path) -> tuple[P | None, P | None]:
        """The spare fit to serve a run in `cwd` now (or None), and a spare the owner must
        end because it isn't (started in another folder or under other conditions)."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None, None
        fresh = time.monotonic() - self._started_at < usable_seconds()
        if fresh and self._cwd == cwd and self._conditions == spare_conditions():
            return spare, None
        return None, spare

    def begin(self, cwd: Path, expected: str, busy: bool) -> dict[str, Any] | None:
        """The arguments to start the next spare with (`spare_arguments`), expecting a run
        of the notebook `expected`; None when none is wanted now: one waits or starts, a run
        runs or waits (`busy`), the owner is stopping, or spares are turned off. After a
        start the owner calls `started`, whether the process started or not."""
        if busy or self._closed or self._spare is not None or self._starting is not None:
            return None
        if not spare_wanted():
            return None
        self._starting = (cwd, spare_conditions())
        return spare_arguments(cwd, expected)

    def started(self, spare: P | None) -> P | None:
        """Keep `spare` (None: it could not start) for the next run; it is handed back for
        the owner to end if the owner began to stop while it started."""
        starting, self._starting = self._starting, None
        if spare is None or starting is None or self._closed:
            return spare
        self._spare, self._started_at = spare, time.monotonic()
        self._cwd, self._conditions = starting
        return None

    def close(self) -> P | None:
        """The owner stops: no spare from now on; the waiting one (if any) to end."""
        self._closed = True
        spare, self._spare = self._spare, None
        return spare


def start_error(error: OSError) -> str:
    """Why a child could not be spawned (its folder removed meanwhile, say)."""
    return f"the run could not start: {error}"


# --- which runs may start ---------------------------------------------------------------

K = TypeVar("K", bound=Hashable)


class RunQueue(Generic[K]):
    """At most `size` runs at once; the others wait in the order they came, and a waiting
    run can be cancelled.

    Decisions only, no thread or event loop inside: the server drives it from its event
    loop, a kernel's panels from threads under one lock. A run takes its slot when it is
    `started` (before its process is spawned, so owners that overlap while a process
    starts never exceed `size`) and gives it back when `finished`.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"at most {size} runs at once: give at least 1")
        self.size = size
        self._waiting: list[K] = []
        self._running: set[K] = set()

    def enqueue(self, key: K) -> None:
        """`key` waits for a slot, behind those already waiting."""
        if key in self._running or key in self._waiting:
            raise ValueError(f"{key!r} is already queued or running")
        self._waiting.append(key)

    def next(self) -> K | None:
        """The run that may start now: the oldest waiting one, if a slot is free."""
        if self._waiting and len(self._running) < self.size:
            return self._waiting[0]
        return None

    def ready(self, key: K) -> bool:
        """Whether `key` may start now."""
        return self._waiting != [] and self.next() == key

    def started(self, key: K) -> None:
        """`key` leaves the queue and takes a slot; it must be the one `next` gives."""
        if not self.ready(key):
            raise ValueError(f"{key!r} is not the run that may start now")
        self._waiting.pop(0)
        self._running.add(key)

    def finished(self, key: K) -> None:
        """`key` gives its slot back (its process ended, or could not be spawned)."""
        if key not in self._running:
            raise ValueError(f"{key!r} is not running")
        self._running.remove(key)

    def cancel(self, key: K) -> bool:
        """Take `key` out of the queue; False when it isn't waiting (running, or unknown)."""
        if key not in self._waiting:
            return False
        self._waiting.remove(key)
        return True

    def cancel_all(self) -> list[K]:
        """Empty the queue (its owner is stopping); the runs that were waiting, oldest first."""
        waiting, self._waiting = self._waiting, []
        return waiting

    def waiting(self, key: K) -> bool:
        return key in self._waiting

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def full(self) -> bool:
        return len(self._running) >= self.size


# --- how it ended -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunEnd:
    status: str  # succeeded, failed or cancelled
    state: RunState | None  # None when the command stopped before the run began
    message: str | None  # why it failed or was cancelled


def run_end(
    state: RunState | None,
    *,
    cancelled: bool,
    spawned: bool,
    log_end: str = "",
    returncode: int | None = None,
    error: str | None = None,
) -> RunEnd:
    """How a run in a child process ended, once its process has ended (or never will).

    `state` is its run.json as ``history.load_run`` reads it (which marks a run whose
    runner died failed), None when the command stopped before writing one; `cancelled`
    whether its owner asked it to stop; `spawned` whether its process was started;
    `log_end` the end of its runner.log (as the caller may show it: the server masks
    secrets), whose last line says why a command refused the run; `error` why its process
    could not be spawned.
    """
    if state is not None:
        status = state.status
        if status == RUN_RUNNING:  # it exited before writing its end
            status = RUN_CANCELLED if cancelled else RUN_FAILED
        return RunEnd(status, state, state.error.message if state.error else None)
    if error is not None:
        return RunEnd(RUN_FAILED, None, error)
    if cancelled:
        when = "before it started" if spawned else "while queued"
        return RunEnd(RUN_CANCELLED, None, f"the run was cancelled {when}")
    code = "" if returncode is None else f" with code {returncode}"
    return RunEnd(
        RUN_FAILED,
        None,
        last_line(log_end) or f"the run command exited{code} before the run began",
    )


# --- its log ----------------------------------------------------------------------------


def read_log_end(path: str | os.PathLike[str], size: int = LOG_END_BYTES) -> tuple[str, bool]:
    """The last `size` bytes of a log, decoded (a broken character replaced), and whether
    that is less than the whole log; ("", False) when it can't be read."""
    try:
        with open(path, "rb") as stream:
            start = max(0, stream.seek(0, os.SEEK_END) - size)
            stream.seek(start)
            data = stream.read()
    except OSError:
        return "", False
    return data.decode("utf-8", errors="replace"), start > 0


def last_line(text: str) -> str:
    """A log's last words, e.g. `error: ...` when the command refused the run."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
