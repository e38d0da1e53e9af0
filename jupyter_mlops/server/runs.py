"""Runs started from JupyterLab: child processes of the server, and their history.

Each run is the `jupyter-mlops run` command in a child process, so a crash in a run (or in
a library it loads) never takes the server down, and a run behaves exactly as it does from a
terminal or CI. The request is checked here first, with the same code the command uses, so
bad parameters are a 400 rather than a failed run. Status comes from the run's ``run.json``,
so the history is the run folders and survives a server restart.

Each run goes to its notebook's project's store and run folders (`projects`), the ones
`jupyter-mlops run` uses from a terminal, so runs from both are one history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import read_bundle
from ..run.child import (
    RUNNER_LOG,
    PreparedRun,
    RunEnd,
    RunQueue,
    SpareSlot,
    child_arguments,
    prepare_run,
    read_log_end,
    run_end,
    spare_request,
    start_error,
)
from ..run.history import find_run, load_run, run_folders, runner_alive
from ..run.runstate import (
    RUN_BUNDLE,
    RUN_RUNNING,
    STATE_FILE,
    RunState,
    inside_folder,
)
from .paths import relative_or_none, relative_to_root
from .projects import Projects
from .redact import environment_secrets, redact
from .schemas import Run
from .worker import WorkerPool

LOG = logging.getLogger(__name__)
TAIL_BYTES = 4000
MAX_STATE_BYTES = 5 * 1024 * 1024  # a run.json is kilobytes; a bigger one is not a run's
MAX_BUNDLE_BYTES = 5 * 1024 * 1024
RUN_QUEUED = "queued"  # waiting for one of the server's run slots; nothing started yet
RUN, SWEEP = "run", "sweep"  # what a launch's command is


@dataclass
class Launch:
    """A run this server started (or queued) whose run.json may not exist yet."""

    prepared: PreparedRun
    path: str
    created: float
    process: asyncio.subprocess.Process | None = None  # None while queued
    starting: bool = False  # its process is being spawned
    start_error: str | None = None  # why its process could not be started
    cancelled: bool = False  # asked to stop by this server
    waiter: asyncio.Task[None] | None = None  # starts the next queued run when this one ends
    kind: str = RUN  # RUN, or SWEEP: a sweep's command (`sweeps`) takes a run slot too
    spawned: Callable[[int], None] | None = None  # told the pid once its process exists

    @property
    def folder(self) -> Path:
        return self.prepared.folder

    @property
    def running(self) -> bool:
        return self.starting or (self.process is not None and self.process.returncode is None)

    @property
    def ended(self) -> bool:
        """It won't run (any more): its process ended or could not be spawned."""
        return self.start_error is not None or (self.process is not None and not self.running)

    def end(self, state: RunState | None, log_end: str) -> RunEnd:
        """How it ended (once `ended`, or `cancelled`), by the rule the widget uses too;
        `state` is its run.json if it has one, `log_end` its runner.log's end as shown."""
        return run_end(
            state,
            cancelled=self.cancelled,
            spawned=self.process is not None,
            log_end=log_end,
            returncode=self.process.returncode if self.process else None,
            error=self.start_error,
        )


