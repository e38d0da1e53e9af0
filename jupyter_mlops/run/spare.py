"""A runner started ahead: the `jupyter-mlops run` command with its imports done, waiting.

A run started from JupyterLab or the widget is the `jupyter-mlops run` command in a child
process (`child`), and before its first stage that command imports our modules, MLflow and
its SQL store's (1.2-1.5 s on 2 cores). An owner (the Jupyter server, a kernel's panels)
keeps one such process waiting with all that imported; a run hands it one request on its
stdin (the command's arguments, its log, its environment), and the process becomes that
command, as ``python -m jupyter_mlops`` started in the same folder would have run it. The
owner then starts the next one. Should the owner end first, the spare's stdin ends and so
does the spare.

This module is the spare's side and the request's format; the owners spawn it with
`child.spare_arguments`.
"""

from __future__ import annotations

import json
import os
import select
import sys
import warnings
from typing import Any

# `python -m jupyter_mlops`: what a run's command line starts with (`child.prepare_run`).
COMMAND_PREFIX = ["-m", "jupyter_mlops"]
# A spare no run came for in this long ends (with its zygote: memory held for nothing);
# the next run then starts its command afresh. The variable is for tests.
IDLE_ENV = "JUPYTER_MLOPS_SPARE_IDLE_SECONDS"
IDLE_SECONDS = 1800.0


def idle_seconds() -> float:
    """How long a spare waits for its run before it ends."""
    return float(os.environ.get(IDLE_ENV) or IDLE_SECONDS)


def usable_seconds() -> float:
    """How long after its start an owner may still hand a spare its run: well before it
    ends, so that a request never reaches a spare on its way out."""
    return idle_seconds() * 0.9


def request_line(command: list[str], log: str, env: dict[str, str]) -> bytes:
    """The request for a spare: the run's command (`python -m jupyter_mlops ARGS`) as
    arguments, the file its output goes to, and its environment."""
    if command[1:3] != COMMAND_PREFIX:
        raise ValueError(f"not a jupyter-mlops command line: {command[:3]}")
    request = {"argv": command[3:], "log": log, "env": env}
    return json.dumps(request).encode() + b"\n"


def main(expected: str | None = None) -> None:
    """Start the zygote of the `expected` notebook's run, import, wait for a request, then
    be the command it names."""
    import contextlib

    from .. import cli  # first: it keeps some slow optional imports out of the rest

    if expected:  # before MLflow: its imports then overlap MLflow's (a process of its own)
        _start_zygote_for(expected)
    from ..tracking.client import warm_up

    with contextlib.suppress(Exception):  # the run, with its log, will say what is wrong
        warm_up()
    waiting, _, _ = select.select([sys.stdin], [], [], idle_seconds())
    line = sys.stdin.buffer.readline() if waiting else b""
    if not line:  # the owner ended, no longer needs us, or no run came for a long while
        os._exit(0)
    request: dict[str, Any] = json.loads(line)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    # Warnings our imports showed went to /dev/null: the run's log shows them again (its
    # filters kept, the record of what was shown forgotten).
    filters = warnings.filters[:]
    warnings.resetwarnings()
    warnings.filters[:] = filters  # type: ignore[index]
    # As `python -m jupyter_mlops` names itself in usage lines.
    main_module = sys.modules["__main__"]
    main_module.__package__ = "jupyter_mlops"
    sys.argv = [os.path.join(os.path.dirname(os.path.dirname(__file__)), "__main__.py")]
    sys.argv += request["argv"]
    cli.main()


def _start_zygote_for(notebook: str) -> None:
    """The zygote the next run of `notebook` would start (its kernels forked from the
    notebook's imports), kept for it; the run adopts it if its imports, kernel, folder and
    environment are the same (`zygote.take_ahead`), else closes it and starts its own."""
    import contextlib
    from pathlib import Path

    from ..pipeline import prepare
    from .runner import RunOptions

    # Best effort: whatever is wrong with the notebook, its run will say so itself.
    with contextlib.suppress(Exception):
        prepare(Path(notebook), RunOptions()).start_zygote_ahead()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
