"""Running a sweep: each trial an ordinary pipeline run, sharing what it can.

A trial is `jupyter-mlops run` with the trial's parameters (through `pipeline.prepare`, the
one entry point), with two differences: its MLflow run is nested under the sweep's, and it
registers no model (the sweep registers its best trial's once every trial has run). Trials
run one after another, each with the stage cache: the first trial runs the stages that
read no swept parameter, and every later trial is served their outputs. A failed trial is
recorded and the sweep goes on; a stopped sweep (Ctrl-C, SIGTERM) keeps its record, and
`--resume` runs the trials it had not finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..artifacts import open_store
from ..bundle import read_bundle
from ..errors import (
    BadInput,
    Conflict,
    MlopsError,
    RunInterrupted,
    StageFailed,
    TrackingLost,
    TrackingUnavailable,
)
from ..files import atomic_write
from ..parameters import resolve
from ..pipeline import Pipeline, open_pipeline, prepare
from ..places import project_runs_dir
from ..run.dask_executor import Shared, check_cluster_settings, on_dask
from ..run.runner import Listener, PipelineRunner, RunOptions, new_run_id
from ..run.runstate import (
    CACHED,
    DONE,
    RunState,
    RunStateFile,
    read_run,
    recorded_store,
)
from ..run.runstate import (
    FAILED as STAGE_FAILED,
)
from ..run.stopping import StopFlag, stop_requests
from ..run.tasks import run_store
from ..run.zygote import drop_ahead
from ..tracking import PipelineTracker, StageOutcome, resolve_tracking_uri
from ..tracking.card import run_link
from ..tracking.client import TAG_PREFIX, quiet_logs, without_credentials
from ..tracking.sweeps import BEST_TRIAL_TAG, end_sweep, resume_sweep, start_sweep
from .record import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    SWEEP_FAILED,
    SWEEP_FILE,
    SWEEP_RUNNING,
    SWEEP_STOPPED,
    SWEEP_SUCCEEDED,
    TO_RUN,
    SweepState,
    Trial,
    read_sweep,
    sweep_folder,
    trials_table,
    write_sweep,
)
from .space import choose_objective, parse_space

TABLE_FILE = "trials.md"
MAX_TRIALS = 10_000
# What a listener hears: the sweep (its record as it stands) and the trial it is about.
SweepListener = Callable[[SweepState, Trial | None], None]
ENDED = (DONE, STAGE_FAILED)  # a stage that ran and ended: its kernel's imports are done
MLFLOW_STATUS = {SWEEP_SUCCEEDED: "FINISHED", SWEEP_FAILED: "FAILED", SWEEP_STOPPED: "KILLED"}


class Sweeper:
    """One sweep, new or resumed: made (and checked) by `plan_sweep` or `resume`, then `run`."""

    def __init__(
        self,
        pipeline: Pipeline,
        state: SweepState,
        folder: Path,
        options: RunOptions,
        listeners: Sequence[SweepListener] = (),
        trial_listeners: Sequence[Listener] = (),
    ) -> None:
        self.pipeline = pipeline
        self.scheduler: str | None = None  # a Dask scheduler: trials' stages on its cluster
        self._shared: Shared | None = None  # on a cluster: what later trials take as is
        self._asked = StopFlag()
        self.state = state
        self.folder = folder
        self.options = options
        self.listeners = list(listeners)
        self.trial_listeners = list(trial_listeners)  # hear each trial's stages
        self._next: tuple[int, PipelineRunner] | None = None  # the next trial, made ahead

    def on_cluster(self, scheduler: str) -> None:
        """Run the trials' stages as tasks on the Dask cluster `scheduler` heads. Raises
        BadInput now, before anything is written, for settings a cluster can't use."""
        uri = resolve_tracking_uri(self.options.tracking_uri, near=self.pipeline.location)
        check_cluster_settings(self.options.artifact_store, uri)
        self.scheduler = scheduler
        self.options = dataclasses.replace(self.options, fork=False)

    def run(self) -> SweepState:
        """Run the trials not run yet; register the best trial's models.

        Raises RunInterrupted when stopped (the record says how to resume), TrackingLost
        when MLflow went away; a failed trial is recorded, not raised.
        """
        quiet_logs(logging.CRITICAL)  # as a run does: MLflow's INFO lines are not for her
        uri = resolve_tracking_uri(self.options.tracking_uri, near=self.pipeline.location)
        # The sweep's run needs the pipeline's name and experiment, not a written bundle.
        tracker = PipelineTracker(uri, self.pipeline.bundle_in(self.folder))
        state = self.state
        if state.mlflow_run_id:
            resume_sweep(tracker, state.mlflow_run_id)
        else:
            settings: dict[str, Any] = {"metric": state.metric, "maximize": state.maximize}
            if state.seed is not None:
                settings["seed"] = state.seed
            settings.update({f"fixed.{k}": v for k, v in state.fixed.items()})
            state.mlflow_run_id = start_sweep(
                tracker, state.id, state.space, settings, len(state.trials)
            )
        state.tracking_uri, state.experiment_id = tracker.tracking_uri, tracker.experiment_id
        state.status, state.finished = SWEEP_RUNNING, None
        self.options = dataclasses.replace(self.options, tracking_uri=tracker.tracking_uri)
        self._save(None)
        stopped: BaseException | None = None
        left = [trial for trial in state.trials if trial.status in TO_RUN]
        self._asked = StopFlag()  # Ctrl-C or SIGTERM between two trials (a trial has its own)
        try:
            with stop_requests(self._asked):
                for trial, following in zip(left, [*left[1:], None], strict=False):
                    self._run_trial(trial, following)
        except (KeyboardInterrupt, RunInterrupted, TrackingLost, TrackingUnavailable) as error:
            stopped = error  # the trials left can run later: `--resume`
        except BaseException as error:  # not the trial's: the sweep stops, recorded as such
            stopped = error
            raise
        finally:
            drop_ahead()  # no process outlives the sweep
            self._end(tracker, stopped)
        if isinstance(stopped, TrackingLost | TrackingUnavailable):
            raise stopped
        if stopped is not None:
            raise RunInterrupted(
                f"sweep {state.id} was stopped after {state.counts()[SUCCEEDED]} trials; "
                f"run the trials left with: jupyter-mlops sweep {self._target()} "
                f"--resume {state.id}"
            )
        return state

    def _prepare(self, trial: Trial) -> PipelineRunner:
        """A trial's runner: its parameters checked, its run id and folder chosen."""
        options = dataclasses.replace(
            self.options, run_id=None, register=False, sweep_run_id=self.state.mlflow_run_id
        )
        values = {**self.state.fixed, **trial.parameters}
        return prepare(self.pipeline, options, values, listeners=list(self.trial_listeners))

    def _ahead(self, runner: PipelineRunner, following: Trial | None) -> None:
        """Once `runner`'s first stage has ended (its imports are done, the machine has room),
        prepare the following trial and start its kernels' zygote, so that the next trial's
        stages don't wait for the notebook's imports again."""
        if following is None:
            return
        started = threading.Event()
        lock = threading.Lock()

        def listener(run: RunState, stage: str | None) -> None:
            with lock:  # stages end on several threads
                if started.is_set() or not any(s.status in ENDED for s in run.stages):
                    return
                started.set()
            with contextlib.suppress(Exception):  # the next trial then starts it itself
                upcoming = self._prepare(following)
                upcoming.start_zygote_ahead()
                self._next = (following.number, upcoming)

        runner.listeners.append(listener)

    def _run_trial(self, trial: Trial, following: Trial | None) -> None:
        state = self.state
        ready, self._next = self._next, None
        runner = ready[1] if ready and ready[0] == trial.number else self._prepare(trial)
        self._ahead(runner, following)
        cluster = None
        if self.scheduler is not None:  # checked (and its bundle written) before it counts
            cluster = on_dask(runner, self.scheduler, self.trial_listeners, self._shared)
        if self._asked.is_set():  # asked to stop while the trial was being prepared
            raise KeyboardInterrupt
        trial.status, trial.error, trial.metric = RUNNING, None, None
        trial.run_id, trial.run_dir = runner.run_id, str(runner.run_dir)
        self._save(trial)
        began = time.time()
        try:
            cluster.run() if cluster is not None else runner.run()
            trial.status = SUCCEEDED
        except StageFailed as error:
            trial.status, trial.error = FAILED, str(error)
        except (KeyboardInterrupt, RunInterrupted):
            trial.status = CANCELLED
            raise
        except (TrackingLost, TrackingUnavailable) as error:  # not the trial's: stop, resumable
            trial.status, trial.error = CANCELLED, str(error)
            raise
        except MlopsError as error:  # the trial's own problem (its store, say): go on
            trial.status, trial.error = FAILED, str(error)
        finally:
            trial.duration = time.time() - began
            run = cluster.state.state if cluster else runner.state.state if runner.started else None
            if run is not None:
                trial.mlflow_run_id = run.parent_run_id
                trial.metrics = {k: v for s in run.stages for k, v in s.metrics.items()}
                trial.shared = [s.name for s in run.stages if s.status == CACHED]
            if trial.status == SUCCEEDED:
                trial.metric = trial.metrics.get(state.metric)
                if cluster is not None and self._shared is None:
                    self._shared = self._sharing(runner)
            self._save(trial)

    def _sharing(self, runner: PipelineRunner) -> Shared | None:
        """On a cluster, what the trials after a succeeded one take from it rather than run:
        the stages that read no swept parameter, nor take anything from one that does (the
        local stage cache does this on one machine; a cluster's store is not its to keep)."""
        swept = set(self.state.space)
        same: set[str] = set()
        for stage in runner.bundle.stages:  # in run order: upstream stages come first
            if not swept & set(stage.parameters) and set(stage.upstream) <= same:
                same.add(stage.name)
        if not same:
            return None
        store = run_store(runner.bundle, str(runner.options.artifact_store), runner.run_id)
        return Shared(frozenset(same), store.location, runner.run_id)

    def _end(self, tracker: PipelineTracker, stopped: BaseException | None) -> None:
        """Record how the sweep ended, in sweep.json and MLflow, whatever fails on the way:
        a sweep is never left running. The best trial's models are registered once."""
        state = self.state
        best = state.best_trial()
        state.best = best.number if best else None
        state.status = (
            SWEEP_STOPPED if stopped is not None else SWEEP_SUCCEEDED if best else SWEEP_FAILED
        )
        reachable = not isinstance(stopped, TrackingLost | TrackingUnavailable)
        try:
            if stopped is None and best is not None and not state.models:
                state.models = [m.to_dict() for m in self._register(best)]
        except BaseException:
            state.status = SWEEP_FAILED
            raise
        finally:
            state.finished = time.time()
            atomic_write(self.folder / TABLE_FILE, f"# Sweep {state.id}\n\n{self.table()}\n")
            self._save(None)
            if reachable and state.mlflow_run_id:
                self._end_in_mlflow(tracker, best)

    def _end_in_mlflow(self, tracker: PipelineTracker, best: Trial | None) -> None:
        state = self.state
        assert state.mlflow_run_id
        counts = state.counts()
        metrics = {
            "trials_succeeded": float(counts[SUCCEEDED]),
            "trials_failed": float(counts[FAILED]),
        }
        tags = {}
        if best is not None and best.metric is not None:
            metrics[f"best_{state.metric}"] = best.metric
            tags = {
                BEST_TRIAL_TAG: best.mlflow_run_id or "",
                TAG_PREFIX + "best_trial": str(best.number),
            }
        end_sweep(
            tracker,
            state.mlflow_run_id,
            metrics,
            tags,
            [self.folder / SWEEP_FILE, self.folder / TABLE_FILE],
            MLFLOW_STATUS[state.status],
        )

    def _register(self, best: Trial) -> list[Any]:
        """Register the best trial's models as candidates, their cards ending with the sweep's
        table; its run.json lists them, as a run's own would."""
        assert best.run_dir
        run_dir = Path(best.run_dir)
        run = read_run(run_dir)
        assert run.bundle and run.tracking_uri and run.parent_run_id
        tracker = PipelineTracker(run.tracking_uri, read_bundle(Path(run.bundle)))
        tracker.attach(run.parent_run_id, run.parameters)
        store = open_store(recorded_store(run, run_dir))
        outcomes = [
            StageOutcome(
                s.name,
                s.mlflow_run_id or "",
                "FINISHED",
                s.duration or 0.0,
                store.read_record(s.name),
                s.cached_from,
            )
            for s in run.stages
            if s.status in (DONE, CACHED)
        ]
        state = self.state
        appendix = (
            f"## Chosen by a sweep\n\nTrial {best.number} of {len(state.trials)}, the "
            f"{state.objective.describe()} of sweep "
            f"{run_link(state.experiment_id, state.mlflow_run_id, state.id)}:\n\n{self.table()}"
        )
        models = tracker.register(outcomes, appendix)
        RunStateFile(run).update(models=[m.to_dict() for m in models])
        return models

    def table(self) -> str:
        """The trials as markdown, each linked to its MLflow run."""
        state = self.state
        return trials_table(
            state, lambda t: run_link(state.experiment_id, t.mlflow_run_id, str(t.number))
        )

    def _save(self, trial: Trial | None) -> None:
        write_sweep(self.state, self.folder)
        for listener in self.listeners:
            with contextlib.suppress(Exception):  # a listener's failure never stops a sweep
                listener(self.state, trial)

    def _target(self) -> str:
        return str(self.pipeline.location)


