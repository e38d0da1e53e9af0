"""Executing a bundle: stages in dependency order, each through papermill in a fresh kernel.

The runner owns a run folder (``<runs root>/<pipeline>/<run id>/``) holding ``run.json``
(the live state), the executed stage notebooks and their HTML, one log per stage, and the
artifact store the stages hand values through. The runner runs in the process that runs the
pipeline (``jupyter-mlops run``, a scheduler's ``stage`` task, the pytest plugin) and does
the bookkeeping: run.json, MLflow runs through ``tracking``, the cache. What to start when is
decided by ``scheduling`` (pure), one stage's kernel is ``stage``, reused outputs ``reuse``.

Stopping is first-class: Ctrl-C or SIGTERM kills every kernel the run started (process
groups included), marks unfinished stages cancelled and every MLflow run FAILED. So does the
end of the process that started the runner, when it names itself (``orphans``), and a
reaper process cleans up after a runner killed outright.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..analysis import Stage
from ..artifacts import RemoteArtifactStore, StageRecord, open_store
from ..bundle import ARTIFACTS_PARAMETER, Bundle
from ..errors import BadInput, MlopsError, RunInterrupted, StageFailed, TrackingLost
from ..files import atomic_write
from ..places import project_runs_dir
from ..runtime import GATE_ENV, GATE_GO, GATE_STOP, WARM_UP_ENV, WARM_UP_MODELS
from ..tracking import PipelineTracker, StageOutcome, resolve_tracking_uri
from ..tracking.client import quiet_logs
from ..tracking.models import NAMES_ENV, REQUIREMENTS_ENV, SOURCE_ENV
from ..tracking.registry import registered_name
from .cache import CachedStage
from .history import load_run, mark_abandoned, run_folders
from .kernels import StageKernelManager, choose_kernel, forkable_python
from .orphans import Reaper, stop_with_owner, without_owner
from .reuse import Earlier, Reuse, earlier_outputs, shared_records
from .runstate import (
    CACHED,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_RUNNING,
    RUN_SUCCEEDED,
    RUNNING,
    SKIPPED,
    RunState,
    RunStateFile,
    StageError,
    StageState,
    run_folder,
    store_location,
)
from .scheduling import CACHED as CACHED_AT_GATE
from .scheduling import OPEN, Schedule, default_jobs, outside_producers, select_stages
from .stage import StageJob, Watchdog, execute, render_html
from .stopping import StopFlag, stop_requests
from .timings import stage_timings
from .zygote import Zygote, forking_disabled, imported_modules, keep_ahead, take_ahead

Listener = Callable[[RunState, str | None], None]


@dataclass
class RunOptions:
    parameters: dict[str, Any] = field(default_factory=dict)  # resolved and type-checked
    jobs: int = field(default_factory=default_jobs)
    from_stage: str | None = None
    only: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    runs_root: Path | None = None  # None: `pipeline.prepare` puts it at the project's root
    kernel: str | None = None
    stage_timeout: float | None = None
    run_id: str | None = None
    artifact_store: str | None = None  # fsspec URL or path shared by machines; default: local
    parent_run_id: str | None = None  # log into this MLflow run (a scheduler's `begin` made it)
    use_cache: bool = True  # reuse the outputs of stages whose inputs are all unchanged
    fork: bool = True  # fork stage kernels from a zygote (run/zygote.py); False: fresh ones
    register: bool = True  # register its models; False: a sweep's trial (its sweep registers)
    sweep_run_id: str | None = None  # the MLflow run of the sweep this run is a trial of


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class PipelineRunner:
    """One pipeline run: made (and checked) by ``pipeline.prepare``, then `run`."""

    def __init__(
        self,
        bundle: Bundle,
        options: RunOptions,
        listeners: list[Listener] | None = None,
        write_bundle: Callable[[Bundle], None] | None = None,
        code: tuple[list[str], dict[str, list[str]]] = ([], {}),
    ) -> None:
        self.bundle = bundle
        self._code = code  # its setup cells' and stages' code: the zygote imports their imports
        # Where the project's default store and run folders are looked for (`places`): the
        # notebook the run was made from, or the bundle given.
        self._anchor = (bundle.source_path if write_bundle else None) or bundle.root
        if options.runs_root is None:  # the project's: its git top level, else here
            options = replace(options, runs_root=project_runs_dir(self._anchor))
        self.options = options
        assert options.runs_root is not None
        self.runs_root: Path = options.runs_root
        self.listeners = listeners or []
        self._write_bundle = write_bundle  # a notebook's bundle, written once connected
        for name in [options.from_stage, *options.only]:
            if name is not None:
                bundle.stage(name)  # raises a BadInput that lists the stages
        self.selected = select_stages(
            bundle.stage_names, bundle.downstream, options.from_stage, options.only
        )
        self.kernel = choose_kernel(options.kernel, bundle.kernel)
        run_id = options.run_id or new_run_id()
        self.run_dir = run_folder(self.runs_root, bundle.name, run_id).resolve()
        self.store = open_store(
            store_location(options.artifact_store, self.run_dir, bundle.name, run_id)
        )
        # Caching needs the objects on this machine; a scheduler's task runs what it's told.
        local = not isinstance(self.store, RemoteArtifactStore)
        self.reuse = Reuse(
            bundle,
            self.runs_root,
            options.parameters,
            self.kernel.name,
            cache=local and not options.parent_run_id,
            use_cache=options.use_cache,
            forced=self.selected if (options.from_stage or options.only) else set(),
        )
        self.records: dict[str, StageRecord] = {}
        # These may refuse the run, so they come before any file is written.
        producers = outside_producers(
            self.selected, {s.name: s.inputs.values() for s in bundle.stages}
        )
        self.earlier: dict[str, Earlier] = {}
        self._producers: set[str] = set()
        if options.parent_run_id:
            self.records.update(shared_records(self.store, producers))
        else:
            self.reuse.check_earlier(producers, self.run_dir)
            self._producers = producers  # their lineage is checked once the bundle is written
        self._kernels: dict[str, StageKernelManager] = {}
        self._stopping = threading.Event()
        self._stop_requested = StopFlag()
        self._stop_reason: str | None = None  # why, when it wasn't a Ctrl-C or a cancel
        self._reaper = Reaper()
        self._lock = threading.Lock()
        self.run_id = run_id
        self.warnings = [w for w in [self.kernel.warning] if w]
        self.started = False
        self._tracker: PipelineTracker | None = None
        self._zygote: Zygote | None = None
        self._finishing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finishing")
        self._finishing_work: list[Future[None]] = []
        self._ending: list[_Launch] = []  # stages whose kernels may still be ending

    # --- the whole run ------------------------------------------------------------------

    def run(self) -> RunState:
        """Run the pipeline. Raises StageFailed or RunInterrupted after recording them.

        Nothing is written before this is called: the constructor only checks the request.
        """
        try:
            with stop_requests(self._stop_requested), stop_with_owner(self._owner_ended):
                # A cancel while the run starts (connecting to MLflow) is honoured once the
                # parent run exists, so that it ends FAILED rather than RUNNING.
                self.start()
                try:
                    self._schedule()
                except KeyboardInterrupt:
                    self._stop()
                    cancelled = True
                else:
                    cancelled = False
            return self.finish(cancelled=cancelled)
        except BaseException as error:
            with contextlib.suppress(Exception):  # the error being raised says more
                self._drain_finishing()  # the stages' own ends first, then the run's
            self._end_unfinished(error)
            raise
        finally:
            try:
                with contextlib.suppress(Exception):
                    self._drain_finishing()
            finally:
                self._close_zygote()
                self._reaper.release()  # a run that could not start has nothing left running

    def _end_unfinished(self, error: BaseException) -> None:
        """Record the end of a run that an error stopped before it recorded its own end.

        The runner ends its runs itself when a stage fails, on Ctrl-C and when MLflow goes
        away; anything else (a bug, an artifact store it can't write to) would leave the
        parent MLflow run, created first, RUNNING for good. So it and its stages' runs end
        FAILED, in run.json and MLflow, as a runner found dead would be, with the error.
        """
        if not self.started or self.state.state.status != RUN_RUNNING:
            return  # nothing was recorded yet, or the run recorded its end
        tracker = self._tracker
        if tracker is not None and tracker.parent_run_id:  # it may have died creating it
            self.state.update(
                parent_run_id=tracker.parent_run_id, experiment_id=tracker.experiment_id
            )
        reachable = tracker.tracking_uri if tracker is not None and not tracker.lost else None
        mark_abandoned(self.state.state, reachable)
        reason = str(error) if isinstance(error, MlopsError) else f"{type(error).__name__}: {error}"
        self.state.update(error=StageError(f"the run stopped on an unexpected error: {reason}"))

    def _owner_ended(self, pid: int) -> None:
        """The process that started us ended (called from the owner watch's thread)."""
        self._stop_reason = (
            f"the process that started this run (pid {pid}) ended, so the run was stopped: "
            "start it again"
        )
        self._stop_requested.set()

    def start(self) -> None:
        """Create the run folder and the parent MLflow run; record reused stages.

        With `run`, callers that drive stages themselves (the pytest plugin) use
        `start`, `run_stage` for each stage in order, then `finish`.
        """
        try:
            self._start()
        except BaseException:
            self._close_zygote()  # `finish` won't be called: a run that didn't start
            raise

    def _start(self) -> None:
        self.connect()
        fresh = not self.run_dir.exists()
        self.lay_out()  # connected: now the run may write its files
        try:  # the stages' keys read the bundle's files: only now can they be compared
            uri = self.tracker.tracking_uri
            self.earlier = self.reuse.find_earlier(self._producers, self.run_dir, uri)
        except BadInput:
            if fresh:  # nothing of the run but the bundle just written: leave no trace
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        self._settle_abandoned_runs()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._reaper.start(self.run_dir, self.tracker.tracking_uri)
        if self._zygote is not None:  # it ends with us anyway; its folder needs the reaper
            self._reaper.track(self._zygote.folder)
        self.state = RunStateFile(
            RunState(
                id=self.run_id,
                pipeline=self.bundle.name,
                run_dir=str(self.run_dir),
                source=str(self.bundle.source_path) if self.bundle.source_path else None,
                parameters=self.options.parameters,
                stages=[StageState(s.name) for s in self.bundle.stages],
                warnings=self.warnings,
                artifact_store=self.store.location,
                bundle=str(self.bundle.root.resolve()),
                tracking_uri=self.tracker.tracking_uri,
            )
        )
        self.started = True  # its run.json exists: callers may read and end it
        self._copy_earlier_outputs()
        if self.options.parent_run_id:
            self.tracker.attach(self.options.parent_run_id, self.options.parameters)
            parent = self.options.parent_run_id
        else:
            parent = self.tracker.start(
                self.options.parameters, self.run_dir, nested_in=self.options.sweep_run_id
            )
        self.state.update(experiment_id=self.tracker.experiment_id, parent_run_id=parent)
        self.outcomes = self._log_cached_stages()
        self._notify(None)

    def _start_zygote(self) -> None:
        """Start the process that forks the stages' kernels (run/zygote.py), unless forking
        is turned off or the kernel isn't ipykernel started the usual way."""
        if self._zygote is not None or not self.options.fork or forking_disabled():
            return
        python = forkable_python(self.kernel.name)
        if python is None:
            return
        # Every module the setup cells and the selected stages' cells import comes first:
        # the zygote's imports overlap connecting to MLflow, and a module a stage imports
        # (or receives: a section that imports is often a stage handing modules on) is then
        # there for every later stage. MLflow itself, for the stages that log a model, is
        # imported while no kernel is asked for.
        setup, stages = self._code
        selected = [source for name in self.selected for source in stages.get(name, [])]
        first = list(dict.fromkeys(imported_modules(setup) + imported_modules(selected)))
        later = ["mlflow"] if any(stage.models for stage in self.bundle.stages) else []
        env = without_owner(dict(os.environ))
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # as the kernels get it: read at import
        cwd = str(self.bundle.workdir_path)
        try:
            self._zygote = take_ahead(python, cwd, first, later, env) or Zygote(
                python, cwd, first, later, env
            )
        except OSError as error:
            self.warnings.append(
                f"stage kernels start fresh: the process that forks them didn't start ({error})"
            )

    def start_zygote_ahead(self) -> None:
        """Start this run's zygote now and keep it for the run that will ask for the same
        one (`zygote.keep_ahead`); this runner runs nothing."""
        self._start_zygote()
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            keep_ahead(zygote)

    def _close_zygote(self) -> None:
        zygote, self._zygote = self._zygote, None
        if zygote is not None:
            # Its log (what it couldn't import, why it refused to fork) joins the stages'.
            zygote.close(keep_log=self.run_dir / "logs" / "zygote.log" if self.started else None)
            self._reaper.untrack(zygote.folder)

    def connect(self) -> PipelineTracker:
        """Reach the tracking store; within seconds, a TrackingUnavailable when it can't be.

        `start` connects first, and only then writes files (the bundle of a notebook), so an
        unreachable server leaves nothing behind.
        """
        if self._tracker is None:
            self._start_zygote()  # its imports overlap MLflow's import and the store's opening
            try:
                uri = resolve_tracking_uri(self.options.tracking_uri, near=self._anchor)
                # papermill and nbclient log what our own one-paragraph errors already say
                # ("Kernel died..."), and MLflow announces creating a new store's tables (it
                # configures its loggers when imported: `quiet_logs` imports it first).
                quiet_logs(logging.CRITICAL)
                logging.getLogger("papermill").setLevel(logging.CRITICAL)
                self._tracker = PipelineTracker(uri, self.bundle)
            except BaseException:
                self._close_zygote()
                raise
        return self._tracker

    def lay_out(self) -> None:
        """Write the notebook's bundle into the run folder, for an executor that runs the
        stages elsewhere (`dask_executor`); a given bundle is already written."""
        if self._write_bundle is not None:
            self._write_bundle(self.bundle)
            self._write_bundle = None

    @property
    def tracker(self) -> PipelineTracker:
        """The tracking store, once `connect` (or `start`) reached it."""
        if self._tracker is None:
            raise RuntimeError("the runner is not connected to MLflow yet: call connect()")
        return self._tracker

    def _settle_abandoned_runs(self) -> None:
        """Earlier runs of this pipeline whose runner was killed (kill -9, a power cut) are
        still marked running: reading them marks them failed, in run.json and MLflow."""
        for folder in run_folders(self.runs_root):
            if folder.parent.name == self.bundle.name:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    load_run(folder, self.tracker.tracking_uri)

    def run_stage(self, name: str) -> StageOutcome:
        """Run one stage now; its upstream stages must have run (or been reused)."""
        outcome = self._execute_stage(self.bundle.stage(name))
        self.outcomes[name] = outcome
        return outcome

    def finish(self, cancelled: bool = False) -> RunState:
        """End the run: its status, the parent MLflow run, and registered models."""
        try:
            self._drain_finishing()
        finally:
            self._finishing.shutdown(wait=False)  # nothing is left for its thread to do
            self._close_zygote()  # every kernel has ended
        stages = self.state.state.stages
        failed = next((s for s in stages if s.status == FAILED), None)
        status = RUN_CANCELLED if cancelled else RUN_FAILED if failed else RUN_SUCCEEDED
        for stage in stages:
            if stage.status in (QUEUED, RUNNING):
                left = CANCELLED if cancelled else SKIPPED
                self.state.update(stage.name, status=left)
        ordered = [self.outcomes[n] for n in self.bundle.stage_names if n in self.outcomes]
        # A scheduler's `end` task ends a parent run it doesn't own here.
        attached = self.options.parent_run_id is not None
        models = []
        if not attached and not self.tracker.lost:
            with contextlib.suppress(TrackingLost):
                models = self.tracker.end(
                    ordered, complete=status == RUN_SUCCEEDED, register=self.options.register
                ).models
        if self.tracker.lost:
            status = RUN_CANCELLED if cancelled else RUN_FAILED
        self.state.update(
            status=status,
            finished=time.time(),
            models=[m.to_dict() for m in models],
            error=failed.error if failed else self._tracking_lost_error() or self._stop_error(),
        )
        self._close_zygote()
        self._reaper.release()  # its end is recorded: nothing is left to clean up after us
        self._notify(None)
        state = self.state.state
        lost = self._tracking_lost_error()
        if lost is not None:
            raise TrackingLost(lost.message)
        if cancelled:
            raise RunInterrupted(f"run {state.id} was stopped; its MLflow runs are marked FAILED")
        if failed is not None and failed.error is not None:
            error = failed.error
            raise StageFailed(
                error.message,
                stage=failed.name,
                cell=error.cell,
                line=error.line,
                exception=error.exception,
                notebook=str(self.run_dir / failed.notebook) if failed.notebook else None,
            )
        return state

    def _stop_error(self) -> StageError | None:
        return StageError(self._stop_reason) if self._stop_reason else None

    def _tracking_lost_error(self) -> StageError | None:
        if not self.tracker.lost:
            return None
        return StageError(
            f"lost the MLflow tracking server at {self.tracker.tracking_uri} during the run "
            f"({self.tracker.lost_reason}). The results so far are kept in {self.run_dir}; "
            f"when the server is back, upload them with `jupyter-mlops log {self.run_dir}`"
        )

    def _schedule(self) -> None:
        """Run the selected stages as `Schedule` decides, each in a worker thread.

        Every decision about a stage is taken here, in one thread, between two waits: start
        it, open its gate, serve it from the cache, skip it. A pre-started stage's kernel
        runs its setup cells, then waits at its gate (in `load_inputs`) until this loop
        opens it, or stops it there.
        """
        jobs = max(1, self.options.jobs)
        order = [s.name for s in self.bundle.stages if s.name in self.selected]
        upstream = {s.name: s.upstream for s in self.bundle.stages}
        launches: dict[str, _Launch] = {}
        gates_dir = Path(tempfile.mkdtemp(prefix="mlops-gates-"))
        self._reaper.track(gates_dir)

        def launch_of(name: str) -> _Launch:
            if name not in launches:
                launches[name] = self._new_launch(self.bundle.stage(name), gates_dir / name)
            return launches[name]

        def in_cache(name: str) -> bool:
            launch = launch_of(name)
            self._check_cache(launch)
            return launch.hit is not None

        schedule = Schedule(upstream, order, jobs, in_cache)
        futures: dict[Future[StageOutcome], str] = {}

        def collect(done: set[Future[StageOutcome]]) -> None:
            for future in done:
                name = futures.pop(future)
                outcome = self.outcomes[name] = future.result()
                schedule.ended(name, outcome.status == "FINISHED")

        with ThreadPoolExecutor(max_workers=2 * jobs) as pool:
            try:
                while not schedule.over:
                    if self._stop_requested.is_set():
                        raise KeyboardInterrupt  # here, between two decisions: a safe point
                    halted = self._stopping.is_set() or self.tracker.lost
                    for name, decision in schedule.gates(halted):
                        if decision == OPEN:
                            self._open_gate(launches[name])
                        else:
                            self._stop_at_gate(launches[name], decision)
                    skipped, starts = schedule.starts(halted)
                    for name in skipped:
                        self.state.update(name, status=SKIPPED)
                    for start in starts:
                        launch = launch_of(start.stage)
                        task = self._reuse if start.cached else self._launch_stage
                        futures[pool.submit(task, launch)] = start.stage
                    if not futures:
                        break
                    finished, _ = wait(futures, timeout=0.05, return_when=FIRST_COMPLETED)
                    collect(finished)
            except BaseException:
                # Ctrl-C, or anything unexpected here: kernels waiting at their gates would
                # otherwise wait forever, and with them this pool's shutdown.
                self._stop()
                with contextlib.suppress(Exception):
                    collect(set(futures))  # their kernels are dead: they return promptly
                raise
            finally:
                shutil.rmtree(gates_dir, ignore_errors=True)
                self._reaper.untrack(gates_dir)

    def _open_gate(self, launch: _Launch) -> None:
        now = time.time()
        self.state.update(launch.stage.name, status=RUNNING, started=now)
        self._notify(launch.stage.name)
        with self._lock:
            launch.opened = True
            launch.watchdog.start(self._kernels.get(launch.stage.name))
        if launch.gate is not None:
            atomic_write(launch.gate, GATE_GO)

    def _stop_at_gate(self, launch: _Launch, decision: str) -> None:
        """The stage won't run: its kernel, waiting or still starting, stops at the gate."""
        with self._lock:
            launch.decision = decision
        if launch.gate is not None:
            atomic_write(launch.gate, GATE_STOP)

    def _stop(self) -> None:
        """Kill every running kernel; worker threads then see their kernel die and return."""
        self._stopping.set()
        kernels = list(self._kernels.values())  # one step under the GIL: no lock needed
        for kernel in kernels:
            kernel.kill_now()

    def stop_now(self, reason: str) -> None:
        """Stop a stage running through `run_stage` (a scheduler's task): its kernel is
        killed and it ends FAILED with `reason`. Safe from any thread and from a signal
        handler: it takes no lock."""
        self._stop_reason = reason
        self._stop()

    def _notify(self, stage: str | None) -> None:
        for listener in self.listeners:
            listener(self.state.state, stage)

    # --- one stage ----------------------------------------------------------------------

    def _check_cache(self, launch: _Launch) -> None:
        launch.key = self.reuse.key(launch.stage, self.records, self.tracker.tracking_uri)
        launch.hit = self.reuse.lookup(launch.stage, launch.key)
        self.state.update(launch.stage.name, key=launch.key)

    def _execute_stage(self, stage: Stage) -> StageOutcome:
        """Run a stage now (its upstream stages are done), or reuse its cached outputs."""
        launch = self._new_launch(stage, gate=None)
        self._check_cache(launch)
        if launch.hit is not None:
            return self._reuse(launch)
        launch.opened = True
        self.state.update(stage.name, status=RUNNING, started=time.time())
        self._notify(stage.name)
        return self._launch_stage(launch)

    def _new_launch(self, stage: Stage, gate: Path | None) -> _Launch:
        return _Launch(stage, gate, watchdog=Watchdog(self.options.stage_timeout))

    def _launch_stage(self, launch: _Launch) -> StageOutcome:
        """Run one stage's notebook (waiting at its gate when pre-started) and record it."""
        stage = launch.stage
        run_id = ""
        record = None
        try:
            run_id = self.tracker.start_stage(stage, self.bundle.position(stage.name))
            self.state.update(stage.name, mlflow_run_id=run_id)
            executed = self.run_dir / "notebooks" / Path(self.bundle.notebooks[stage.name]).name
            log = self.run_dir / "logs" / f"{stage.name}.log"
            self.state.update(
                stage.name,
                notebook=str(executed.relative_to(self.run_dir)),
                log=str(log.relative_to(self.run_dir)),
            )
            error = self._papermill(launch, executed, log, run_id)
            if launch.decision:  # stopped at its gate: it never ran
                return self._never_ran(launch, run_id)
            with contextlib.suppress(TrackingLost):  # the stage's work stands regardless
                self.tracker.log_inputs(run_id, stage, self.records)
            if error is None:
                record = self.store.read_record(stage.name)
                with self._lock:
                    self.records[stage.name] = record
                with contextlib.suppress(TrackingLost):
                    warning = self.tracker.link_models(run_id, stage, record, self.records)
                    if warning:
                        with self._lock:
                            self.state.update(warnings=[*self.state.state.warnings, warning])
        except Exception as unexpected:  # MLflow or the disk failing around the stage
            error = StageError(
                f"stage `{stage.name}` could not run: {type(unexpected).__name__}: {unexpected}"
            )
        status = DONE if error is None else CANCELLED if self._stopping.is_set() else FAILED
        finished = time.time()
        started = self.state.state.stage(stage.name).started or finished
        mlflow_status = "FINISHED" if status == DONE else "FAILED"
        if record is not None:  # first: a runner killed from now on still leaves it cached
            self.reuse.save(launch.key, record, self.store, run_id)
        job = launch.job
        timings = {}
        if job is not None and job.launched is not None and job.ended is not None:
            opened = started if launch.gate is not None else None
            timings = stage_timings(job.executed, job.launched, opened, job.ended, finished)
        self.state.update(
            stage.name,
            status=status,
            started=started,
            finished=finished,
            error=error,
            metrics=record.metrics if record else {},
            timings=timings,
        )
        self._notify(stage.name)
        # Downstream stages may start now: what is left (the executed notebook as HTML and
        # both in MLflow, the stage's MLflow run ended) is done off their path.
        finishing = self._finishing.submit(
            self._finish_stage, launch, run_id, mlflow_status, finished - started, record, error
        )
        with self._lock:
            self._finishing_work.append(finishing)
            self._ending.append(launch)
        return StageOutcome(stage.name, run_id, mlflow_status, finished - started, record)

    def _finish_stage(
        self,
        launch: _Launch,
        run_id: str,
        mlflow_status: str,
        duration: float,
        record: StageRecord | None,
        error: StageError | None,
    ) -> None:
        """The stage's MLflow run ended, with its executed notebook (and the notebook as
        HTML for reviewers); in the finishing thread."""
        notebooks = []
        if launch.job is not None and launch.job.executed.is_file():
            executed = launch.job.executed
            notebooks = [executed, *[p for p in [render_html(executed)] if p]]
        if run_id:
            with contextlib.suppress(TrackingLost):  # the run then stops, telling why
                self.tracker.finish_stage(
                    run_id,
                    mlflow_status,
                    duration,
                    record,
                    notebooks,
                    error.message if error else None,
                )

    def _drain_finishing(self) -> None:
        """Wait for the stages' finishing work (their MLflow runs end before the run's) and
        for their kernels to end (none outlives the run); an unexpected error there is the
        run's, as it was when this was done in line."""
        with self._lock:
            work, self._finishing_work = self._finishing_work, []
            ending = [launch.job.ending for launch in self._ending if launch.job is not None]
            self._ending = []
        for thread in ending:
            if thread is not None:
                thread.join()
        for done in work:
            done.result()

    def _never_ran(self, launch: _Launch, run_id: str) -> StageOutcome:
        """A pre-started stage that was stopped at its gate: served from the cache, or
        skipped because an upstream stage failed. Its MLflow run is removed: nothing ran."""
        if run_id:
            with contextlib.suppress(TrackingLost):
                self.tracker.discard_run(run_id)
        if launch.decision == CACHED_AT_GATE and launch.hit is not None:
            return self._reuse(launch)
        status = CANCELLED if self._stopping.is_set() else SKIPPED
        self.state.update(launch.stage.name, status=status, mlflow_run_id=None)
        self._notify(launch.stage.name)
        return StageOutcome(launch.stage.name, "", "SKIPPED", 0.0, None)

    def _reuse(self, launch: _Launch) -> StageOutcome:
        """Serve a stage from the cache: its outputs, metrics and models as recorded."""
        stage, hit = launch.stage, launch.hit
        assert hit is not None
        self.store.adopt(self.reuse.cache.objects, hit.record)  # type: ignore[union-attr]
        with self._lock:
            self.records[stage.name] = hit.record
        run_id = ""
        with contextlib.suppress(TrackingLost):  # the outputs are here; logging waits
            run_id = self.tracker.cached_stage(
                stage, self.bundle.position(stage.name), hit.record, hit.origin, self.records
            )
        now = time.time()
        self.state.update(
            stage.name,
            status=CACHED,
            cached_from=hit.origin,
            mlflow_run_id=run_id,
            started=now,
            finished=now,
            metrics=hit.record.metrics,
        )
        self._notify(stage.name)
        return StageOutcome(stage.name, run_id, "FINISHED", 0.0, hit.record, hit.origin)

    def _papermill(
        self, launch: _Launch, executed: Path, log: Path, run_id: str
    ) -> StageError | None:
        """Run the stage notebook in a kernel; None on success, else what went wrong."""
        stage = launch.stage
        env = self._kernel_env(run_id)
        if launch.gate is not None:
            env[GATE_ENV] = str(launch.gate)
            if stage.models:  # open MLflow while waiting, not after the work
                env[WARM_UP_ENV] = WARM_UP_MODELS
        parameters = {n: self.options.parameters[n] for n in stage.parameters}
        parameters[ARTIFACTS_PARAMETER] = self.store.location
        job = StageJob(
            name=stage.name,
            notebook=self.bundle.notebook_path(stage.name),
            executed=executed,
            log=log,
            parameters=parameters,
            kernel_name=self.kernel.name,
            cwd=self.bundle.workdir_path,
            env=env,
            source_name=Path(self.bundle.source_notebook or "the notebook").name,
            zygote=self._zygote,
        )

        def admit(kernel: StageKernelManager) -> bool:
            with self._lock:
                if self._stopping.is_set() or launch.decision:
                    return False
                self._kernels[stage.name] = kernel
                if launch.opened:
                    launch.watchdog.start(kernel)
                return True

        def release() -> None:
            with self._lock:
                self._kernels.pop(stage.name, None)

        launch.job = job
        return execute(
            job,
            launch.watchdog,
            self._stopping,
            self._reaper,
            admit,
            release,
            lambda: self.store.has_record(stage.name),
        )

    def _kernel_env(self, run_id: str) -> dict[str, str]:
        env = without_owner(dict(os.environ))
        env.update(
            {
                "MLFLOW_TRACKING_URI": self.tracker.tracking_uri,
                "MLFLOW_RUN_ID": run_id,
                "MLFLOW_EXPERIMENT_ID": str(self.tracker.experiment_id),
                REQUIREMENTS_ENV: str(self.bundle.root.resolve() / "requirements.txt"),
                SOURCE_ENV: self.tracker.git.get("path") or str(self.bundle.source_path or ""),
                NAMES_ENV: json.dumps(
                    {
                        v: registered_name(self.bundle, v)
                        for s in self.bundle.stages
                        for v in s.models
                    }
                ),
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            }
        )
        return env

    # --- outputs reused from earlier runs ------------------------------------------------

    def _copy_earlier_outputs(self) -> None:
        """The producers' outputs from the earlier run, as this run's; their upstream
        stages' outputs and keys are kept too (not run, not shown as cached) so that a later
        `--only` can check this run's lineage as this one checked the earlier run's."""
        for name, earlier in self.earlier.items():
            found = earlier_outputs(name, earlier.folder)
            self.store.adopt(found.store, found.record)  # hard links: no copy of the data
            if not earlier.needed:
                self.state.update(name, key=earlier.key)
                continue
            self.records[name] = found.record
            self.state.update(
                name,
                status=CACHED,
                cached_from=found.origin,
                key=earlier.key,
                metrics=found.record.metrics,
            )

    def _log_cached_stages(self) -> dict[str, StageOutcome]:
        """Stages whose outputs were reused still get a child run, tagged with their origin."""
        outcomes = {}
        for state in self.state.state.stages:
            if state.status != CACHED:
                continue
            record = self.records[state.name]
            stage = self.bundle.stage(state.name)
            run_id = self.tracker.cached_stage(
                stage, self.bundle.position(stage.name), record, state.cached_from, self.records
            )
            self.state.update(state.name, mlflow_run_id=run_id)
            outcomes[state.name] = StageOutcome(
                state.name, run_id, "FINISHED", 0.0, record, state.cached_from
            )
        return outcomes


@dataclass
class _Launch:
    """One stage on its way through a run: submitted, maybe waiting at its gate, running."""

    stage: Stage
    gate: Path | None  # the file whose creation lets a pre-started kernel go on; None: no wait
    key: str | None = None  # its cache key, once its inputs are known
    opened: bool = False
    decision: str | None = None  # scheduling.CACHED or SKIP: stopped at the gate, never ran
    hit: CachedStage | None = None
    watchdog: Watchdog = field(default_factory=lambda: Watchdog(None))
    job: StageJob | None = None  # once its kernel is asked for