class RunManager:
    def __init__(self, root: Path, projects: Projects, max_running: int | None = None) -> None:
        self.root = root
        self.projects = projects
        self.max_running = max_running or os.cpu_count() or 1
        self.launches: dict[str, Launch] = {}
        self.queue: RunQueue[str] = RunQueue(self.max_running)  # by run id
        self._spares: SpareSlot[asyncio.subprocess.Process] = SpareSlot()  # the next run's

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
        places = self.projects.of(notebook, fresh=True)  # (a repository made since: seen)
        prepared = await worker.call(
            "checking the run",
            prepare_run,
            notebook,
            parameters,
            places.runs_dir,
            places.store,
            jobs,
            from_stage,
            only,
        )
        await self.launch(Launch(prepared, relative_to_root(self.root, notebook), time.time()))
        return prepared.run_id

    async def launch(self, launch: Launch) -> None:
        """Start a checked command (a run's, or a sweep's: `sweeps`) in a child process, or
        queue it while `max_running` commands of this server are running."""
        key = launch.prepared.run_id
        self.launches[key] = launch
        self.queue.enqueue(key)
        await self._start_queued()

    async def _start_queued(self) -> None:
        # A run takes its slot as it leaves the queue, before the await that spawns it, so
        # calls that overlap while a process is spawned never start more than the limit.
        while (run_id := self.queue.next()) is not None:
            self.queue.started(run_id)
            launch = self.launches[run_id]
            launch.starting = True
            try:
                launch.process = await self._spawn(launch.prepared)
            except OSError as error:  # its folder was removed meanwhile, say
                launch.start_error = start_error(error)
                self.queue.finished(run_id)
                continue
            except BaseException:  # no process to wait for: its slot is free again
                self.queue.finished(run_id)
                raise
            finally:
                launch.starting = False
            if launch.spawned is not None:
                with contextlib.suppress(Exception):  # (a record beside it, for a restart)
                    launch.spawned(launch.process.pid)
            if launch.cancelled:  # cancelled while it was being started
                launch.process.send_signal(signal.SIGTERM)
            launch.waiter = asyncio.create_task(self._next_when_done(run_id, launch.process))

    async def _spawn(self, prepared: PreparedRun) -> asyncio.subprocess.Process:
        """The run's process: the runner started ahead (`run/spare.py`) if one fits, else
        its command started afresh."""
        spare, unfit = self._spares.take(self.root)
        if unfit is not None:
            await _end(unfit)
        if spare is not None and spare.returncode is None and spare.stdin is not None:
            try:
                spare.stdin.write(spare_request(prepared))
                await spare.stdin.drain()
                spare.stdin.close()
                return spare
            except OSError:  # it died meanwhile
                await _end(spare)
        with child_arguments(prepared, self.root) as arguments:
            return await asyncio.create_subprocess_exec(*prepared.command, **arguments)

    async def _start_spare(self, expected: str) -> None:
        """Keep a runner started ahead for the next run (expected to be of the notebook
        `expected`, the one just run), once one run has been asked for (a server nobody runs
        from keeps none)."""
        busy = self.queue.running > 0 or self.queue.next() is not None
        arguments = self._spares.begin(self.root, expected, busy)
        if arguments is None:
            return
        spare = None
        try:  # on failure, no spare: the next run starts afresh, as before
            with contextlib.suppress(Exception):
                spare = await asyncio.create_subprocess_exec(*arguments.pop("args"), **arguments)
        finally:  # (a cancel, as the server stops)
            unwanted = self._spares.started(spare)
        if unwanted is not None:  # the server began to stop while it started
            await _end(unwanted)

    async def _next_when_done(self, run_id: str, process: asyncio.subprocess.Process) -> None:
        try:
            await process.wait()
        finally:  # its slot is free even when stop_all cancels this wait
            self.queue.finished(run_id)
        await self._start_queued()
        await self._start_spare(self.launches[run_id].prepared.notebook)

    # --- reading ------------------------------------------------------------------------

    def list(self, notebook: Path | None = None) -> list[Run]:
        """The runs of `notebook` (its project's run folders), or of every notebook in the
        run folders of every project the server knows; newest first."""
        if notebook is None:
            path, runs_dirs = None, self.projects.runs_dirs()
        else:
            path = relative_to_root(self.root, notebook)
            runs_dirs = [self.projects.of(notebook).runs_dir]
        seen = set()
        views = []
        for runs_dir in runs_dirs:
            for folder in run_folders(runs_dir):
                if folder.name in seen:
                    continue
                seen.add(folder.name)
                view = self._view(folder, with_logs=False, path=path)
                if view and (path is None or view.path == path):
                    views.append(view)
        for run_id, launch in self.launches.items():  # started, run.json not written yet
            if launch.kind != RUN:
                continue
            if run_id not in seen and (path is None or launch.path == path):
                views.append(self._launch_view(run_id, launch, with_logs=False))
        return sorted(views, key=lambda v: v.id, reverse=True)

    def get(self, run_id: str) -> Run | None:
        folder = self._find(run_id)
        if folder is not None:
            return self._view(folder, with_logs=True)
        launch = self._run_launch(run_id)
        if launch is not None:
            return self._launch_view(run_id, launch, with_logs=True)
        return None

    def _run_launch(self, run_id: str) -> Launch | None:
        """The launch of run `run_id` (not a sweep's)."""
        launch = self.launches.get(run_id)
        return launch if launch is not None and launch.kind == RUN else None

    def _find(self, run_id: str) -> Path | None:
        """The run's folder (with its run.json) in the run folders of a known project."""
        launch = self._run_launch(run_id)
        if launch is not None:  # started here: its folder is known
            runs_dirs = [launch.folder.parent.parent]
        else:
            runs_dirs = self.projects.runs_dirs()
        for runs_dir in runs_dirs:
            folder = find_run(runs_dir, run_id)
            if folder is not None:
                return folder
        return None

    def _load(self, folder: Path) -> RunState:
        """A run folder's state (an abandoned run marked failed, in MLflow too when its
        store is one the server shows)."""
        return load_run(folder, self.projects.stores(), background=True)

    def _view(self, folder: Path, with_logs: bool, path: str | None = None) -> Run | None:
        """A run folder's view; None for one that can't be read or isn't a run's (it is
        data anyone could have written: one broken folder must not break the listing)."""
        try:
            if (folder / STATE_FILE).stat().st_size > MAX_STATE_BYTES:
                return None
            state = self._load(folder)
            if state.id != folder.name:
                return None  # a run.json copied from another run: not this folder's run
            if path is not None and relative_or_none(self.root, Path(state.source or "")) != path:
                return None  # another notebook's: no need to read its bundle
            return self._checked_view(state, folder, with_logs)
        except Exception as error:  # whatever it holds, skip it
            LOG.debug("skipping the run folder %s: %s: %s", folder, type(error).__name__, error)
            return None

    def _checked_view(self, state: RunState, folder: Path, with_logs: bool) -> Run:
        launch = self._run_launch(state.id)
        if launch is not None and launch.ended:  # it may have exited before writing its end
            state.status = launch.end(state, "").status
        if not self.projects.shows(state.tracking_uri):
            # Not a store of a project of this server: no links, and ids that mean nothing.
            state.experiment_id = state.parent_run_id = None
            for stage in state.stages:
                stage.mlflow_run_id = None
        return self._state_view(state, folder, with_logs)

    def _state_view(self, state: RunState, folder: Path, with_logs: bool) -> Run:
        data = state.to_dict()
        links = self.projects.links(state.tracking_uri)
        cells = _stage_cells(folder)
        path = state.source and relative_or_none(self.root, Path(state.source))
        for stage in data["stages"]:
            stage["cells"] = cells.get(stage["name"], [])
            stage["mlflow_url"] = links.run(state.experiment_id, stage["mlflow_run_id"])
            if with_logs:
                stage["log_tail"] = _tail(folder, stage["log"]) if stage["log"] else ""
        for model in data["models"]:
            model["url"] = links.model(model["name"], model["version"])
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
        view["folder"] = relative_or_none(self.root, folder)
        view["run_dir"] = str(folder.absolute())
        view["mlflow"] = {
            "tracking_uri": state.tracking_uri,
            "experiment_id": state.experiment_id,
            "run_id": state.parent_run_id,
            "url": links.run(state.experiment_id, state.parent_run_id),
        }
        if with_logs:
            view["log_tail"] = _tail(folder, RUNNER_LOG)
        return Run.model_validate(view)  # a run.json of another shape: skipped by _view

    def _launch_view(self, run_id: str, launch: Launch, with_logs: bool) -> Run:
        """A run with no run.json yet: queued, starting, or ended before it began."""
        log = _tail(launch.folder, RUNNER_LOG)  # masked, as the message taken from it
        end = launch.end(None, log) if launch.cancelled or launch.ended else None
        if end is not None:
            status, message = end.status, end.message
        else:
            status = RUN_RUNNING if launch.process or launch.starting else RUN_QUEUED
            message = None
        view: dict[str, Any] = {
            "id": run_id,
            "pipeline": launch.prepared.pipeline,
            "path": launch.path,
            "folder": relative_or_none(self.root, launch.folder),
            "run_dir": str(launch.folder.absolute()),
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
            if end is not None
            else None,
            "mlflow": {
                "tracking_uri": launch.prepared.tracking_uri,
                "experiment_id": None,
                "run_id": None,
                "url": None,
            },
        }
        if with_logs:
            view["log_tail"] = log
        return Run.model_validate(view)

    # --- stopping -----------------------------------------------------------------------

    def cancel(self, run_id: str) -> bool:
        """Ask a running run to stop (its runner kills the kernels and fails its MLflow runs).

        Returns False when the run has already finished.
        """
        launch = self._run_launch(run_id)
        if launch is not None and self._stop_waiting(launch):
            return True
        folder = self._find(run_id)
        state = self._load(folder) if folder else None
        if state is not None and state.status != RUN_RUNNING:
            return False
        if launch is not None and self._stop_running(launch):
            return True
        if state is None or not runner_alive(state.pid, run_id):
            return False
        os.kill(state.pid, signal.SIGTERM)  # started by an earlier server: signal by pid
        return True

    def stop(self, key: str) -> bool:
        """Ask a command this server launched (a sweep's, say) to stop: taken out of the
        queue, or sent SIGTERM (its Ctrl-C). False when it isn't waiting or running."""
        launch = self.launches.get(key)
        if launch is None:
            return False
        return self._stop_waiting(launch) or self._stop_running(launch)

    def _stop_waiting(self, launch: Launch) -> bool:
        """Stop a launch whose process doesn't exist yet (queued, or being spawned)."""
        if self.queue.cancel(launch.prepared.run_id) or launch.starting:
            launch.cancelled = True  # (one being spawned is stopped once its process exists)
            return True
        return False

    def _stop_running(self, launch: Launch) -> bool:
        if launch.process is not None and launch.running:
            launch.cancelled = True
            launch.process.send_signal(signal.SIGTERM)
            return True
        return False

    async def stop_all(self, timeout: float = 20) -> None:
        """On server shutdown, stop the runs it started, leaving no kernel behind."""
        spare = self._spares.close()
        if spare is not None:
            await _end(spare)
        for run_id in self.queue.cancel_all():
            self.launches[run_id].cancelled = True
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


