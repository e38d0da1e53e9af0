"""Nothing a run starts outlives it: not when its owner dies, not when its runner is killed.

A runner stops its kernels itself on Ctrl-C, SIGTERM and at its end. Two deaths take that
chance away, and each has its own answer here:

- Its *owner* dies: the Jupyter server that started it (a SIGKILL, or a SIGTERM once the
  MLflow UI proxy is loaded: jupyter-server-proxy's handler calls ``sys.exit`` and the
  extension's shutdown hook never runs) or the kernel of the widget that started it. The
  owner names itself in ``JUPYTER_MLOPS_STOP_WITH_PID``; the runner watches that process
  and, once it is gone, stops as a cancel does: kernels killed, the run cancelled, its
  MLflow runs FAILED.
- The runner itself is killed (``kill -9``, the out-of-memory killer). Then something
  outside it must clean up: the reaper (``reaper``), a small process the runner starts in a
  session of its own and tells over a pipe, as things change, what to clean up should it
  die: its kernels' process groups, its temporary folders, its run folder. `Reaper` is the
  runner's side of that pipe.

A pipe rather than a file and polling: its end *is* the runner's end, noticed at once
whatever the death, with no pid that could have been reused meanwhile. Starting the reaper
costs the runner a fork (about 1 to 5 ms); nothing waits for it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from . import reaper

STOP_WITH_PID_ENV = "JUPYTER_MLOPS_STOP_WITH_PID"
OWNER_POLL_SECONDS = 0.5


# --- the runner stops when its owner dies -----------------------------------------------


def owner_pid() -> int | None:
    """The process this one's runs must not outlive, as ``STOP_WITH_PID_ENV`` names it."""
    value = os.environ.get(STOP_WITH_PID_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 1 else None


def owner_environment() -> dict[str, str]:
    """The environment for a runner that must stop when this process ends."""
    return {**os.environ, STOP_WITH_PID_ENV: str(os.getpid())}


def without_owner(env: dict[str, str]) -> dict[str, str]:
    """`env` for processes of the run (kernels): the owner is the runner's, not theirs."""
    return {k: v for k, v in env.items() if k != STOP_WITH_PID_ENV}


@contextlib.contextmanager
def stop_with_owner(stop: Callable[[int], None]) -> Iterator[None]:
    """Within the block, call ``stop(owner pid)`` once, from a daemon thread, if the owner
    ends. ``stop`` must only ask (set a flag): it runs outside the main thread."""
    pid = owner_pid()
    if pid is None:
        yield
        return
    done = threading.Event()
    watch = threading.Thread(
        target=_watch_owner, args=(pid, stop, done), name=f"owner {pid}", daemon=True
    )
    watch.start()
    try:
        yield
    finally:
        done.set()


def _watch_owner(pid: int, stop: Callable[[int], None], done: threading.Event) -> None:
    # When the owner is our parent, a change of parent is the exact sign: we are handed to
    # another parent as the owner exits (before it is reaped), and a pid can't be reused.
    parent = os.getppid() == pid
    while not done.wait(OWNER_POLL_SECONDS):
        if not (os.getppid() == pid if parent else _alive(pid)):
            stop(pid)
            return


def _alive(pid: int) -> bool:
    """Whether a process that isn't our parent still runs (a zombie has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


# --- the reaper, should the runner be killed ---------------------------------------------


class Reaper:
    """What to clean up should this process die, told to a reaper process as it changes.

    A Reaper that was never started (a runner driven by other code before `start`) does
    nothing; so does one whose process is gone: cleaning up after a death is best effort,
    and never a reason to fail a run.
    """

    def __init__(self) -> None:
        self._pipe: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self, run_dir: Path, tracking_uri: str) -> None:
        """Start the reaper for the run in `run_dir`, to be marked failed should we die (in
        MLflow too, at `tracking_uri`: ours, not whatever run.json may say by then)."""
        if self._process is not None:
            return
        read, write = os.pipe()  # neither end is inherited by the kernels we start
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", reaper.__name__, str(read)],
                pass_fds=(read,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # not our pipes: whoever reads them would wait
                stderr=subprocess.DEVNULL,  # for the reaper as well as for us
                start_new_session=True,  # a Ctrl-C or a hang-up is ours to handle, not its
                env=without_owner(dict(os.environ)),
            )
        except OSError:
            os.close(write)
            return
        finally:
            os.close(read)
        os.set_blocking(write, False)  # a reaper that stopped reading must not stop the run
        self._pipe = write
        self._send(reaper.RUN, str(run_dir))
        self._send(reaper.TRACKING, tracking_uri)

    def track(self, path: str | Path) -> None:
        """A temporary file or folder to remove."""
        self._send(reaper.PATH, str(path))

    def untrack(self, path: str | Path) -> None:
        self._send(reaper.UNPATH, str(path))

    def track_group(self, pgid: int) -> None:
        """A process group to kill (a kernel, which leads its own, and what it started)."""
        self._send(reaper.GROUP, pgid)

    def untrack_group(self, pgid: int) -> None:
        self._send(reaper.UNGROUP, pgid)

    def release(self) -> None:
        """We end normally, having cleaned up ourselves: the reaper leaves quietly.

        Not waited for: the goodbye waits in the pipe until the reaper reads it.
        """
        self._send(reaper.END)
        with self._lock:
            pipe, self._pipe = self._pipe, None
        if pipe is not None:
            os.close(pipe)

    def _send(self, verb: str, value: str | int = "") -> None:
        with self._lock:
            if self._pipe is None:
                return
            data = reaper.message(verb, value)
            try:
                while data:
                    data = data[os.write(self._pipe, data) :]
            except OSError:  # gone, or not reading: nothing more can be told
                # A reaper merely slow to read would take the closed pipe for our death and
                # reap a live run: it goes first. Cleaning up is best effort from here on.
                if self._process is not None and self._process.poll() is None:
                    self._process.kill()
                os.close(self._pipe)
                self._pipe = None
