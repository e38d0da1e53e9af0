"""One stage notebook executed by papermill in a fresh kernel (in the runner's process).

This is the part of a run that touches a kernel: the kernel's start and end, the time limit,
the executed notebook and its HTML for reviewers, and what went wrong when it failed, told in
one paragraph (``failures``). The bookkeeping around it (run.json, MLflow runs, the cache,
when to start) is the runner's, which hands a `StageJob` over and gets a `StageError` back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..files import papermill_path
from .failures import describe_failure
from .kernels import StageKernelManager
from .orphans import Reaper
from .runstate import StageError
from .zygote import Zygote


@dataclass
class StageJob:
    """Everything papermill needs to run one stage notebook."""

    name: str
    notebook: Path  # the bundle's stage notebook
    executed: Path  # where the executed notebook goes
    log: Path  # the kernel's stdout and stderr
    parameters: dict[str, Any]
    kernel_name: str
    cwd: Path  # the notebook's own folder: its relative paths work as in JupyterLab
    env: dict[str, str]
    source_name: str  # the source notebook's file name, for the failure message
    zygote: Zygote | None = None  # forks the kernel; None: a fresh kernel
    launched: float | None = None  # when its kernel was asked for (run/timings.py)
    ended: float | None = None  # when its work was done and its kernel asked to end
    ending: threading.Thread | None = None  # waits for its kernel's end; join before logs


class Watchdog:
    """Kills a stage's kernel when it runs longer than --stage-timeout (counted from when
    its gate opened, not from when its kernel was pre-started)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.fired = False
        self._timer: threading.Timer | None = None

    def start(self, kernel: StageKernelManager | None) -> None:
        if self.seconds and kernel is not None and self._timer is None:
            self._timer = threading.Timer(self.seconds, self._fire, args=(kernel,))
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, kernel: StageKernelManager) -> None:
        self.fired = True
        kernel.kill_now()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def execute(
    job: StageJob,
    watchdog: Watchdog,
    stopping: threading.Event,
    reaper: Reaper,
    admit: Callable[[StageKernelManager], bool],
    release: Callable[[], None],
    finished: Callable[[], bool],
) -> StageError | None:
    """Run the stage notebook; None on success, else what went wrong and where.

    `admit` is called with the kernel before it starts: False (the run is stopping, or the
    stage was stopped at its gate) means it never starts. `release` is called once the kernel
    is gone. `finished` says whether the stage handed its outputs over.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    job.executed.parent.mkdir(parents=True, exist_ok=True)
    job.log.parent.mkdir(parents=True, exist_ok=True)
    stream = open(job.log, "w", encoding="utf-8")  # noqa: SIM115 (closed in `finally`)
    kernel = StageKernelManager(
        kernel_name=job.kernel_name,
        cwd=str(job.cwd),
        env=job.env,
        log=stream,
        reaper=reaper,
        zygote=job.zygote,
    )
    if not admit(kernel):
        stream.close()
        return StageError(f"stage `{job.name}` was cancelled before it started")
    reason = None
    succeeded = False
    job.launched = time.time()
    try:
        papermill.execute_notebook(
            papermill_path(job.notebook),
            papermill_path(job.executed),
            parameters=job.parameters,
            kernel_name=job.kernel_name,
            km=kernel,
            progress_bar=False,
            stdout_file=stream,
            stderr_file=stream,
        )
        # Otherwise the notebook ended without handing its outputs over: `sys.exit(0)` in a
        # cell ends a kernel's execution "successfully" for papermill.
        succeeded = finished()
    except PapermillExecutionError:
        pass
    except Exception as error:  # the kernel died, was killed, or never started
        reason = _reason(error, watchdog, stopping)
    finally:
        watchdog.cancel()
        if succeeded and not stopping.is_set():
            # The stage's work is done: the kernel ends while the next stages start.
            kernel.request_stop()
            job.ended = time.time()
            # No longer the run's to kill on a cancel: its stage is done, and its exit runs
            # the stage's atexit handlers (MLflow flushing what it logged).
            release()
            job.ending = threading.Thread(
                target=_end, args=(kernel, stream), name=f"end {job.name}", daemon=True
            )
            job.ending.start()
        else:
            kernel.shutdown()
            job.ended = time.time()
            stream.close()
            release()
    if succeeded:
        return None
    if watchdog.fired or stopping.is_set():
        reason = _reason(None, watchdog, stopping)
    return describe_failure(job.name, job.executed, job.source_name, reason)


def _end(kernel: StageKernelManager, stream: IO[str]) -> None:
    """Wait for a kernel asked to end; then its log is complete."""
    try:
        kernel.wait_stopped()
    finally:
        stream.close()


def _reason(error: BaseException | None, watchdog: Watchdog, stopping: threading.Event) -> str:
    if watchdog.fired:
        return f"it ran longer than --stage-timeout ({watchdog.seconds:g} s) and was stopped"
    if stopping.is_set():
        return "the run was stopped"
    name = type(error).__name__ if error else "Error"
    if name == "DeadKernelError":
        return (
            "the kernel died (it exited, was killed, or crashed: out of memory, os._exit(), "
            "a crash in native code)"
        )
    return f"{name}: {error}"


def render_html(executed: Path) -> Path | None:
    """The executed notebook as HTML, for reviewers in the MLflow UI; None if impossible."""
    if not executed.is_file():
        return None
    from nbconvert import HTMLExporter

    try:
        body, _ = HTMLExporter().from_filename(str(executed))
    except Exception:  # a notebook nbconvert can't render still has its .ipynb
        return None
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html
