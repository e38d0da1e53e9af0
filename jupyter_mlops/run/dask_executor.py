"""Running a pipeline's stages as tasks on an existing Dask cluster (`--executor dask`).

The scheduler's task path, driven from one command: `begin` creates the parent MLflow run
and the run's manifest in the shared artifact store; each stage is one Dask task that runs
`jupyter-mlops stage` (what an Airflow task runs) on a worker, in a folder of the worker's
own, with the bundle shipped inside the task; `end` registers the models and ends the
parent run. Workers share nothing with this machine but the artifact store (an fsspec URL)
and the tracking server, so both must be reachable from every worker.

Dask runs a stage once its upstream stages' tasks are done, and runs it again on another
worker when its worker dies (up to the scheduler's `allowed-failures`, then the stage fails
with Dask's KilledWorker). A cancel (Ctrl-C, SIGTERM, a cancel from JupyterLab) sets a
Dask event every running task watches: its `jupyter-mlops stage` process is stopped, which
marks its MLflow run FAILED, and tasks not started are cancelled.

This machine keeps a run folder as for a local run (run.json, the bundle), so the summary,
the JUnit report, JupyterLab's Runs panel and `jupyter-mlops log` read it the same way.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bundle import Bundle
from ..errors import BadInput, MlopsError, RunInterrupted, StageFailed
from ..tracking import resolve_tracking_uri
from .orphans import STOP_WITH_PID_ENV
from .runner import Listener, PipelineRunner
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
    shared_store,
)
from .stopping import StopFlag, stop_requests

POLL = 0.5  # seconds between a task's looks at its process and the cancel event
STOP_SECONDS = 60  # a stage's own stop (its kernel killed, its run failed) before it is killed
TAIL = 4000  # characters of a failed stage's error output carried back
BUNDLES = "jupyter-mlops-bundles"  # a worker's folder for the bundles it was sent
REMOTE_SCHEMES = ("http://", "https://", "databricks", "postgresql", "mysql", "mssql")


class ClusterUnavailable(BadInput):
    """No Dask scheduler answers at the address given."""


class StageTaskFailed(RuntimeError):
    """A stage failed on a worker: the one paragraph `jupyter-mlops stage` printed.

    Dask hands a failed task's exception to the tasks downstream of it too: `stage` tells
    the stage that failed from those that were skipped because of it."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(stage, message)
        self.stage, self.message = stage, message

    def __str__(self) -> str:
        return self.message


def check_cluster_settings(artifact_store: str | None, tracking_uri: str) -> str:
    """The artifact store the workers share; BadInput when the run can't work on a cluster
    (the workers could reach neither this machine's run folder nor its sqlite file)."""
    if not artifact_store:
        raise BadInput(
            "--executor dask needs --artifact-store: an fsspec URL every worker reaches "
            "(s3://bucket/prefix, gs://..., or a path on a shared file system)"
        )
    if not tracking_uri.startswith(REMOTE_SCHEMES):
        raise BadInput(
            f"--executor dask needs a tracking server every worker reaches (--tracking-uri "
            f"http://HOST:5000 or MLFLOW_TRACKING_URI); {tracking_uri} is this machine's"
        )
    return artifact_store


def bundle_files(bundle: Bundle) -> dict[str, bytes]:
    """The bundle's files, relative to its folder: what a task carries to its worker.

    Its kernels start in the bundle's folder on the worker: the notebook's folder, where
    they start here, is on this machine (files the notebook reads must be reachable from
    the workers by URL or a shared file system)."""
    root = bundle.root
    names = ["pipeline.yaml", "params.yaml", "requirements.txt", *bundle.notebooks.values()]
    files = {
        name: (root / name).read_bytes()
        for name in names
        if (root / name).is_file() and not (root / name).is_symlink()  # nothing from elsewhere
    }
    spec = files["pipeline.yaml"].decode("utf-8")
    files["pipeline.yaml"] = re.sub(r"(?m)^workdir: .*$", "workdir: .", spec).encode("utf-8")
    return files


@dataclass(frozen=True)
class Shared:
    """Outputs a run takes from an earlier run of the same pipeline instead of running the
    stages (a sweep's stages that read no swept parameter): that run's artifact store, and
    what to call it (`cached_from`)."""

    stages: frozenset[str]
    store: str  # the earlier run's own store (`tasks.run_store(...).location`)
    origin: str