def plan_sweep(
    target: Path,
    pairs: Sequence[tuple[str, str]],
    options: RunOptions,
    values: Mapping[str, Any] | None = None,
    draws: int | None = None,
    seed: int | None = None,
    metric: str | None = None,
    maximize: bool | None = None,
    warn: Callable[[list[str]], None] | None = None,
    listeners: Sequence[SweepListener] = (),
    trial_listeners: Sequence[Listener] = (),
    sweep_id: str | None = None,
) -> Sweeper:
    """A checked sweep of `target`: every value and the objective checked, its trials laid
    out; nothing written until `run`. `pairs` are `-p NAME VALUES`, `values` a file's fixed
    values, `draws` a random sweep's number of trials, `sweep_id` one chosen by the caller
    (the Jupyter server's). Raises BadInput."""
    pipeline = open_pipeline(target, warn)
    specs = pipeline.analysis.parameters if pipeline.analysis else pipeline.bundle.parameters  # type: ignore[union-attr]
    fixed = resolve(specs, dict(values or {}))
    fixed = {name: fixed[name] for name in values or {}}
    space = parse_space(specs, pairs, drawn=draws is not None)
    if draws is not None:
        seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        combos = space.sample(draws, seed)
    else:
        seed = None
        combos = space.grid()
    if len(combos) > MAX_TRIALS:
        raise BadInput(
            f"that is {len(combos)} trials, more than a sweep runs ({MAX_TRIALS}): "
            "list fewer values, or draw some with --random N"
        )
    objective = choose_objective(_logged_metrics(pipeline), metric, maximize)
    sweep_id = sweep_id or new_run_id()
    runs_root = options.runs_root or project_runs_dir(pipeline.location)
    state = SweepState(
        id=sweep_id,
        pipeline=pipeline.name,
        source=str(pipeline.location),
        metric=objective.metric,
        maximize=objective.maximize,
        space=space.describe(),
        fixed={**fixed, **space.fixed},
        trials=[Trial(i, combo) for i, combo in enumerate(combos, 1)],
        seed=seed,
    )
    options = dataclasses.replace(options, runs_root=runs_root)
    folder = sweep_folder(runs_root, pipeline.name, sweep_id)
    return Sweeper(pipeline, state, folder, options, listeners, trial_listeners)


