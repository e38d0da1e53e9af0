"""The reaper: a small process that cleans up after a runner killed outright.

A runner killed with SIGKILL (or by the out-of-memory killer) can't stop its kernels, remove
its temporary folders or record its end. Its reaper, started by the runner in a session of
its own (``orphans.Reaper``), reads from a pipe what there is to clean up: the kernels'
process groups, temporary files and folders, the run folder and the tracking URI. The pipe's
end is the runner's end, whatever the death. If the runner said goodbye first (`END`), it
cleaned up itself and the reaper leaves quietly; otherwise the reaper kills the process
groups, removes the paths, and marks the run failed in run.json and MLflow, as reading the
history of an abandoned run would.

It runs as ``python -m jupyter_mlops.run.reaper FD`` next to every run, so it imports nothing
but ``contextlib``, ``os``, ``signal`` and ``sys`` until it has work to do.

One message a line: a verb, a tab, a value. Paths and URIs never hold NUL, so a newline in
one travels as NUL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

END = "end"  # the runner ended normally, having cleaned up itself
RUN = "run"  # the run folder, to mark failed
TRACKING = "tracking"  # the tracking URI the runner used, to mark the MLflow runs FAILED
GROUP, UNGROUP = "group", "-group"  # a process group to kill (a kernel and its children)
PATH, UNPATH = "path", "-path"  # a temporary file or folder to remove


def message(verb: str, value: str | int = "") -> bytes:
    return os.fsencode(f"{verb}\t{str(value).replace(chr(10), chr(0))}\n")


def _read(line: bytes) -> tuple[str, str]:
    verb, _, value = os.fsdecode(line.rstrip(b"\n")).partition("\t")
    return verb, value.replace(chr(0), chr(10))


def reap(pipe: int) -> None:
    """Read what the runner tells us until the pipe closes; clean up if it died."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the runner's
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups: set[int] = set()
    paths: set[str] = set()
    run: dict[str, str] = {}
    with open(pipe, "rb") as messages:
        for line in messages:
            verb, value = _read(line)
            if verb == END:
                return
            if verb in (RUN, TRACKING):
                run[verb] = value
            elif verb in (GROUP, UNGROUP) and value.isdigit():
                (groups.add if verb == GROUP else groups.discard)(int(value))
            elif verb in (PATH, UNPATH):
                (paths.add if verb == PATH else paths.discard)(value)
    # The pipe closed without a goodbye: the runner is dead.
    for group in groups:
        with contextlib.suppress(OSError):  # the group ended with its kernel
            os.killpg(group, signal.SIGKILL)
    _remove(paths)
    if RUN in run:
        _settle(run[RUN], run.get(TRACKING))


def _remove(paths: set[str]) -> None:
    import shutil

    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # already gone
                os.remove(path)


def _settle(run_dir: str, tracking_uri: str | None) -> None:
    """Mark the dead runner's run failed, in run.json and MLflow, unless it ended first.

    MLflow is told at the runner's own tracking URI, not whatever run.json says by now.
    """
    from .history import mark_abandoned
    from .runstate import RUN_RUNNING, read_run

    try:
        state = read_run(run_dir)
    except (OSError, ValueError, TypeError):
        return  # killed before it wrote run.json: there is no run to settle
    if state.status == RUN_RUNNING:
        mark_abandoned(state, tracking_uri)


if __name__ == "__main__":
    reap(int(sys.argv[1]))
