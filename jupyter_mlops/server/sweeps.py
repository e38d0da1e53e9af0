"""Sweeps started from JupyterLab: `jupyter-mlops sweep` in child processes, and their records.

A sweep is many runs one after another (its trials), so, like a run, it is the command itself
in a child process of the server, never work on the event loop. The request is checked first
in a worker with the command's own `plan_sweep` (every value, the metric, the number of
trials), so a bad one is a 400 and nothing starts; then the command starts with the id the
server chose (`--sweep-id`) through the run manager, the same way a run's does: it takes one
of the server's run slots (queued while they are all taken), stops with the server (the
owner's environment, SIGTERM at shutdown), and may be handed the runner started ahead.

What a sweep shows is its record, ``<runs dir>/<pipeline>/sweeps/<id>/sweep.json``
(`sweeps.record`), which the command keeps up to date, so the history survives a restart
and sweeps started from a terminal show too. The server writes one file of its own beside
it, ``launch.json`` (the process's pid), so that a later server can tell a sweep that still
runs from one whose process died without finishing, which shows as stopped (resumable).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BadInput, Conflict, NotFound
from ..run.child import PreparedRun, last_line, read_log_end
from ..run.history import RUN_ID, runner_alive
from ..run.runner import RunOptions, new_run_id
from ..sweeps.record import (
    CANCELLED,
    RUNNING,
    SWEEP_FAILED,
    SWEEP_FILE,
    SWEEP_RUNNING,
    SWEEP_STOPPED,
    SWEEPS_FOLDER,
    SweepState,
    read_sweep,
)
from ..sweeps.sweeper import plan_sweep, resume
from .paths import relative_or_none, relative_to_root
from .projects import Projects
from .redact import redact
from .runs import SWEEP, Launch, RunManager
from .schemas import Sweep, SweepRequest
from .worker import WorkerPool

LAUNCH_FILE = "launch.json"  # the server's own record of the sweep's process
SWEEP_QUEUED = "queued"  # waiting for one of the server's run slots
MAX_RECORD_BYTES = 20 * 1024 * 1024  # a sweep.json of 10,000 trials is a few MB
DIED = (
    "the sweep's process ended before the sweep did (it was killed, or the server stopped): "
    "resume it to run the trials left"
)
STOPPED_WAITING = "the sweep was stopped before it started"


# --- checking a request (in a worker process) ------------------------------------------


def prepare_sweep(
    notebook: Path,
    request: dict[str, Any],
    sweep_id: str,
    runs_dir: Path,
    tracking_uri: str,
) -> tuple[PreparedRun, dict[str, Any]]:
    """Check a sweep request as the command does, and return its command and the record it
    plans (the trials, shown until the command writes its own). Raises BadInput."""
    values: dict[str, str] = request["values"]
    draws, seed = request.get("random"), request.get("seed")
    metric, maximize = request.get("metric"), request.get("maximize")
    options = RunOptions(runs_root=runs_dir, tracking_uri=tracking_uri)
    sweeper = plan_sweep(
        notebook,
        list(values.items()),
        options,
        draws=draws,
        seed=seed,
        metric=metric,
        maximize=maximize,
        sweep_id=sweep_id,
    )
    state = sweeper.state
    command = [*_command(notebook, runs_dir, tracking_uri), "--sweep-id", sweep_id]
    for name, text in values.items():
        command += ["-p", name, text]
    if draws is not None:  # the seed it drew with, so the command draws the same trials
        command += [f"--random={draws}", f"--seed={state.seed}"]
    if metric:
        command += ["--metric", metric]
    if maximize is not None:
        command.append("--maximize" if maximize else "--minimize")
    sweeper.folder.mkdir(parents=True)
    prepared = PreparedRun(
        sweep_id, sweeper.folder, state.pipeline, command, tracking_uri, str(notebook)
    )
    return prepared, state.to_dict()


def prepare_resume(
    notebook: Path, sweep_id: str, runs_dir: Path, tracking_uri: str
) -> tuple[PreparedRun, dict[str, Any]]:
    """Check that a stopped sweep can go on, and return the command that resumes it."""
    sweeper = resume(notebook, sweep_id, RunOptions(runs_root=runs_dir))  # Conflict: none left
    state = sweeper.state
    store = state.tracking_uri or tracking_uri  # where its MLflow run is
    command = [*_command(notebook, runs_dir, store), "--resume", sweep_id]
    prepared = PreparedRun(sweep_id, sweeper.folder, state.pipeline, command, store, str(notebook))
    return prepared, state.to_dict()


def _command(notebook: Path, runs_dir: Path, tracking_uri: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "jupyter_mlops",
        "sweep",
        str(notebook),
        "--runs-dir",
        str(runs_dir),
        "--tracking-uri",
        tracking_uri,
    ]


# --- the server's side ------------------------------------------------------------------


class SweepManager:
    def __init__(self, root: Path, projects: Projects, runs: RunManager) -> None:
        self.root = root
        self.projects = projects
        self.runs = runs  # its slots and child processes are the sweeps' too
        self._planned: dict[str, dict[str, Any]] = {}  # id -> the record planned, until its own

    async def start(self, worker: WorkerPool, notebook: Path, request: SweepRequest) -> str:
        """Check the request (in a worker), then start `jupyter-mlops sweep` in a child
        process, or queue it while the server's run slots are taken."""
        places = self.projects.of(notebook, fresh=True)
        sweep_id = new_run_id()
        prepared, planned = await worker.call(
            "checking the sweep",
            prepare_sweep,
            notebook,
            request.model_dump(),
            sweep_id,
            places.runs_dir,
            places.store,
        )
        await self._launch(prepared, notebook, planned)
        return sweep_id

    async def resume(self, worker: WorkerPool, sweep_id: str) -> None:
        """Run the trials a stopped sweep had not finished (`sweep --resume`)."""
        folder = self._find(sweep_id)
        view = self.get(sweep_id)
        if folder is None or view is None:
            raise NotFound(f"no sweep `{sweep_id}`")
        if view.status in (SWEEP_QUEUED, SWEEP_RUNNING):
            raise Conflict(f"sweep `{sweep_id}` is still {view.status}")
        if view.path is None:
            raise BadInput(f"sweep `{sweep_id}`'s notebook is not inside the server's root")
        notebook = Path(os.path.realpath(self.root / view.path))
        places = self.projects.of(notebook, fresh=True)
        runs_dir = folder.parent.parent.parent  # <runs dir>/<pipeline>/sweeps/<id>
        prepared, planned = await worker.call(
            "checking the sweep", prepare_resume, notebook, sweep_id, runs_dir, places.store
        )
        prepared = replace(prepared, folder=folder)
        (folder / LAUNCH_FILE).unlink(missing_ok=True)  # the earlier process's
        await self._launch(prepared, notebook, planned)

    async def _launch(self, prepared: PreparedRun, notebook: Path, planned: dict[str, Any]) -> None:
        path = relative_to_root(self.root, notebook)
        self._planned[prepared.run_id] = planned
        folder = prepared.folder

        def spawned(pid: int) -> None:
            record = {"pid": pid, "path": path, "started": time.time()}
            (folder / LAUNCH_FILE).write_text(json.dumps(record), encoding="utf-8")

        launch = Launch(prepared, path, time.time(), kind=SWEEP, spawned=spawned)
        await self.runs.launch(launch)

    def stop(self, sweep_id: str) -> bool:
        """Ask a sweep to stop (SIGTERM: the trial running is cancelled, the record says
        how to resume). False when it isn't running."""
        if self.runs.stop(sweep_id):
            return True
        folder = self._find(sweep_id)
        pid = _launch_pid(folder) if folder else None
        if pid is None or not runner_alive(pid, sweep_id):
            return False
        os.kill(pid, signal.SIGTERM)  # started by an earlier server
        return True

    # --- reading ------------------------------------------------------------------------

    def list(self, notebook: Path | None = None) -> list[Sweep]:
        """The sweeps of `notebook` (its project's), or of every project the server knows;
        newest first."""
        if notebook is None:
            path, runs_dirs = None, self.projects.runs_dirs()
        else:
            path = relative_to_root(self.root, notebook)
            runs_dirs = [self.projects.of(notebook).runs_dir]
        views: dict[str, Sweep] = {}
        for runs_dir in runs_dirs:
            for folder in _sweep_folders(runs_dir):
                if folder.name not in views and (view := self._view(folder)) is not None:
                    views[folder.name] = view
        for sweep_id, launch in self.runs.launches.items():  # its sweep.json not written yet
            if launch.kind == SWEEP and sweep_id not in views:
                view = self._view(launch.folder)
                if view is not None:
                    views[sweep_id] = view
        found = [v for v in views.values() if path is None or v.path == path]
        return sorted(found, key=lambda v: v.id, reverse=True)

    def get(self, sweep_id: str) -> Sweep | None:
        folder = self._find(sweep_id)
        return self._view(folder) if folder is not None else None

    def _find(self, sweep_id: str) -> Path | None:
        if not RUN_ID.fullmatch(sweep_id):
            return None
        launch = self.runs.launches.get(sweep_id)
        if launch is not None and launch.kind == SWEEP:
            return launch.folder
        for runs_dir in self.projects.runs_dirs():
            real_root = os.path.realpath(runs_dir)
            for folder in runs_dir.glob(f"*/{SWEEPS_FOLDER}/{sweep_id}"):
                if (folder / SWEEP_FILE).is_file() and _inside(real_root, folder):
                    return folder
        return None

    def _view(self, folder: Path) -> Sweep | None:
        """A sweep folder's view; None for one whose record can't be read (anyone could
        have written it: one broken folder must not break the listing)."""
        try:
            return self._checked_view(folder)
        except Exception:  # whatever it holds, skip it
            return None

    def _checked_view(self, folder: Path) -> Sweep | None:
        sweep_id = folder.name
        launch = self.runs.launches.get(sweep_id)
        launch = launch if launch is not None and launch.kind == SWEEP else None
        record = folder / SWEEP_FILE
        if record.is_file():
            if record.stat().st_size > MAX_RECORD_BYTES:
                return None
            state = read_sweep(folder)
            if state.id != sweep_id:
                return None  # a sweep.json copied from another sweep
        elif launch is not None and sweep_id in self._planned:
            state = SweepState.from_dict(self._planned[sweep_id])
        else:
            return None
        error = None
        if launch is not None:
            state.status, error = self._launch_status(launch, state, record.is_file())
        elif state.status == SWEEP_RUNNING and not self._alive(sweep_id, folder, state):
            state.status, error = SWEEP_STOPPED, DIED
        if state.status != SWEEP_RUNNING:  # what its process left running, it stopped
            for trial in state.trials:
                if trial.status == RUNNING:
                    trial.status = CANCELLED
        return self._state_view(state, folder, error, launch)

    def _launch_status(
        self, launch: Launch, state: SweepState, recorded: bool
    ) -> tuple[str, str | None]:
        """The status (and why it ended, when the record can't say) of a sweep this server
        launched: its process is the authority while it waits or runs, its record after."""
        if launch.start_error is not None:
            return SWEEP_FAILED, launch.start_error
        if launch.running:  # (a resumed sweep's record says `stopped` until it writes)
            return SWEEP_RUNNING, None
        if launch.process is None:  # waiting for a slot, or taken out of the queue
            if launch.cancelled:
                return (state.status if recorded else SWEEP_STOPPED), STOPPED_WAITING
            return SWEEP_QUEUED, None
        if not recorded:  # the command refused to start (its log's last line says why)
            if launch.cancelled:
                return SWEEP_STOPPED, STOPPED_WAITING
            log_end = redact(read_log_end(launch.prepared.log)[0])
            return SWEEP_FAILED, last_line(log_end) or "the sweep command ended before it began"
        if state.status == SWEEP_RUNNING:
            return SWEEP_STOPPED, DIED
        return state.status, None

    def _alive(self, sweep_id: str, folder: Path, state: SweepState) -> bool:
        """Whether a sweep another server (or a terminal) started still runs: the process
        its `launch.json` names, else the runner of its running trial, which is the sweep's
        own process."""
        pid = _launch_pid(folder)
        if pid is not None:
            return runner_alive(pid, sweep_id)
        for trial in state.trials:
            if trial.status == RUNNING and trial.run_dir:
                with contextlib.suppress(Exception):
                    run = json.loads((Path(trial.run_dir) / "run.json").read_text("utf-8"))
                    return runner_alive(run.get("pid"))
        return True  # between two trials of a sweep from a terminal: its record says

    def _state_view(
        self, state: SweepState, folder: Path, error: str | None, launch: Launch | None
    ) -> Sweep:
        shown = self.projects.shows(state.tracking_uri)
        links = self.projects.links(state.tracking_uri)
        experiment = state.experiment_id if shown else None
        data = state.to_dict()
        for trial in data["trials"]:
            if not shown:
                trial["mlflow_run_id"] = None
            trial["mlflow_url"] = links.run(experiment, trial["mlflow_run_id"])
            del trial["run_dir"]
        for model in data["models"]:
            model["url"] = links.model(model["name"], model["version"])
        source = state.source and relative_or_none(self.root, Path(state.source))
        view = {key: data[key] for key in Sweep.model_fields if key in data}
        view["path"] = source or (launch.path if launch is not None else None)
        view["folder"] = relative_or_none(self.root, folder)
        view["error"] = error
        view["mlflow"] = {
            "tracking_uri": state.tracking_uri,
            "experiment_id": experiment,
            "run_id": state.mlflow_run_id if shown else None,
            "url": links.run(experiment, state.mlflow_run_id),
        }
        return Sweep.model_validate(view)


def _sweep_folders(runs_dir: Path) -> list[Path]:
    """Every sweep folder with a record under a runs dir (none outside it)."""
    real_root = os.path.realpath(runs_dir)
    return [
        record.parent
        for record in runs_dir.glob(f"*/{SWEEPS_FOLDER}/*/{SWEEP_FILE}")
        if RUN_ID.fullmatch(record.parent.name) and _inside(real_root, record.parent)
    ]


def _inside(real_root: str, folder: Path) -> bool:
    """Whether a sweep folder really is <runs dir>/<pipeline>/sweeps/<id>, links resolved."""
    return Path(os.path.realpath(folder)).parents[2] == Path(real_root)


def _launch_pid(folder: Path) -> int | None:
    try:
        pid = json.loads((folder / LAUNCH_FILE).read_text("utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None