def resume(
    target: Path,
    sweep_id: str,
    options: RunOptions,
    warn: Callable[[list[str]], None] | None = None,
    listeners: Sequence[SweepListener] = (),
    trial_listeners: Sequence[Listener] = (),
) -> Sweeper:
    """The sweep `sweep_id` of `target`, to run the trials it has not finished."""
    pipeline = open_pipeline(target, warn)
    runs_root = options.runs_root or project_runs_dir(pipeline.location)
    folder = sweep_folder(runs_root, pipeline.name, sweep_id)
    state = read_sweep(folder)
    given = options.tracking_uri and resolve_tracking_uri(options.tracking_uri)
    if given and state.tracking_uri and given != state.tracking_uri:
        raise BadInput(
            f"sweep {sweep_id} logs to {without_credentials(state.tracking_uri)}: resume it "
            "there (leave out --tracking-uri)"
        )
    if not any(trial.status in TO_RUN for trial in state.trials):
        raise Conflict(f"sweep {sweep_id} has no trial left to run: it {state.status}")
    # Its trials and its MLflow run are in the store it began with, wherever this runs.
    options = dataclasses.replace(
        options, runs_root=runs_root, tracking_uri=state.tracking_uri or options.tracking_uri
    )
    return Sweeper(pipeline, state, folder, options, listeners, trial_listeners)


def _logged_metrics(pipeline: Pipeline) -> list[str]:
    stages = pipeline.analysis.stages if pipeline.analysis else pipeline.bundle.stages  # type: ignore[union-attr]
    return list(dict.fromkeys(name for stage in stages for name in stage.metrics))