def connect_to(scheduler: str) -> Any:
    """A Dask client of the cluster `scheduler` heads. Raises BadInput when Dask's client
    isn't installed, ClusterUnavailable when no scheduler answers."""
    try:
        from distributed import Client
    except ImportError:
        raise BadInput(
            "--executor dask needs Dask's distributed scheduler client: "
            "pip install 'jupyter-mlops[dask]'"
        ) from None
    try:
        return Client(scheduler, timeout=30, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterUnavailable(f"no Dask scheduler answers at {scheduler}: {error}") from None


def on_dask(
    runner: PipelineRunner,
    scheduler: str,
    listeners: Sequence[Listener] = (),
    shared: Shared | None = None,
) -> DaskRun:
    """A checked run on the cluster from a prepared runner (`pipeline.prepare`): its
    settings checked before anything is written, then the tracking server reached and the
    bundle written into the run folder. A sweep's trial (the runner's options name the
    sweep's run) registers nothing and may take `shared` outputs. Raises BadInput,
    TrackingUnavailable."""
    anchor = runner.bundle.source_path or runner.bundle.root
    uri = resolve_tracking_uri(runner.options.tracking_uri, near=anchor)
    store = check_cluster_settings(runner.options.artifact_store, uri)
    client = connect_to(scheduler)  # both reached before anything is written
    try:
        tracker = runner.connect()
        runner.lay_out()
    except BaseException:
        client.close()
        raise
    return DaskRun(
        runner.bundle,
        runner.run_dir,
        runner.run_id,
        runner.options.parameters,
        store,
        tracker.tracking_uri,
        client,
        runner.options.kernel,
        listeners,
        str(runner.bundle.source_path) if runner.bundle.source_path else None,
        nested_in=runner.options.sweep_run_id,
        register=runner.options.register,
        shared=shared,
    )


class DaskRun:
    """One pipeline run on a Dask cluster, started with `begin` (the parent MLflow run
    exists), driven by `run`, ended with `end`."""

    def __init__(
        self,
        bundle: Bundle,
        run_dir: Path,
        run_id: str,
        parameters: dict[str, Any],
        artifact_store: str,
        tracking_uri: str,
        client: Any,
        kernel: str | None = None,
        listeners: Sequence[Listener] = (),
        source: str | None = None,
        nested_in: str | None = None,
        register: bool = True,
        shared: Shared | None = None,
    ) -> None:
        self.bundle = bundle
        self.nested_in = nested_in
        self.register = register
        self.shared = shared
        self.run_id = run_id
        self.artifact_store = artifact_store
        self.client = client  # a distributed.Client, closed when the run ends
        self.kernel = kernel
        self.listeners = list(listeners)
        self.stop = StopFlag()
        run_dir.mkdir(parents=True, exist_ok=True)
        self.state = RunStateFile(
            RunState(
                id=run_id,
                pipeline=bundle.name,
                run_dir=str(run_dir),
                source=source,
                parameters=parameters,
                stages=[StageState(name) for name in bundle.stage_names],
                artifact_store=shared_store(artifact_store, bundle.name, run_id),  # its own
                bundle=str(bundle.root.resolve()),
                tracking_uri=tracking_uri,
            )
        )

    def run(self) -> RunState:
        """Begin, run every stage on the cluster, end. Raises StageFailed, RunInterrupted.

        Whatever stops it early (an error here, the scheduler going away), the tasks are
        cancelled and the run ends FAILED, in run.json and in MLflow: never left running.
        """
        from distributed import Event

        from . import tasks

        futures: dict[str, Any] = {}
        cancel: Any = None
        with self.client, stop_requests(self.stop):
            try:
                started = tasks.begin(
                    self.bundle,
                    self.state.state.parameters,
                    self.artifact_store,
                    self.state.state.tracking_uri,
                    self.run_id,
                    self.nested_in,
                )
                self.state.update(parent_run_id=started.parent_run_id)
                self._take_shared(started.parent_run_id)
                self._notify(None)
                cancel = Event(f"jupyter-mlops-cancel-{self.run_id}", client=self.client)
                futures = self._submit(cancel.name)
                cancelled = self._follow(futures, cancel)
            except BaseException as error:
                self._abandon(error, futures, cancel)
                raise
        return self._end(cancelled)

    def _abandon(self, error: BaseException, futures: dict[str, Any], cancel: Any) -> None:
        """Stop what runs on the cluster and record the run FAILED with `error`."""
        from . import tasks

        with contextlib.suppress(Exception):
            if cancel is not None:
                cancel.set()
            self.client.cancel(list(futures.values()))
        for stage in self.state.state.stages:
            if stage.status in (QUEUED, RUNNING):
                self.state.update(stage.name, status=CANCELLED, finished=time.time())
        if self.state.state.parent_run_id:
            with contextlib.suppress(Exception):  # the error being raised says more
                tasks.end(self.bundle, self.artifact_store, self.run_id, register=False)
        reason = str(error) or type(error).__name__
        self.state.update(
            status=RUN_FAILED,
            finished=time.time(),
            error=StageError(f"the run stopped on the cluster: {reason}"),
        )
        self._notify(None)

    def _take_shared(self, parent_run_id: str) -> None:
        """Copy the shared stages' outputs into this run's store, each with a child run
        saying where they come from, as a local run's cached stages get."""
        from ..artifacts import open_store
        from ..tracking import PipelineTracker
        from .tasks import run_store

        if self.shared is None:
            return
        source = open_store(self.shared.store)
        target = run_store(self.bundle, self.artifact_store, self.run_id)
        tracker = PipelineTracker(str(self.state.state.tracking_uri), self.bundle)
        tracker.attach(parent_run_id, self.state.state.parameters)
        records = {name: source.read_record(name) for name in sorted(self.shared.stages)}
        for name, record in records.items():
            target.adopt(source, record)
            stage = self.bundle.stage(name)
            run_id = tracker.cached_stage(
                stage, self.bundle.position(name), record, self.shared.origin, records
            )
            self.state.update(
                name,
                status=CACHED,
                cached_from=self.shared.origin,
                mlflow_run_id=run_id,
                metrics=dict(record.metrics),
            )

    def _submit(self, cancel: str) -> dict[str, Any]:
        """One task per stage not shared, each depending on its upstream stages' tasks."""
        files = bundle_files(self.bundle)  # kilobytes: carried inside the tasks
        shared = self.shared.stages if self.shared else frozenset()
        futures: dict[str, Any] = {}
        for stage in self.bundle.stages:
            if stage.name in shared:
                continue
            upstream = [futures[name] for name in stage.upstream if name in futures]
            futures[stage.name] = self.client.submit(
                run_stage_task,
                files,
                stage.name,
                self.run_id,
                self.artifact_store,
                self.kernel,
                cancel,
                *upstream,
                key=f"jupyter-mlops-{self.run_id}-{stage.name}",
                pure=False,
            )
        return futures

    def _follow(self, futures: dict[str, Any], cancel: Any) -> bool:
        """Record each stage as its task starts and ends, until all ended; True if stopped."""
        pending = dict(futures)
        while pending:
            if self.stop.is_set():
                self._stop(pending, cancel)
                return True
            processing = _processing_keys(self.client)
            for name, future in list(pending.items()):
                stage = self.state.state.stage(name)
                if future.done():
                    del pending[name]
                    self._ended(name, future)
                elif future.key in processing and stage.status == QUEUED:
                    self.state.update(name, status=RUNNING, started=time.time())
                    self._notify(name)
            time.sleep(POLL)
        return False

    def _stop(self, pending: dict[str, Any], cancel: Any) -> None:
        """A cancel: every running task sees the event, stops its stage and fails (within
        one poll and its stage's own stop); what is left, not started, is cancelled."""
        from distributed import wait

        cancel.set()
        with contextlib.suppress(Exception):  # waited long enough: cancel the rest
            wait(list(pending.values()), timeout=STOP_SECONDS)
        self.client.cancel([f for f in pending.values() if not f.done()])
        for name in pending:
            if self.state.state.stage(name).status in (QUEUED, RUNNING):
                self.state.update(name, status=CANCELLED, finished=time.time())
                self._notify(name)

    def _ended(self, name: str, future: Any) -> None:
        stage = self.state.state.stage(name)
        now = time.time()
        started = stage.started or now
        if future.status == "finished":
            result = future.result()
            self.state.update(
                name,
                status=DONE,
                started=started,
                finished=now,
                metrics=result.get("metrics", {}),
            )
        elif future.status == "cancelled":
            self.state.update(name, status=CANCELLED, finished=now)
        else:
            error = future.exception()
            upstream = {self.state.state.stage(u).status for u in self.bundle.stage(name).upstream}
            if upstream & {FAILED, SKIPPED, CANCELLED}:  # Dask hands an upstream error on
                self.state.update(name, status=SKIPPED, finished=now)
            else:
                self.state.update(
                    name,
                    status=FAILED,
                    started=started,
                    finished=now,
                    error=StageError(_failure(error)),
                )
        self._notify(name)

    def _end(self, cancelled: bool) -> RunState:
        from . import tasks

        stages = self.state.state.stages
        failed = next((s for s in stages if s.status == FAILED), None)
        models: list[Any] = []
        ending_error = None
        try:
            succeeded, registered = tasks.end(
                self.bundle, self.artifact_store, self.run_id, self.register
            )
            models = [m.to_dict() for m in registered]
        except MlopsError as error:
            succeeded, ending_error = False, StageError(f"the run could not be ended: {error}")
        status = (
            RUN_CANCELLED
            if cancelled
            else RUN_SUCCEEDED
            if succeeded and not failed
            else RUN_FAILED
        )
        self.state.update(
            status=status,
            finished=time.time(),
            models=models,
            error=failed.error if failed else ending_error,
        )
        self._notify(None)
        if cancelled:
            raise RunInterrupted(
                f"run {self.run_id} was stopped; its MLflow runs are marked FAILED"
            )
        if failed is not None:
            message = failed.error.message if failed.error else f"stage `{failed.name}` failed"
            raise StageFailed(f"{message} (on a Dask worker)", stage=failed.name)
        if status != RUN_SUCCEEDED:
            reason = ending_error.message if ending_error else "a stage did not succeed"
            raise StageFailed(f"run {self.run_id} did not succeed: {reason}", stage="")
        return self.state.state

    def _notify(self, stage: str | None) -> None:
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                listener(self.state.state, stage)


def _processing_keys(client: Any) -> set[str]:
    """The keys of the tasks some worker is running now."""
    try:
        by_worker = client.processing()
    except Exception:
        return set()
    return {str(key) for keys in by_worker.values() for key in keys}


def _failure(error: BaseException | None) -> str:
    if isinstance(error, StageTaskFailed):
        return str(error)
    name = type(error).__name__ if error is not None else "an unknown error"
    return f"the task failed on the cluster: {name}: {error}"


# --- on the worker --------------------------------------------------------------------------


def _is_set(event: Any) -> bool:
    """Whether the run's cancel event is set; not when the scheduler can't say just now."""
    try:
        return bool(event.is_set())
    except Exception:
        return False


def run_stage_task(
    files: dict[str, bytes],
    stage: str,
    run_id: str,
    artifact_store: str,
    kernel: str | None,
    cancel: str,
    *upstream: Any,
) -> dict[str, Any]:
    """Run one stage on this worker: `jupyter-mlops stage`, in a folder of the worker's own.

    Returns what the driver records (the stage's metrics); raises StageTaskFailed with the
    stage's error paragraph. Stops the stage when the run's cancel event is set.
    """
    from distributed import Event

    from .history import RUN_ID

    if not RUN_ID.fullmatch(run_id):
        raise StageTaskFailed(stage, f"`{run_id}` is not a run id")
    folder = Path.cwd() / BUNDLES / run_id
    for relative, content in files.items():
        parts = Path(relative).parts
        if Path(relative).is_absolute() or ".." in parts or not parts:
            raise StageTaskFailed(stage, f"the bundle's file `{relative}` leads elsewhere")
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != content:
            # Stages of one run on one worker write the same files at once: each its own.
            handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(tmp, target)
    command = [
        sys.executable,
        "-m",
        "jupyter_mlops",
        "stage",
        str(folder / "pipeline.yaml"),
        stage,
        "--run-id",
        run_id,
        "--artifact-store",
        artifact_store,
        "--runs-dir",
        str(folder / "runs"),
    ]
    if kernel:
        command += ["--kernel", kernel]
    log = folder / f"{stage}.stderr"
    stop = Event(cancel)
    if _is_set(stop):  # cancelled before it started
        raise StageTaskFailed(stage, f"stage `{stage}` was cancelled")
    with log.open("wb") as errors:
        # A worker killed mid-stage (kill -9, lost to the cluster) takes its stage with it:
        # the stage's runner watches this process (`orphans`), and Dask runs the task again.
        env = {**os.environ, STOP_WITH_PID_ENV: str(os.getpid())}
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        while process.poll() is None:
            if _is_set(stop):
                process.terminate()  # the stage's runner ends its kernel, fails its run
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()  # its reaper still ends the kernel
                    process.wait()
                raise StageTaskFailed(stage, f"stage `{stage}` was cancelled")
            time.sleep(POLL)
    if process.returncode != 0:
        text = log.read_text("utf-8", errors="replace").strip().removeprefix("error: ")
        exited = f"`jupyter-mlops stage` exited {process.returncode}"
        raise StageTaskFailed(stage, text[-TAIL:] or exited)
    from ..bundle import read_bundle
    from .tasks import run_store

    record = run_store(read_bundle(folder / "pipeline.yaml"), artifact_store, run_id).read_record(
        stage
    )
    return {"metrics": dict(record.metrics)}
