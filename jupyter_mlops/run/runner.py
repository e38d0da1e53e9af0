"""Executing a bundle: stages in dependency order, each through papermill in a fresh kernel.

The runner owns a run folder (``<runs root>/<pipeline>/<run id>/``) holding ``run.json``
(the live state), the executed stage notebooks and their HTML, one log per stage, and the
artifact store the stages hand values through. Scheduling is a small loop over futures:
a stage starts once every upstream stage is done, up to ``jobs`` at a time. Each stage is
one call to :meth:`PipelineRunner._execute_stage`, which is where caching and pre-started
kernels plug in.

Stopping is first-class: Ctrl-C or SIGTERM kills every kernel the run started (process
groups included), marks unfinished stages cancelled and every MLflow run FAILED. So does the
end of the process that started the runner, when it names itself (``orphans``), and a
reaper process cleans up after a runner killed outright.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import Stage
from ..artifacts import RemoteArtifactStore, StageRecord, open_store
from ..bundle import ARTIFACTS_PARAMETER, Bundle
from ..errors import BadInput, RunInterrupted, StageFailed, TrackingLost
from ..files import atomic_write, papermill_path
from ..runtime import GATE_ENV, GATE_GO, GATE_STOP, WARM_UP_ENV
from ..tracking import PipelineTracker, StageOutcome, resolve_tracking_uri
from ..tracking.models import REQUIREMENTS_ENV
from .cache import CachedStage, StageCache, stage_key
from .failures import describe_failure
from .history import load_run, run_folders
from .kernels import StageKernelManager, choose_kernel
from .orphans import Reaper, stop_with_owner, without_owner
from .runstate import (
    CACHED,
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_SUCCEEDED,
    RUNNING,
    SKIPPED,
    RunState,
    RunStateFile,
    StageError,
    StageState,
    read_run,
)

DEFAULT_RUNS_ROOT = Path("mlops-runs")
Listener = Callable[[RunState, str | None], None]


@dataclass
class RunOptions:
    parameters: dict[str, Any] = field(default_factory=dict)  # resolved and type-checked
    jobs: int = 1
    from_stage: str | None = None
    only: list[str] = field(default_factory=list)
    tracking_uri: str | None = None
    runs_root: Path = DEFAULT_RUNS_ROOT
    kernel: str | None = None
    stage_timeout: float | None = None
    run_id: str | None = None
    artifact_store: str | None = None  # fsspec URL or path shared by machines; default: local
    parent_run_id: str | None = None  # log into this MLflow run (a scheduler's `begin` made it)
    use_cache: bool = True  # reuse the outputs of stages whose inputs are all unchanged


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class PipelineRunner:
    def __init__(
        self, bundle: Bundle, options: RunOptions, listeners: list[Listener] | None = None
    ) -> None:
        self.bundle = bundle
        self.options = options
        self.listeners = listeners or []
        self.selected = self._select_stages()
        self.kernel = choose_kernel(options.kernel, bundle.kernel)
        run_id = options.run_id or new_run_id()
        self.run_dir = (options.runs_root / bundle.name / run_id).resolve()
        self.store = open_store(
            f"{options.artifact_store.rstrip('/')}/{bundle.name}/{run_id}"
            if options.artifact_store
            else self.run_dir / "artifacts"
        )
        # Caching needs the objects on this machine; a scheduler's task runs what it's told.
        local = not isinstance(self.store, RemoteArtifactStore)
        self.cache = None if options.parent_run_id or not local else StageCache(options.runs_root)
        # --from / --only ask for these stages to run again, whatever the cache holds.
        self._forced = self.selected if (options.from_stage or options.only) else set()
        self.records: dict[str, StageRecord] = {}
        # These may refuse the run, so they come before any file is written.
        self.earlier = {} if options.parent_run_id else self._find_earlier_outputs()
        if options.parent_run_id:
            self._read_upstream_records()
        self._kernels: dict[str, StageKernelManager] = {}
        self._stopping = threading.Event()
        self._stop_requested = _Flag()
        self._stop_reason: str | None = None  # why, when it wasn't a Ctrl-C or a cancel
        self._reaper = Reaper()
        self._lock = threading.Lock()
        self.run_id = run_id
        self.warnings = [w for w in [self.kernel.warning] if w]
        self.started = False
        self.tracker: PipelineTracker | None = None

    # --- the whole run ------------------------------------------------------------------

    def run(self) -> RunState:
        """Run the pipeline. Raises StageFailed or RunInterrupted after recording them.

        Nothing is written before this is called: the constructor only checks the request.
        """
        try:
            with _stop_requests(self._stop_requested), stop_with_owner(self._owner_ended):
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
        finally:
            self._reaper.release()  # a run that could not start has nothing left running

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
        self.connect()
        self._settle_abandoned_runs()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._reaper.start(self.run_dir, self.tracker.tracking_uri)
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
        # papermill and nbclient log what our own one-paragraph errors already say ("Kernel
        # died..."), and MLflow announces creating its tables: keep the terminal for ours.
        for noisy in ("papermill", "mlflow"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        self._copy_earlier_outputs()
        if self.options.parent_run_id:
            self.tracker.attach(self.options.parent_run_id, self.options.parameters)
            parent = self.options.parent_run_id
        else:
            parent = self.tracker.start(self.options.parameters, self.run_dir)
        self.state.update(experiment_id=self.tracker.experiment_id, parent_run_id=parent)
        self.outcomes = self._log_cached_stages()
        self._notify(None)

    def connect(self) -> PipelineTracker:
        """Reach the tracking store; within seconds, a TrackingUnavailable when it can't be.

        Callers that write files for a run (the bundle) connect first, so an unreachable
        server leaves nothing behind.
        """
        if self.tracker is None:
            uri = resolve_tracking_uri(self.options.tracking_uri)
            self.tracker = PipelineTracker(uri, self.bundle)
        return self.tracker

    def _settle_abandoned_runs(self) -> None:
        """Earlier runs of this pipeline whose runner was killed (kill -9, a power cut) are
        still marked running: reading them marks them failed, in run.json and MLflow."""
        for folder in run_folders(self.options.runs_root):
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
                models = self.tracker.end(ordered, complete=status == RUN_SUCCEEDED).models
        if self.tracker.lost:
            status = RUN_CANCELLED if cancelled else RUN_FAILED
        self.state.update(
            status=status,
            finished=time.time(),
            models=[m.to_dict() for m in models],
            error=failed.error if failed else self._tracking_lost_error() or self._stop_error(),
        )
        self._reaper.release()  # its end is recorded: nothing is left to clean up after us
        self._notify(None)
        state = self.state.state
        if self.tracker.lost:
            raise TrackingLost(self._tracking_lost_error().message)
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
            f"({self.tracker.client.lost}). The results so far are kept in {self.run_dir}; "
            f"when the server is back, upload them with `jupyter-mlops log {self.run_dir}`"
        )

    def _schedule(self) -> None:
        """Run the selected stages, each as soon as its upstream stages are done.

        Up to `jobs` stages run at once. Up to `jobs` more are *pre-started*: their kernel
        starts and runs the setup cells while their upstream stages still run, then waits at
        its gate (in `load_inputs`) until this loop opens it. Every decision about a stage is
        taken here, in one thread: start it, open its gate, serve it from the cache, skip it.
        A failure stops the run: stages already running finish, no other stage starts.
        """
        jobs = max(1, self.options.jobs)
        order = [s.name for s in self.bundle.stages if s.name in self.selected]
        ok = {name for name in self.bundle.stage_names if name not in self.selected}
        bad: set[str] = set()
        launches: dict[Future[StageOutcome], _Launch] = {}
        gates_dir = Path(tempfile.mkdtemp(prefix="mlops-gates-"))
        self._reaper.track(gates_dir)

        def collect(futures: set[Future[StageOutcome]]) -> None:
            for future in futures:
                launch = launches.pop(future)
                outcome = self.outcomes[launch.stage.name] = future.result()
                (ok if outcome.status == "FINISHED" else bad).add(launch.stage.name)

        with ThreadPoolExecutor(max_workers=2 * jobs) as pool:
            try:
                while order or launches:
                    if self._stop_requested.is_set():
                        raise KeyboardInterrupt  # here, between two decisions: a safe point
                    self._decide_gates(list(launches.values()), ok, bad, jobs)
                    for name in list(order):
                        upstream = set(self.bundle.stage(name).upstream)
                        if bad or self._stopping.is_set() or self.tracker.lost:
                            order.remove(name)
                            self.state.update(name, status=SKIPPED)
                            bad.add(name)
                            continue
                        stage = self.bundle.stage(name)
                        # Pre-start only behind stages that really run (not ones being
                        # served from the cache, which end in a moment).
                        running = {n.stage.name for n in launches.values() if not n.hit}
                        waiting = sum(not launch.opened for launch in launches.values())
                        if not upstream <= ok | running or len(launches) >= 2 * jobs:
                            continue
                        if not upstream <= ok and waiting >= jobs:
                            continue  # enough kernels warming up already
                        order.remove(name)
                        launch = self._new_launch(stage, gates_dir / name)
                        if upstream <= ok:  # its inputs are known: maybe no kernel is needed
                            self._check_cache(launch)
                        task = self._reuse if launch.hit else self._launch_stage
                        launches[pool.submit(task, launch)] = launch
                    if not launches:
                        break
                    finished, _ = wait(launches, timeout=0.05, return_when=FIRST_COMPLETED)
                    collect(finished)
            except BaseException:
                # Ctrl-C, or anything unexpected here: kernels waiting at their gates would
                # otherwise wait forever, and with them this pool's shutdown.
                self._stop()
                with contextlib.suppress(Exception):
                    collect(set(launches))  # their kernels are dead: they return promptly
                raise
            finally:
                shutil.rmtree(gates_dir, ignore_errors=True)
                self._reaper.untrack(gates_dir)

    def _decide_gates(
        self, launches: list[_Launch], ok: set[str], bad: set[str], jobs: int
    ) -> None:
        """Open the gates of stages whose turn has come; stop those that won't run."""
        running = sum(launch.opened and not launch.decision for launch in launches)
        for launch in launches:
            if launch.opened or launch.decision:
                continue
            upstream = set(launch.stage.upstream)
            if bad or self._stopping.is_set() or self.tracker.lost:
                self._stop_at_gate(launch, "skip")
            elif upstream <= ok:
                if not launch.checked:  # its inputs are known now: is it in the cache?
                    self._check_cache(launch)
                if launch.hit is not None:
                    self._stop_at_gate(launch, "cached")
                elif running < jobs:
                    self._open_gate(launch)
                    running += 1

    def _open_gate(self, launch: _Launch) -> None:
        now = time.time()
        self.state.update(launch.stage.name, status=RUNNING, started=now)
        self._notify(launch.stage.name)
        with self._lock:
            launch.opened = True
            launch.watchdog.start(self._kernels.get(launch.stage.name))
        atomic_write(launch.gate, GATE_GO)

    def _stop_at_gate(self, launch: _Launch, decision: str) -> None:
        """The stage won't run: its kernel, waiting or still starting, stops at the gate."""
        with self._lock:
            launch.decision = decision
        atomic_write(launch.gate, GATE_STOP)  # type: ignore[arg-type]

    def _stop(self) -> None:
        """Kill every running kernel; worker threads then see their kernel die and return."""
        self._stopping.set()
        with self._lock:
            kernels = list(self._kernels.values())
        for kernel in kernels:
            kernel.kill_now()

    def _notify(self, stage: str | None) -> None:
        for listener in self.listeners:
            listener(self.state.state, stage)

    # --- one stage ----------------------------------------------------------------------

    def _check_cache(self, launch: _Launch) -> None:
        launch.checked = True
        launch.key = self._cache_key(launch.stage)
        launch.hit = self._cache_hit(launch.stage, launch.key)

    def _cache_key(self, stage: Stage) -> str | None:
        if self.cache is None:
            return None
        return stage_key(
            self.bundle, stage, self.options.parameters, self.records, self.kernel.name
        )

    def _cache_hit(self, stage: Stage, key: str | None) -> CachedStage | None:
        forced = not self.options.use_cache or stage.name in self._forced
        if key is None or forced or self.cache is None:
            return None
        return self.cache.lookup(key)

    def _execute_stage(self, stage: Stage) -> StageOutcome:
        """Run a stage now (its upstream stages are done), or reuse its cached outputs."""
        key = self._cache_key(stage)
        hit = self._cache_hit(stage, key)
        launch = self._new_launch(stage, gate=None)
        launch.key, launch.hit = key, hit
        if hit is not None:
            return self._reuse(launch)
        launch.opened = True
        self.state.update(stage.name, status=RUNNING, started=time.time())
        self._notify(stage.name)
        return self._launch_stage(launch)

    def _new_launch(self, stage: Stage, gate: Path | None) -> _Launch:
        return _Launch(stage, gate, watchdog=_Watchdog(self.options.stage_timeout))

    def _launch_stage(self, launch: _Launch) -> StageOutcome:
        """Run one stage's notebook (waiting at its gate when pre-started) and record it."""
        stage = launch.stage
        run_id = ""
        record = None
        notebooks: list[Path] = []
        try:
            run_id = self.tracker.start_stage(stage, self._position(stage.name))
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
            notebooks = [executed, *[p for p in [_render_html(executed)] if p]]
        except Exception as unexpected:  # MLflow or the disk failing around the stage
            error = StageError(
                f"stage `{stage.name}` could not run: {type(unexpected).__name__}: {unexpected}"
            )
        status = DONE if error is None else CANCELLED if self._stopping.is_set() else FAILED
        finished = time.time()
        started = self.state.state.stage(stage.name).started or finished
        mlflow_status = "FINISHED" if status == DONE else "FAILED"
        if run_id:
            with contextlib.suppress(TrackingLost):  # the run then stops, telling why
                self.tracker.finish_stage(
                    run_id,
                    mlflow_status,
                    finished - started,
                    record,
                    notebooks,
                    error.message if error else None,
                )
        if record is not None and launch.key is not None and self.cache is not None:
            self.cache.save(launch.key, record, self.store, run_id)
        self.state.update(
            stage.name,
            status=status,
            started=started,
            finished=finished,
            error=error,
            metrics=record.metrics if record else {},
        )
        self._notify(stage.name)
        return StageOutcome(stage.name, run_id, mlflow_status, finished - started, record)

    def _never_ran(self, launch: _Launch, run_id: str) -> StageOutcome:
        """A pre-started stage that was stopped at its gate: served from the cache, or
        skipped because an upstream stage failed. Its MLflow run is removed: nothing ran."""
        if run_id:
            with contextlib.suppress(TrackingLost):
                self.tracker.discard_run(run_id)
        if launch.decision == "cached" and launch.hit is not None:
            return self._reuse(launch)
        status = CANCELLED if self._stopping.is_set() else SKIPPED
        self.state.update(launch.stage.name, status=status, mlflow_run_id=None)
        self._notify(launch.stage.name)
        return StageOutcome(launch.stage.name, "", "SKIPPED", 0.0, None)

    def _reuse(self, launch: _Launch) -> StageOutcome:
        """Serve a stage from the cache: its outputs, metrics and models as recorded."""
        stage, hit = launch.stage, launch.hit
        assert hit is not None
        self.store.adopt(self.cache.objects, hit.record)  # type: ignore[union-attr]
        with self._lock:
            self.records[stage.name] = hit.record
        run_id = ""
        with contextlib.suppress(TrackingLost):  # the outputs are here; logging waits
            run_id = self.tracker.cached_stage(
                stage, self._position(stage.name), hit.record, hit.origin, self.records
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
        return StageOutcome(stage.name, run_id, "FINISHED", 0.0, hit.record)

    def _position(self, stage: str) -> int:
        return self.bundle.stage_names.index(stage) + 1

    def _papermill(
        self, launch: _Launch, executed: Path, log: Path, run_id: str
    ) -> StageError | None:
        """Run the stage notebook; None on success, else what went wrong and where."""
        import papermill
        from papermill.exceptions import PapermillExecutionError

        stage = launch.stage
        executed.parent.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        stream = open(log, "w", encoding="utf-8")  # noqa: SIM115 (closed in `finally`)
        env = self._kernel_env(run_id)
        if launch.gate is not None:
            env[GATE_ENV] = str(launch.gate)
            if stage.models:  # import MLflow while waiting, not after the work
                env[WARM_UP_ENV] = "mlflow"
        kernel = StageKernelManager(
            kernel_name=self.kernel.name,
            cwd=str(self.bundle.workdir_path),
            env=env,
            log=stream,
            reaper=self._reaper,
        )
        with self._lock:
            if self._stopping.is_set() or launch.decision:
                stream.close()
                return StageError(f"stage `{stage.name}` was cancelled before it started")
            self._kernels[stage.name] = kernel
            if launch.opened:
                launch.watchdog.start(kernel)
        parameters = {n: self.options.parameters[n] for n in stage.parameters}
        parameters[ARTIFACTS_PARAMETER] = self.store.location
        reason = None
        try:
            papermill.execute_notebook(
                papermill_path(self.bundle.notebook_path(stage.name)),
                papermill_path(executed),
                parameters=parameters,
                kernel_name=self.kernel.name,
                km=kernel,
                progress_bar=False,
                stdout_file=stream,
                stderr_file=stream,
            )
            if self.store.has_record(stage.name):
                return None
            # The notebook ended without handing its outputs over: `sys.exit(0)` in a cell
            # ends a kernel's execution "successfully" for papermill.
        except PapermillExecutionError:
            pass
        except Exception as error:  # the kernel died, was killed, or never started
            reason = _reason(error, launch.watchdog, self._stopping)
        finally:
            launch.watchdog.cancel()
            kernel.shutdown()
            stream.close()
            with self._lock:
                self._kernels.pop(stage.name, None)
        if launch.watchdog.fired or self._stopping.is_set():
            reason = _reason(None, launch.watchdog, self._stopping)
        source = Path(self.bundle.source_notebook or "the notebook").name
        return describe_failure(stage.name, executed, source, reason)

    def _kernel_env(self, run_id: str) -> dict[str, str]:
        env = without_owner(dict(os.environ))
        env.update(
            {
                "MLFLOW_TRACKING_URI": self.tracker.tracking_uri,
                "MLFLOW_RUN_ID": run_id,
                "MLFLOW_EXPERIMENT_ID": str(self.tracker.experiment_id),
                REQUIREMENTS_ENV: str(self.bundle.root.resolve() / "requirements.txt"),
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            }
        )
        return env

    # --- choosing stages and reusing earlier outputs ------------------------------------

    def _select_stages(self) -> set[str]:
        names = set(self.bundle.stage_names)
        for name in [self.options.from_stage, *self.options.only]:
            if name is not None and name not in names:
                self.bundle.stage(name)  # raises a BadInput that lists the stages
        if self.options.only:
            return set(self.options.only)
        if self.options.from_stage:
            return self.bundle.downstream({self.options.from_stage})
        return names

    def _find_earlier_outputs(self) -> dict[str, Path]:
        """With --from/--only: the earlier run folder holding each needed stage's outputs."""
        found = {}
        for producer in sorted(self._needed_producers()):
            earlier = self._earlier_run_with(producer)
            if earlier is None:
                raise BadInput(
                    f"stage `{producer}` is not part of this run, and no earlier run of "
                    f"`{self.bundle.name}` in {self.options.runs_root} has its outputs; "
                    "run the whole pipeline once first"
                )
            found[producer] = earlier
        return found

    def _copy_earlier_outputs(self) -> None:
        for producer, earlier in self.earlier.items():
            source = open_store(read_run(earlier).artifact_store or earlier / "artifacts")
            record = source.read_record(producer)
            self.store.adopt(source, record)
            self.records[producer] = record
            earlier_stage = read_run(earlier).stage(producer)
            self.state.update(
                producer,
                status=CACHED,
                cached_from=earlier_stage.mlflow_run_id or earlier.name,
                metrics=record.metrics,
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
                stage, self._position(stage.name), record, state.cached_from, self.records
            )
            self.state.update(state.name, mlflow_run_id=run_id)
            outcomes[state.name] = StageOutcome(state.name, run_id, "FINISHED", 0.0, record)
        return outcomes

    def _read_upstream_records(self) -> None:
        """In a scheduler's run, upstream stages ran as other tasks into the shared store."""
        for producer in sorted(self._needed_producers()):
            if not self.store.has_record(producer):
                raise BadInput(
                    f"stage `{producer}` has not finished in this pipeline run yet (no outputs "
                    f"in {self.store.location}); the scheduler must run it first"
                )
            self.records[producer] = self.store.read_record(producer)

    def _needed_producers(self) -> set[str]:
        return {
            producer
            for name in self.selected
            for producer in self.bundle.stage(name).inputs.values()
            if producer not in self.selected
        }

    def _earlier_run_with(self, stage: str) -> Path | None:
        """The newest earlier run of this pipeline whose store has the stage's outputs."""
        for folder in run_folders(self.options.runs_root):
            if folder.parent.name != self.bundle.name or folder == self.run_dir:
                continue
            location = read_run(folder).artifact_store or folder / "artifacts"
            if open_store(location).has_record(stage):
                return folder
        return None


class _Watchdog:
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


@dataclass
class _Launch:
    """One stage on its way through a run: submitted, maybe waiting at its gate, running."""

    stage: Stage
    gate: Path | None  # the file whose creation lets a pre-started kernel go on; None: no wait
    key: str | None = None  # its cache key, once its inputs are known
    opened: bool = False
    checked: bool = False  # looked up in the cache (once its upstream stages were done)
    decision: str | None = None  # "cached" or "skip": stopped at the gate, never ran
    hit: CachedStage | None = None
    watchdog: _Watchdog = field(default_factory=lambda: _Watchdog(None))


def _reason(error: BaseException | None, watchdog: _Watchdog, stopping: threading.Event) -> str:
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


def _render_html(executed: Path) -> Path | None:
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


class _Flag:
    """A flag a signal handler may set: a plain attribute, no lock a handler could deadlock on."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


@contextmanager
def _stop_requests(flag: _Flag) -> Iterator[None]:
    """Ctrl-C and SIGTERM (a cancel from the Jupyter server or the widget, a CI timeout)
    ask the scheduling loop to stop; a second Ctrl-C (a person insisting) stops it at once,
    while SIGTERMs repeated by programs (a cancel, then a server's shutdown) change nothing.

    Raising KeyboardInterrupt from the handler, wherever the main thread happens to be,
    could leave a lock of `concurrent.futures.wait` taken (the handler ran between two of
    its acquisitions), and the run would then wait forever for its stages. The flag is
    read by the loop between two of its steps instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum: int, frame: Any) -> None:
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: the user means now
        flag.set()

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
