"""Verifications started from JupyterLab: `jupyter-mlops verify` in child processes.

A verification runs the notebook top to bottom once and then as a pipeline, and compares
every value a stage hands on (see `jupyter_mlops.verify`). It takes as long as two runs of
the notebook, so, like a run, it is the command itself in a child process of the server,
never work on the event loop. Each one has a folder under its notebook's project's runs dir
(`projects`), ``<runs dir>/.verifications/<id>/`` (no pipeline name starts with a dot), where
its two runs are made too, holding what the
request was (``verification.json``), the command's JSON report (``report.json``, its
stdout), its stderr (``stderr.log``) and, once it has ended, its exit code (``exit``). The
status is read from those files, so the history survives a server restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import BadInput
from ..run.history import RUN_ID, runner_alive
from ..run.orphans import owner_environment
from ..run.runner import new_run_id
from . import jobs
from .paths import relative_to_root
from .projects import Projects
from .schemas import Verification
from .worker import WorkerPool

FOLDER = ".verifications"
REQUEST = "verification.json"
REPORT = "report.json"
STDERR = "stderr.log"
EXIT = "exit"

RUNNING = "running"
IDENTICAL = "identical"
DIVERGENT = "divergent"
FAILED = "failed"

# The command's one-paragraph error: "error: ..." (ours) or "Error: ..." (click's usage).
_ERROR = re.compile(r"^error: ", re.IGNORECASE | re.MULTILINE)


@dataclass
class Started:
    """A verification this server started (its process, while the server lives)."""

    folder: Path
    process: asyncio.subprocess.Process
    waiter: asyncio.Task[None]


class VerificationManager:
    def __init__(self, root: Path, projects: Projects) -> None:
        self.root = root
        self.projects = projects
        self.started: dict[str, Started] = {}

    async def start(self, worker: WorkerPool, notebook: Path) -> str:
        """Check the notebook, then run `jupyter-mlops verify` on it in a child process.

        Raises BadInput (nothing started) for a file that is not a notebook or whose tagging
        has errors: the same check the command makes first.
        """
        path = relative_to_root(self.root, notebook)
        if notebook.suffix != ".ipynb":
            raise BadInput(f"`{path}` is not a notebook (an .ipynb file)")
        await worker.call("checking the notebook", jobs.check_tagging, notebook)
        runs_dir = self.projects.of(notebook, fresh=True).runs_dir
        verification_id = new_run_id()
        folder = runs_dir / FOLDER / verification_id
        folder.mkdir(parents=True)
        command = [
            sys.executable,
            "-m",
            "jupyter_mlops",
            "verify",
            path,
            "--json",
            "--runs-dir",
            str(runs_dir),
        ]
        with open(folder / REPORT, "wb") as stdout, open(folder / STDERR, "wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.root,
                stdout=stdout,
                stderr=stderr,
                stdin=asyncio.subprocess.DEVNULL,
                env=owner_environment(),  # its pipeline stops if the server dies
            )
        request = {"id": verification_id, "path": path, "created": time.time()}
        (folder / REQUEST).write_text(json.dumps({**request, "pid": process.pid}))
        waiter = asyncio.create_task(_record_exit(process, folder))
        self.started[verification_id] = Started(folder, process, waiter)
        return verification_id

    def get(self, verification_id: str) -> Verification | None:
        """The verification's view (docs/REST-API.md), or None for an unknown id, or for
        a folder whose files are not what this server writes (anyone could write there)."""
        if not RUN_ID.fullmatch(verification_id):
            return None
        try:
            view = self._view(verification_id)
        except (TypeError, AttributeError, ValueError, RecursionError):
            return None
        if view is None:
            return None
        try:
            return Verification.model_validate(view)
        except ValidationError:  # a report.json that isn't the command's
            view = {**view, "status": FAILED, "report": None}
            view["error"] = "its report.json is not a verification report"
            return Verification.model_validate(view)

    def _find(self, verification_id: str) -> Path | None:
        """Its folder: in the runs dir of a project the server knows."""
        started = self.started.get(verification_id)
        if started is not None:
            return started.folder
        for runs_dir in self.projects.runs_dirs():
            folder = runs_dir / FOLDER / verification_id
            if (folder / REQUEST).is_file():
                return folder
        return None

    def _view(self, verification_id: str) -> dict[str, Any] | None:
        folder = self._find(verification_id)
        if folder is None:
            return None
        try:
            request = json.loads((folder / REQUEST).read_text())
        except (OSError, ValueError):
            return None
        report = _report(folder)
        exit_code = _exit_code(folder)
        view: dict[str, Any] = {
            "id": verification_id,
            "path": request.get("path"),
            "status": RUNNING,
            "report": None,
            "error": None,
        }
        if report is not None:
            report["folder"] = self._shown(report.get("folder") or "")
            view["report"] = report
            view["status"] = IDENTICAL if report.get("identical") else DIVERGENT
        elif exit_code is None and self._alive(verification_id, request.get("pid")):
            pass  # still running
        else:
            view["status"] = FAILED
            view["error"] = _error(folder, exit_code)
        return view

    def _alive(self, verification_id: str, pid: Any) -> bool:
        started = self.started.get(verification_id)
        if started is not None:
            return started.process.returncode is None
        # Started by an earlier server: the process may still run, or be long gone.
        return isinstance(pid, int) and runner_alive(pid)

    def _shown(self, folder: str) -> str:
        """The report's folder relative to the server root when it is inside it."""
        if not folder:
            return ""
        try:
            return relative_to_root(self.root, Path(folder))
        except ValueError:
            return folder

    async def stop_all(self, timeout: float = 20) -> None:
        """On server shutdown, stop the verifications it started, with their kernels.

        SIGINT is the command's Ctrl-C: it shuts down the kernels it started.
        """
        running = [v for v in self.started.values() if v.process.returncode is None]
        for verification in running:
            verification.process.send_signal(signal.SIGINT)
        if running:
            await asyncio.wait([v.waiter for v in running], timeout=timeout)
        for verification in running:
            if verification.process.returncode is None:
                verification.process.kill()


async def _record_exit(process: asyncio.subprocess.Process, folder: Path) -> None:
    code = await process.wait()
    with contextlib.suppress(OSError):  # the folder was removed: nothing left to report on
        (folder / EXIT).write_text(str(code))


def _report(folder: Path) -> dict[str, Any] | None:
    """The command's JSON report, once it has written all of it.

    The report is the command's last output on stdout, an indented object that starts on a
    line of its own; anything a library printed before it is skipped.
    """
    try:
        text = (folder / REPORT).read_text(encoding="utf-8")
    except OSError:
        return None
    start = 0 if text.startswith("{") else text.rfind("\n{") + 1
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) and "identical" in data else None


def _exit_code(folder: Path) -> int | None:
    try:
        return int((folder / EXIT).read_text())
    except (OSError, ValueError):
        return None


def _error(folder: Path, exit_code: int | None) -> str:
    """The command's one-paragraph error, from its stderr."""
    try:
        text = (folder / STDERR).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    found = list(_ERROR.finditer(text))
    if found:
        paragraph = text[found[-1].end() :].strip()
        return "\n".join(line.strip() for line in paragraph.splitlines() if line.strip())
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if lines:
        return lines[-1]
    if exit_code is None:
        return "the verification's process ended without a report (was the server restarted?)"
    return f"the verification stopped without a report (exit code {exit_code})"
