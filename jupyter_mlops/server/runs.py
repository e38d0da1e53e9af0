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
from ..launcher import RUNNER_LOG, prepare_run
from ..runstate import RUN_FAILED, RUN_RUNNING, RunState
from ..tracking import MlflowLinks
from .paths import relative_to_root

TAIL_BYTES = 4000


@dataclass
class Launch:
    """A run this server started whose run.json may not exist yet."""

    folder: Path
    path: str
    pipeline: str
    created: float
    process: asyncio.subprocess.Process


class RunManager:
    def __init__(self, root: Path, runs_dir: Path, tracking_uri: str, links: MlflowLinks) -> None:
        self.root = root
        self.runs_dir = runs_dir
        self.tracking_uri = tracking_uri
        self.links = links
        self.launches: dict[str, Launch] = {}

    # --- starting -----------------------------------------------------------------------

    async def start(
        self,
        notebook: Path,
        parameters: dict[str, Any],
        jobs: int,
        from_stage: str | None,
        only: list[str],
    ) -> str:
        """Check the request, then run `jupyter-mlops run` in a child process."""
        prepared = prepare_run(
            notebook, parameters, self.runs_dir, self.tracking_uri, jobs, from_stage, only
        )
        with open(prepared.log, "wb") as log:
            process = await asyncio.create_subprocess_exec(
                *prepared.command,
                cwd=self.root,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
        self.launches[prepared.run_id] = Launch(
            prepared.folder,
            relative_to_root(self.root, notebook),
            prepared.pipeline,
            time.time(),
            process,
        )
        return prepared.run_id

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
            state = load_run(folder)
        except (OSError, ValueError, TypeError):
            return None
        launch = self.launches.get(state.id)
        if launch is not None and state.status == RUN_RUNNING and launch.process.returncode:
            state.status = RUN_FAILED  # the command exited early, before writing its end
        return self._state_view(state, folder, with_logs)

    def _state_view(self, state: RunState, folder: Path, with_logs: bool) -> dict[str, Any]:
        data = state.to_dict()
        bundle = _bundle(folder)
        path = state.source and _relative_or_none(self.root, Path(state.source))
        for stage in data["stages"]:
            stage["cells"] = bundle.stage(stage["name"]).cells if bundle else []
            stage["mlflow_url"] = self.links.run(state.experiment_id, stage["mlflow_run_id"])
            if with_logs:
                stage["log_tail"] = _tail(folder / stage["log"]) if stage["log"] else ""
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
            view["log_tail"] = _tail(folder / RUNNER_LOG)
        return view

    def _launch_view(self, run_id: str, launch: Launch, with_logs: bool) -> dict[str, Any]:
        finished = launch.process.returncode is not None
        log = _tail(launch.folder / RUNNER_LOG)
        view: dict[str, Any] = {
            "id": run_id,
            "pipeline": launch.pipeline,
            "path": launch.path,
            "status": RUN_FAILED if finished else RUN_RUNNING,
            "created": launch.created,
            "finished": None,
            "parameters": {},
            "stages": [],
            "models": [],
            "warnings": [],
            "error": {
                "message": _last_line(log) or "the run stopped before it started",
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
        folder = find_run(self.runs_dir, run_id)
        state = load_run(folder) if folder else None
        if state is not None and state.status != RUN_RUNNING:
            return False
        launch = self.launches.get(run_id)
        if launch is not None and launch.process.returncode is None:
            launch.process.send_signal(signal.SIGTERM)
            return True
        if state is None or not runner_alive(state.pid):
            return False
        os.kill(state.pid, signal.SIGTERM)  # started by an earlier server: signal by pid
        return True

    async def stop_all(self, timeout: float = 20) -> None:
        """On server shutdown, stop the runs it started, leaving no kernel behind."""
        running = [
            launch.process for launch in self.launches.values() if launch.process.returncode is None
        ]
        for process in running:
            process.send_signal(signal.SIGTERM)
        if running:
            await asyncio.wait([asyncio.create_task(p.wait()) for p in running], timeout=timeout)


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


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - TAIL_BYTES))
            return stream.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
