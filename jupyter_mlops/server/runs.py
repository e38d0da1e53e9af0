"""Runs started from JupyterLab: child processes of the server, and their history.

Each run is the `jupyter-mlops run` command in a child process, so a crash in a run (or in
a library it loads) never takes the server down, and a run behaves exactly as it does from a
terminal or CI. The request is checked here first, with the same code the command uses, so
bad parameters are a 400 rather than a failed run. Status comes from the run's ``run.json``,
so the history is the run folders and survives a server restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle, read_bundle
from ..errors import BadInput
from ..history import find_run, load_run, run_folders, runner_alive
from ..launcher import RUNNER_LOG, PreparedRun, prepare_run
from ..orphans import owner_environment
from ..runstate import RUN_CANCELLED, RUN_FAILED, RUN_RUNNING, RunState
from ..tracking import MlflowLinks
from .paths import relative_to_root
from .redact import environment_secrets, redact
from .worker import WorkerPool

TAIL_BYTES = 4000
RUN_QUEUED = "queued"  # waiting for one of the server's run slots; nothing started yet


@dataclass
class Launch:
    """A run this server started (or queued) whose run.json may not exist yet."""

    prepared: PreparedRun
    path: str
    created: float
    process: asyncio.subprocess.Process | None = None  # None while queued
    cancelled: bool = False  # asked to stop by this server
    waiter: asyncio.Task[None] | None = None  # starts the next queued run when this one ends

    @property
    def folder(self) -> Path:
        return self.prepared.folder

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class RunManager:
    def __init__(
        self,
        root: Path,
        runs_dir: Path,
        tracking_uri: str,
        links: MlflowLinks,
        max_running: int | None = None,
    ) -> None:
        self.root = root
        self.runs_dir = runs_dir
        self.tracking_uri = tracking_uri
        self.links = links
        self.max_running = max_running or os.cpu_count() or 1
        self.launches: dict[str, Launch] = {}
        self.queue: list[str] = []  # run ids waiting for a slot, oldest first

    # --- starting -----------------------------------------------------------------------

    async def start(
        self,
        worker: WorkerPool,
        notebook: Path,
        parameters: dict[str, Any],
        jobs: int,
        from_stage: str | None,
        only: list[str],
    ) -> str:
        """Check the request (in a worker), then run `jupyter-mlops run` in a child process,
        or queue it while `max_running` runs of this server are running."""
        prepared = await worker.call(
            "checking the run",
            prepare_run,
            notebook,
            parameters,
            self.runs_dir,
            self.tracking_uri,
            jobs,
            from_stage,
            only,
        )
        launch = Launch(prepared, relative_to_root(self.root, notebook), time.time())
        self.launches[prepared.run_id] = launch
        self.queue.append(prepared.run_id)
        await self._start_queued()
        return prepared.run_id

    async def _start_queued(self) -> None:
        while self.queue and self._running() < self.max_running:
            launch = self.launches[self.queue.pop(0)]
            with open(launch.prepared.log, "wb") as log:
                launch.process = await asyncio.create_subprocess_exec(
                    *launch.prepared.command,
                    cwd=self.root,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                    # If this server dies without stopping its runs (SIGKILL, a handler that
                    # exits at once), they stop themselves: cancelled, FAILED in MLflow.
                    env=owner_environment(),
                )
            launch.waiter = asyncio.create_task(self._next_when_done(launch.process))

    async def _next_when_done(self, process: asyncio.subprocess.Process) -> None:
        await process.wait()
        await self._start_queued()

    def _running(self) -> int:
        return sum(launch.running for launch in self.launches.values())

    # --- reading ------------------------------------------------------------------------

    def list(self, path: str | None = None) -> list[dict[str, Any]]:
        seen = set()
        views = []
        for folder in run_folders(self.runs_dir):
            seen.add(folder.name)
            view = self._view(folder, with_logs=False)
            if view and (path is None or view["path"] == path):
                views.append(view)
        for run_id, launch in self.launches.items():  # started, run.json not written yet
            if run_id not in seen and (path is None or launch.path == path):
                views.append(self._launch_view(run_id, launch, with_logs=False))
        return sorted(views, key=lambda v: v["id"], reverse=True)

    def get(self, run_id: str) -> dict[str, Any] | None:
        folder = find_run(self.runs_dir, run_id)
        if folder is not None:
            return self._view(folder, with_logs=True)
        if run_id in self.launches:
            return self._launch_view(run_id, self.launches[run_id], with_logs=True)
        return None

    def _view(self, folder: Path, with_logs: bool) -> dict[str, Any] | None:
        try:
            state = load_run(folder, self.tracking_uri, background=True)
        except (OSError, ValueError, TypeError):
            return None
        if state.id != folder.name:
            return None  # a run.json copied from another run: not this folder's run
        launch = self.launches.get(state.id)
        ended = launch is not None and launch.process and launch.process.returncode is not None
        if ended and state.status == RUN_RUNNING:  # it exited before writing its end
            state.status = RUN_CANCELLED if launch.cancelled else RUN_FAILED  # type: ignore[union-attr]
        if state.tracking_uri != self.tracking_uri:
            # Not a store this server writes to: no links, and ids that mean nothing here.
            state.experiment_id = state.parent_run_id = None
            for stage in state.stages:
                stage.mlflow_run_id = None
        return self._state_view(state, folder, with_logs)

    def _state_view(self, state: RunState, folder: Path, with_logs: bool) -> dict[str, Any]:
        data = state.to_dict()
        bundle = _bundle(folder)
        path = state.source and _relative_or_none(self.root, Path(state.source))
        for stage in data["stages"]:
            stage["cells"] = bundle.stage(stage["name"]).cells if bundle else []
            stage["mlflow_url"] = self.links.run(state.experiment_id, stage["mlflow_run_id"])
            if with_logs:
                stage["log_tail"] = _tail(folder, stage["log"]) if stage["log"] else ""
        for model in data["models"]:
            model["url"] = self.links.model(model["name"], model["version"])
        view = {
            key: data[key]
            for key in (
                "id",
                "pipeline",
                "status",
                "created",
                "finished",
                "parameters",
                "stages",
                "error",
                "models",
                "warnings",
            )
        }
        view["path"] = path
        view["mlflow"] = {
            "tracking_uri": state.tracking_uri,
            "experiment_id": state.experiment_id,
            "run_id": state.parent_run_id,
            "url": self.links.run(state.experiment_id, state.parent_run_id),
        }
        if with_logs:
            view["log_tail"] = _tail(folder, RUNNER_LOG)
        return view

    def _launch_view(self, run_id: str, launch: Launch, with_logs: bool) -> dict[str, Any]:
        """A run with no run.json yet: queued, starting, or ended before it began."""
        finished = launch.cancelled or (launch.process is not None and not launch.running)
        if launch.cancelled:
            status = RUN_CANCELLED
        elif finished:
            status = RUN_FAILED
        else:
            status = RUN_RUNNING if launch.process else RUN_QUEUED
        log = _tail(launch.folder, RUNNER_LOG)
        if launch.cancelled:
            message = "the run was cancelled before it started"
        else:
            message = _last_line(log) or "the run stopped before it started"
        view: dict[str, Any] = {
            "id": run_id,
            "pipeline": launch.prepared.pipeline,
            "path": launch.path,
            "status": status,
            "created": launch.created,
            "finished": None,
            "parameters": {},
            "stages": [],
            "models": [],
            "warnings": [],
            "error": {
                "message": message,
                "cell": None,
                "line": None,
                "exception": None,
                "traceback": None,
            }
            if finished
            else None,
            "mlflow": {
                "tracking_uri": self.tracking_uri,
                "experiment_id": None,
                "run_id": None,
                "url": None,
            },
        }
        if with_logs:
            view["log_tail"] = log
        return view

    # --- stopping -----------------------------------------------------------------------

    def cancel(self, run_id: str) -> bool:
        """Ask a running run to stop (its runner kills the kernels and fails its MLflow runs).

        Returns False when the run has already finished.
        """
        launch = self.launches.get(run_id)
        if launch is not None and run_id in self.queue:
            self.queue.remove(run_id)
            launch.cancelled = True
            return True
        folder = find_run(self.runs_dir, run_id)
        state = load_run(folder, self.tracking_uri, background=True) if folder else None
        if state is not None and state.status != RUN_RUNNING:
            return False
        if launch is not None and launch.process is not None and launch.running:
            launch.cancelled = True
            launch.process.send_signal(signal.SIGTERM)
            return True
        if state is None or not runner_alive(state.pid, run_id):
            return False
        os.kill(state.pid, signal.SIGTERM)  # started by an earlier server: signal by pid
        return True

    async def stop_all(self, timeout: float = 20) -> None:
        """On server shutdown, stop the runs it started, leaving no kernel behind."""
        for run_id in self.queue:
            self.launches[run_id].cancelled = True
        self.queue.clear()
        running = [
            launch.process
            for launch in self.launches.values()
            if launch.process is not None and launch.running
        ]
        for process in running:
            process.send_signal(signal.SIGTERM)
        if running:
            await asyncio.wait([asyncio.create_task(p.wait()) for p in running], timeout=timeout)
        for launch in self.launches.values():  # no queued run is left to start
            if launch.waiter is not None:
                launch.waiter.cancel()


def _bundle(folder: Path) -> Bundle | None:
    try:
        return read_bundle(folder / "bundle" / "pipeline.yaml")
    except BadInput:
        return None


def _relative_or_none(root: Path, path: Path) -> str | None:
    try:
        return relative_to_root(root, path)
    except ValueError:
        return None


def _tail(folder: Path, log: str) -> str:
    """The end of a run folder's log, its secrets masked before it is cut (a cut secret
    would escape the mask). Only a file inside the folder: a symlink planted there is not
    followed out of it.
    """
    real = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(real, log))
    if not path.startswith(real + os.sep):
        return ""
    margin = max((len(secret) for secret in environment_secrets()), default=0)
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - TAIL_BYTES - margin))
            text = redact(stream.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""
    return text[-TAIL_BYTES:]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