def _stage_cells(folder: Path) -> dict[str, list[int]]:
    """Each stage's cells, from the run's bundle; {} when it can't be read.

    The sidebar polls a run every second: the parsed bundle is kept while its file is
    unchanged, and one larger than a bundle ever is isn't parsed at all.
    """
    spec = folder / RUN_BUNDLE / "pipeline.yaml"
    try:
        stat = spec.stat()
    except OSError:
        return {}
    key = (str(spec), stat.st_mtime_ns, stat.st_size)
    if key not in _CELLS:
        cells: dict[str, list[int]] = {}
        if stat.st_size <= MAX_BUNDLE_BYTES:
            with contextlib.suppress(Exception):  # anyone could have written it
                bundle = read_bundle(spec)
                cells = {stage.name: list(stage.cells) for stage in bundle.stages}
        if len(_CELLS) >= 1024:
            _CELLS.clear()
        _CELLS[key] = cells
    return _CELLS[key]


_CELLS: dict[tuple[str, int, int], dict[str, list[int]]] = {}


def _tail(folder: Path, log: str) -> str:
    """The end of a run folder's log, its secrets masked before it is cut (a cut secret
    would escape the mask). Only a file inside the folder: a symlink planted there is not
    followed out of it.
    """
    real = os.path.realpath(folder)
    if inside_folder(real, log) is None:
        return ""
    margin = max((len(secret) for secret in environment_secrets()), default=0)
    text, cut = read_log_end(os.path.join(real, log), TAIL_BYTES + 4 * margin)
    text = redact(text)
    if cut:  # it may begin inside a secret, cut too short to be masked: drop that
        text = text[margin:]
    return text[-TAIL_BYTES:]


async def _end(process: asyncio.subprocess.Process) -> None:
    """Kill a spare runner that won't serve (it waits on its stdin: nothing to lose)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()
