"""A run in a child process, followed from a background thread through its run.json.

The run is the `jupyter-mlops run` command that ``child.prepare_run`` builds, so it behaves
as in a terminal, and a crash in it (or in a library it loads) can't take the kernel down.
Following it is polling ``history.load_run``: the runner rewrites run.json at every change,
and reading it is how every other view of a run (CLI, server) works too. How it is spawned,
which runs may start and how a run ended are decided in :mod:`..run.child`, as for the
server's runs; this module holds only what is about threads.

Why a thread rather than an asyncio task on the kernel's loop: the loop only turns between
cells, so a task would freeze while the user runs a long cell, or calls ``panel.wait()``,
and a panel outside a kernel (a test, a script) has no loop at all. Widget updates from a
thread are sent on the kernel's IOPub channel, which is thread-safe.

As in the Jupyter server, only so many runs of one kernel's panels run at once (`SLOTS`, as
many as the machine has cores); the others wait, queued, in the order they were started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from ..run.child import (
    PreparedRun,
    RunEnd,
    RunQueue,
    SpareSlot,
    child_arguments,
    read_log_end,
    run_end,
    spare_request,
    start_error,
)
from ..run.history import load_run
from ..run.runstate import STATE_FILE, RunState

POLL_SECONDS = 0.5


class RunSlots:
    """A `RunQueue` for threads: each run's thread waits its turn on one condition."""

    def __init__(self, size: int) -> None:
        self._queue: RunQueue[object] = RunQueue(size)
        self._changed = threading.Condition()

    def acquire(
        self, ticket: object, cancelled: Callable[[], bool], on_wait: Callable[[], None]
    ) -> bool:
        """Wait for a slot, calling `on_wait` first if there is none free; False (and no
        slot) once `cancelled()` says so."""
        with self._changed:
            self._queue.enqueue(ticket)
            waits = not self._queue.ready(ticket)
        if waits:
            on_wait()  # (a widget update: not while holding the lock every run shares)
        with self._changed:
            while not cancelled() and not self._queue.ready(ticket):
                self._changed.wait(POLL_SECONDS)
            if cancelled():
                self._queue.cancel(ticket)
                self._changed.notify_all()  # the next in line may be ready now
                return False
            self._queue.started(ticket)
            return True

    def cancel(self, ticket: object) -> None:
        """Wake the threads: `ticket`'s own, to see it is cancelled, and the next in line."""
        with self._changed:
            self._queue.cancel(ticket)
            self._changed.notify_all()

    def release(self, ticket: object) -> None:
        with self._changed:
            self._queue.finished(ticket)
            self._changed.notify_all()

    @property
    def busy(self) -> bool:
        """Whether a run runs or waits."""
        with self._changed:
            return self._queue.running > 0 or self._queue.next() is not None


SLOTS = RunSlots(os.cpu_count() or 1)


class SpareRunner:
    """The kernel's runner started ahead (`run/spare.py`) for its panels' next run, as the
    Jupyter server keeps one (`child.SpareSlot` decides). It ends with the kernel (its stdin
    is a pipe the kernel holds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slot: SpareSlot[subprocess.Popen[bytes]] = SpareSlot()

    def take(self, prepared: PreparedRun, cwd: Path) -> subprocess.Popen[bytes] | None:
        """The spare, now `prepared`'s runner; None when there is none fit to be (then the
        caller starts the command afresh)."""
        with self._lock:
            spare, unfit = self._slot.take(cwd)
        if unfit is not None:
            _end(unfit)
        if spare is not None and spare.poll() is None and spare.stdin is not None:
            try:
                spare.stdin.write(spare_request(prepared))
                spare.stdin.close()
                return spare
            except OSError:  # it died meanwhile
                _end(spare)
        return None

    def refill(self, cwd: Path, expected: str, busy: bool) -> None:
        """Start the next spare (expecting a run of the notebook `expected`), unless one
        waits, a run runs or waits (`busy`), or spares are turned off."""
        with self._lock:
            arguments = self._slot.begin(cwd, expected, busy)
            if arguments is None:
                return
            spare = None
            with contextlib.suppress(OSError):  # no spare: the next run starts afresh
                spare = subprocess.Popen(arguments.pop("args"), **arguments)
            self._slot.started(spare)


def _end(spare: subprocess.Popen[bytes]) -> None:
    """Kill a spare runner that won't serve (it waits on its stdin: nothing to lose)."""
    spare.kill()
    spare.wait()


SPARE = SpareRunner()


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
        self._slots = SLOTS  # the one it took a slot from gets it back, even if replaced
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
        self._slots.cancel(self)
        _terminate_all(self._started)

    def _follow(self) -> None:
        if not self._slots.acquire(self, lambda: self._cancelled, self._on_queued):
            self._report(self._end())
            return
        try:
            # Its own session (see child_arguments): interrupting the kernel (SIGINT to its
            # process group) must not stop a run the user only cancels with Cancel.
            self.process = SPARE.take(self.prepared, self._cwd)
            if self.process is None:
                with child_arguments(self.prepared, self._cwd) as arguments:
                    self.process = subprocess.Popen(self.prepared.command, **arguments)
            self._started.append(self.process)
        except OSError as error:
            self._slots.release(self)
            self._report(self._end(start_error(error)))
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
            self._slots.release(self)
            SPARE.refill(self._cwd, self.prepared.notebook, busy=self._slots.busy)  # the next run's
            self._report(self._end())

    def _report(self, end: RunEnd) -> None:
        try:
            self._on_end(end)
        finally:
            self.finished.set()

    def _read(self) -> RunState | None:
        if not (self.prepared.folder / STATE_FILE).is_file():
            return None  # the command is still starting
        try:
            return load_run(self.prepared.folder, self.prepared.tracking_uri or None)
        except (OSError, ValueError, TypeError):
            return None

    def _end(self, error: str | None = None) -> RunEnd:
        spawned = self.process is not None
        return run_end(
            self._read() if spawned else None,  # a runner that died is marked failed
            cancelled=self._cancelled,
            spawned=spawned,
            log_end=read_log_end(self.prepared.log)[0] if spawned else "",
            returncode=self.process.returncode if self.process else None,
            error=error,
        )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def _terminate_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        _terminate(process)
