"""A run in a child process, followed from a background thread through its run.json.

The run is the `jupyter-mlops run` command that ``launcher.prepare_run`` builds, so it
behaves as in a terminal, and a crash in it (or in a library it loads) can't take the kernel
down. Following it is polling ``history.load_run``: the runner rewrites run.json at every
change, and reading it is how every other view of a run (CLI, server) works too.

Why a thread rather than an asyncio task on the kernel's loop: the loop only turns between
cells, so a task would freeze while the user runs a long cell, or calls ``panel.wait()``,
and a panel outside a kernel (a test, a script) has no loop at all. Widget updates from a
thread are sent on the kernel's IOPub channel, which is thread-safe.

As in the Jupyter server, only so many runs of one kernel's panels run at once (`SLOTS`, as
many as the machine has cores); the others wait, queued, in the order they were started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..run.child import PreparedRun
from ..run.history import load_run
from ..run.orphans import owner_environment
from ..run.runstate import RUN_CANCELLED, RUN_FAILED, RUN_RUNNING, STATE_FILE, RunState

POLL_SECONDS = 0.5


class RunSlots:
    """At most `size` runs at once; the others wait in the order they asked."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._running = 0
        self._waiting: list[object] = []
        self._changed = threading.Condition()

    def acquire(self, ticket: object, cancelled: Callable[[], bool]) -> bool:
        """Wait for a slot; False (and no slot) once `cancelled()` says so."""
        with self._changed:
            self._waiting.append(ticket)
            while not cancelled() and (self._waiting[0] is not ticket or self.full):
                self._changed.wait(POLL_SECONDS)
            self._waiting.remove(ticket)
            self._changed.notify_all()
            if cancelled():
                return False
            self._running += 1
            return True

    @property
    def full(self) -> bool:
        return self._running >= self.size

    def release(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()


SLOTS = RunSlots(os.cpu_count() or 1)


@dataclass(frozen=True)
class RunEnd:
    status: str  # succeeded, failed or cancelled
    state: RunState | None  # None when the command stopped before the run began
    message: str | None  # why it failed or was cancelled


class RunProcess:
    """Start a prepared run and report its state until it ends, from a daemon thread.

    ``on_state`` gets each state read while the run goes on; ``on_end`` gets the end, once,
    before ``finished`` is set, so whoever waits on ``finished`` sees the callbacks' effects.
    ``on_queued`` is called when the run has to wait for one of the `SLOTS`.
    """

    def __init__(
        self,
        prepared: PreparedRun,
        cwd: Path,
        on_state: Callable[[RunState], None],
        on_end: Callable[[RunEnd], None],
        interval: float = POLL_SECONDS,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.prepared = prepared
        self.finished = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None  # None while queued
        self._cwd = cwd
        self._on_state = on_state
        self._on_end = on_end
        self._on_queued = on_queued
        self._interval = interval
        self._cancelled = False
        # A kernel that shuts down (restart, close) stops its runs, as the server does.
        self._started: list[subprocess.Popen[bytes]] = []
        weakref.finalize(self, _terminate_all, self._started)
        threading.Thread(
            target=self._follow, name=f"jupyter-mlops run {prepared.run_id}", daemon=True
        ).start()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """SIGTERM: the runner kills its kernels and marks its MLflow runs FAILED. A queued
        run never starts."""
        self._cancelled = True
        _terminate_all(self._started)

    def _start(self) -> subprocess.Popen[bytes]:
        with open(self.prepared.log, "wb") as log:
            # Its own session: interrupting the kernel (SIGINT to its process group) must
            # not stop a run the user only cancels with the Cancel button. It stops with
            # this kernel, though, however the kernel ends (SIGKILL included).
            process = subprocess.Popen(
                self.prepared.command,
                cwd=self._cwd,
                env=owner_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._started.append(process)
        return process

    def _follow(self) -> None:
        slots = SLOTS  # the one it took a slot from gets it back, even if SLOTS is replaced
        if slots.full:
            self._on_queued()
        if not slots.acquire(self, lambda: self._cancelled):
            try:
                self._on_end(RunEnd(RUN_CANCELLED, None, "it was cancelled while queued"))
            finally:
                self.finished.set()
            return
        try:
            self.process = self._start()
        except OSError as error:
            slots.release()
            try:
                self._on_end(RunEnd(RUN_FAILED, None, f"could not start the run: {error}"))
            finally:
                self.finished.set()
            return
        if self._cancelled:  # cancelled while it started
            _terminate(self.process)
        try:
            while self.process.poll() is None:
                state = self._read()
                if state is not None:
                    self._on_state(state)
                time.sleep(self._interval)
        finally:
            self.process.wait()
            slots.release()
            try:
                self._on_end(self._end())
            finally:
                self.finished.set()

    def _read(self) -> RunState | None:
        if not (self.prepared.folder / STATE_FILE).is_file():
            return None  # the command is still starting
        try:
            return load_run(self.prepared.folder, self.prepared.tracking_uri or None)
        except (OSError, ValueError, TypeError):
            return None

    def _end(self) -> RunEnd:
        state = self._read()  # a runner that died mid-run is marked failed by load_run
        if state is not None:
            status = RUN_FAILED if state.status == RUN_RUNNING else state.status
            return RunEnd(status, state, state.error.message if state.error else None)
        if self._cancelled:
            return RunEnd(RUN_CANCELLED, None, "it was cancelled before it started")
        code = self.process.returncode if self.process else None
        return RunEnd(
            RUN_FAILED,
            None,
            _last_line(self.prepared.log)
            or f"the run command exited with code {code} before it started",
        )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def _terminate_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        _terminate(process)


def _last_line(path: Path) -> str:
    """The command's last words, e.g. `error: ...` when it refused the run."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""
