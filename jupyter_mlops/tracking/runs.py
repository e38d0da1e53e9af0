"""A pipeline run in MLflow: one parent run, a nested child run per stage.

The parent run holds the parameters, source tags and the bundle's files; each stage's child
run its parameters, metrics, executed notebook as .ipynb and .html, and the data frames and
arrays it consumed as dataset inputs. Each stage's kernel logs into its own child run
(through ``MLFLOW_RUN_ID``); the models it logged are registered when the parent run ends
with every stage succeeded (`PipelineTracker.end`, the one way a parent run ends).

Everything goes through one guarded ``MlflowClient``, never MLflow's global fluent state, so
stages running in parallel threads can't log into each other's runs. What callers get back
is plain data (`StageRun`, `RunEnd`), never MLflow's objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..places import local_artifacts
from .card import param_text
from .client import TAG_PREFIX, connect, current_user, open_client, without_credentials
from .datasets import dataset_inputs
from .registry import RegisteredModel, register_models

PIPELINE_DIGEST_TAG = TAG_PREFIX + "pipeline_sha256"  # a parent run's pipeline, filterable

if TYPE_CHECKING:  # only named: importing them (nbformat...) would cost every stage kernel
    from ..analysis import Stage
    from ..artifacts import StageRecord
    from ..bundle import Bundle


def git_info(path: Path | None) -> dict[str, str]:
    """Commit, branch and whether the notebook has uncommitted changes; {} outside git.

    A notebook counts as changed when what the pipeline is made of changed (`notebook_code`),
    not when JupyterLab filled in its kernel's `language_info` or saved its outputs: the
    commit still holds the exact code that ran."""
    if path is None:
        return {}

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=path.parent, capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout.strip()

    try:
        info = {"commit": git("rev-parse", "HEAD")}
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return {}
    try:
        tracked = git("ls-files", "--full-name", "--", path.name)
        info["path"] = tracked or path.name
        info["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
        changed = bool(git("status", "--porcelain", "--", path.name))
        if changed and tracked and path.suffix == ".ipynb":  # untracked: never committed
            with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                committed = git("show", f"HEAD:{info['path']}")
                changed = notebook_code(committed) != notebook_code(path.read_text("utf-8"))
        info["dirty"] = "true" if changed else "false"
        info["repo_url"] = without_credentials(git("config", "--get", "remote.origin.url"))
    except (RuntimeError, OSError, subprocess.SubprocessError):
        pass
    return info


def notebook_code(text: str) -> Any:
    """What a pipeline is made of in a notebook's text: each cell's type, source and tags,
    the notebook's `jupyter_mlops` settings and its kernel; the text itself when it isn't a
    notebook's JSON (then any change counts)."""
    try:
        notebook = json.loads(text)
        cells = [
            (
                cell.get("cell_type"),
                "".join(cell.get("source") or ""),
                (cell.get("metadata") or {}).get("tags") or [],
            )
            for cell in notebook["cells"]
        ]
        metadata = notebook.get("metadata") or {}
        kernel = (metadata.get("kernelspec") or {}).get("name")
        return cells, metadata.get("jupyter_mlops"), kernel
    except (ValueError, KeyError, TypeError, AttributeError):
        return text


@dataclass
class StageOutcome:
    """What the tracker needs to know about a finished stage to end the parent run."""

    stage: str
    run_id: str
    status: str  # MLflow's: FINISHED, FAILED (SKIPPED for a stage that never ran)
    duration: float
    record: StageRecord | None = None
    cached_from: str | None = None  # the run whose outputs it reused; None: it ran here


@dataclass
class StageRun:
    """A stage's child run as MLflow has it."""

    stage: str
    run_id: str
    status: str  # RUNNING, FINISHED, FAILED, KILLED
    duration: float  # its `duration_s` metric; 0.0 before the stage ended

    @property
    def ended(self) -> bool:
        return self.status in ("FINISHED", "FAILED")


@dataclass
class RunEnd:
    """How a parent run ended: whether every stage succeeded, and the models registered."""

    succeeded: bool
    models: list[RegisteredModel]


@dataclass
class PipelineTracker:
    tracking_uri: str
    bundle: Bundle
    parent_run_id: str | None = None
    experiment_id: str | None = None
    git: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    run_name: str = ""  # the parent run's: "wine-classifier #7 · n_estimators=500"

    def __post_init__(self) -> None:
        self.client = connect(self.tracking_uri)

    @property
    def lost(self) -> bool:
        """Whether the tracking server went away during the run."""
        return self.client.lost is not None

    @property
    def lost_reason(self) -> str | None:
        """Why the tracking server was given up on, once it was."""
        return self.client.lost

    # --- the parent run -------------------------------------------------------------------

    def start(self, parameters: dict[str, Any], run_dir: Path, nested_in: str | None = None) -> str:
        """Create the parent run: parameters, source tags and the bundle's files.

        `nested_in`: the MLflow run of the sweep this run is a trial of; MLflow's UI then
        lists the trials under it and compares them in one view.
        """
        self.parameters = parameters
        self.experiment_id = self.experiment()
        source = self.bundle.source_path
        self.git = git_info(source)
        number = self._next_run_number()
        self.run_name = run_name(self.bundle, number, parameters)
        tags = {
            "mlflow.runName": self.run_name,
            TAG_PREFIX + "run_number": str(number),
            PIPELINE_DIGEST_TAG: self._pipeline_digest(),
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.user": current_user(),
            "mlflow.source.name": str(source) if source else self.bundle.name,
            TAG_PREFIX + "pipeline": self.bundle.name,
            TAG_PREFIX + "run_dir": str(run_dir),
            TAG_PREFIX + "stages": ",".join(self.bundle.stage_names),
        }
        if self.bundle.source_sha256:
            tags[TAG_PREFIX + "notebook_sha256"] = self.bundle.source_sha256
        if nested_in:
            tags["mlflow.parentRunId"] = nested_in
        tags.update(self._git_tags())
        run = self.client.create_run(self.experiment_id, tags=tags)
        self.parent_run_id = run.info.run_id
        self._log_params(self.parent_run_id, parameters)
        for name in ("pipeline.yaml", "params.yaml", "requirements.txt"):
            path = self.bundle.root / name
            if path.is_file():
                self.client.log_artifact(self.parent_run_id, str(path))
        if source is not None and source.is_file():
            self.client.log_artifact(self.parent_run_id, str(source), "source")
        return self.parent_run_id

    def has_run(self, run_id: str) -> bool:
        """Whether the store has the run (an upload continues it, or starts anew)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    def attach(self, parent_run_id: str, parameters: dict[str, Any]) -> None:
        """Log into a parent run another process created (a scheduler's `begin` task)."""
        self.parameters = parameters
        self.parent_run_id = parent_run_id
        parent = self.client.get_run(parent_run_id)
        self.experiment_id = parent.info.experiment_id
        self.run_name = parent.data.tags.get("mlflow.runName", self.bundle.name)
        self.git = git_info(self.bundle.source_path)

    def _git_tags(self) -> dict[str, str]:
        """MLflow's source tags for the commit the notebook is at."""
        keys = (
            ("commit", "mlflow.source.git.commit"),
            ("branch", "mlflow.source.git.branch"),
            ("repo_url", "mlflow.source.git.repoURL"),
            ("dirty", TAG_PREFIX + "git_dirty"),
        )
        return {tag: self.git[key] for key, tag in keys if self.git.get(key)}

    def _next_run_number(self) -> int:
        """One more than the pipeline's newest parent run: a list of runs tells them apart.

        Found by a digest of the pipeline's name (MLflow's filters can't quote every name).
        Concurrent runs may share a number; it is a name for people, not an id.
        """
        newest = self.client.search_runs(
            [str(self.experiment_id)],
            filter_string=f"tags.`{PIPELINE_DIGEST_TAG}` = '{self._pipeline_digest()}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        number = newest[0].data.tags.get(TAG_PREFIX + "run_number", "") if newest else ""
        return int(number) + 1 if number.isdigit() else 1

    def _pipeline_digest(self) -> str:
        return hashlib.sha256(self.bundle.name.encode()).hexdigest()[:16]

    def stage_runs(self) -> dict[str, StageRun]:
        """The parent's child runs by stage (the newest when a stage was retried)."""
        found: dict[str, StageRun] = {}
        for run in self._children():
            stage = run.data.tags.get(TAG_PREFIX + "stage", "")
            found[stage] = StageRun(
                stage,
                run.info.run_id,
                run.info.status,
                run.data.metrics.get("duration_s", 0.0),
            )
        return found

    def _children(self) -> list[Any]:
        return list(
            self.client.search_runs(
                [str(self.experiment_id)],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'",
                order_by=["attributes.start_time ASC"],
            )
        )

    def fail_unfinished_stages(self) -> list[str]:
        """End FAILED the stage runs still RUNNING once no task of the run is left: a task
        killed with its machine, or stopped before its stage could end its own run; returns
        their stages."""
        unfinished = [run for run in self._children() if run.info.status == "RUNNING"]
        for run in unfinished:
            self.client.set_terminated(run.info.run_id, "FAILED")
        return [run.data.tags.get(TAG_PREFIX + "stage", "") for run in unfinished]

    def end(
        self, outcomes: list[StageOutcome], complete: bool = True, register: bool = True
    ) -> RunEnd:
        """End the parent run from its stages' outcomes.

        FINISHED, with the models the stages logged registered as candidates (unless not to
        `register`: a sweep's trial, whose sweep registers its best trial's), when the run is
        `complete` and every outcome FINISHED; else FAILED. The stages' metrics go onto the
        parent too, so runs compare in one table. The parent is ended even when logging or
        registering fails, so nothing stays RUNNING.
        """
        from mlflow.entities import Metric

        assert self.parent_run_id
        succeeded = complete and all(o.status == "FINISHED" for o in outcomes)
        registered: list[RegisteredModel] = []
        try:
            now = int(time.time() * 1000)
            metrics = [
                Metric(k, v, now, 0)
                for o in outcomes
                if o.record
                for k, v in o.record.metrics.items()
            ]
            if metrics:
                self.client.log_batch(self.parent_run_id, metrics=metrics)
            if succeeded and register:
                registered = self.register(outcomes)
        finally:
            self.client.set_terminated(self.parent_run_id, "FINISHED" if succeeded else "FAILED")
        return RunEnd(succeeded, registered)

    def register(self, outcomes: list[StageOutcome], appendix: str = "") -> list[RegisteredModel]:
        """Register the models of this run (started or attached) as candidates; `appendix`
        ends their model cards (a sweep's table of trials)."""
        from mlflow.exceptions import MlflowException

        registered = register_models(self, outcomes, appendix)
        with contextlib.suppress(MlflowException):  # the versions stand without it
            self._link_registered(registered)
        return registered

    def _link_registered(self, registered: list[RegisteredModel]) -> None:
        """The parent run lists the models it produced and the versions they are."""
        from mlflow.entities import LoggedModelOutput

        models = [m.model_id for m in registered if m.model_id]
        if models:
            self.client.log_outputs(
                str(self.parent_run_id), [LoggedModelOutput(m, 0) for m in models]
            )
        if registered:
            self.client.set_tag(
                str(self.parent_run_id),
                TAG_PREFIX + "registered_models",
                ", ".join(f"{m.name}/{m.version}" for m in registered),
            )

    def experiment(self) -> str:
        """The pipeline's experiment's id, creating (or restoring) it as needed."""
        existing = self.client.get_experiment_by_name(self.bundle.experiment)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self.client.restore_experiment(existing.experiment_id)
            return existing.experiment_id
        try:  # the kind tells MLflow's UI (before 3.17) to show its model-training view
            return self.client.create_experiment(
                self.bundle.experiment,
                artifact_location=local_artifacts(self.tracking_uri, self.bundle.experiment),
                tags={"mlflow.experimentKind": "custom_model_development"},
            )
        except Exception:  # created concurrently by another run
            found = self.client.get_experiment_by_name(self.bundle.experiment)
            if found is None:
                raise
            return found.experiment_id

    # --- the stages' child runs -----------------------------------------------------------

    def start_stage(self, stage: Stage, position: int) -> str:
        assert self.parent_run_id and self.experiment_id
        run = self.client.create_run(
            self.experiment_id,
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                # MLflow lists runs newest first; the number keeps the stages' order legible
                "mlflow.runName": f"{position:02d} · {stage.name}",
                TAG_PREFIX + "stage": stage.name,
                TAG_PREFIX + "position": str(position),
                TAG_PREFIX + "cells": ",".join(str(c) for c in stage.cells),
            },
        )
        params = {n: self.parameters[n] for n in stage.parameters if n in self.parameters}
        self._log_params(run.info.run_id, params)
        return run.info.run_id

    def cached_stage(
        self,
        stage: Stage,
        position: int,
        record: StageRecord,
        source_run: str | None,
        records: dict[str, StageRecord],
    ) -> str:
        """A child run for a stage whose outputs were reused rather than recomputed."""
        run_id = self.start_stage(stage, position)
        self.client.set_tag(run_id, TAG_PREFIX + "cached_from", source_run or "")
        self.log_inputs(run_id, stage, records)
        self._log_outputs(run_id, record)
        self.finish_stage(run_id, "FINISHED", 0.0, record, [])
        return run_id

    def link_models(
        self, run_id: str, stage: Stage, record: StageRecord, records: dict[str, StageRecord]
    ) -> str | None:
        """Tie the stage's run to the models it trained and the models it consumed.

        A model it trained gets the parameters it depends on (this stage's and its upstream
        stages'). A model it consumed becomes an input of its run, and the stage's metrics
        are logged against that model and the data they were computed on, so the model's
        page in MLflow shows how good it is.

        Best effort: the stage's work and its own run stand without these links, so an
        MLflow error is returned as a warning (None when all went well), not raised.
        """
        from mlflow.exceptions import MlflowException

        try:
            self._link_models(run_id, stage, record, records)
        except MlflowException as error:
            return f"stage `{stage.name}`: MLflow refused to link its models ({error.message})"
        return None

    def _link_models(
        self, run_id: str, stage: Stage, record: StageRecord, records: dict[str, StageRecord]
    ) -> None:
        from mlflow.entities import LoggedModelInput, Metric
        from mlflow.exceptions import MlflowException

        for info in record.models.values():
            if info.get("model_id"):
                known = self.client.get_logged_model(info["model_id"]).params
                params = self._lineage_parameters(stage)
                params = {k: v for k, v in params.items() if k not in known}  # can't change
                if params:
                    self.client.log_model_params(info["model_id"], params)
                if self.git.get("commit"):  # the model page shows them beside "Logged from"
                    self.client.set_logged_model_tags(info["model_id"], self._git_tags())
        consumed = consumed_models(stage, records)
        if not consumed:
            return
        try:
            self.client.log_inputs(run_id, models=[LoggedModelInput(m) for m in consumed])
        except MlflowException:
            return  # the model lives in another store (an older run's): nothing to tie to
        dataset = evaluation_dataset(stage, records)
        now = int(time.time() * 1000)
        metrics = [
            Metric(
                key,
                value,
                now,
                0,
                model_id=model,
                dataset_name=dataset[0] if dataset else None,
                dataset_digest=dataset[1] if dataset else None,
                run_id=run_id,
            )
            for model in consumed
            for key, value in record.metrics.items()
        ]
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)

    def _lineage_parameters(self, stage: Stage) -> dict[str, str]:
        """The parameters a stage's outputs depend on: its own and its upstream stages'."""
        from ..provenance import lineage

        names = {n for s in lineage(self.bundle, stage.name) for n in s.parameters}
        return {n: param_text(self.parameters[n]) for n in sorted(names) if n in self.parameters}

    def discard_run(self, run_id: str) -> None:
        """Remove the run of a stage that was prepared but never ran (skipped or cached)."""
        self.client.delete_run(run_id)

    def log_inputs(self, run_id: str, stage: Stage, records: dict[str, StageRecord]) -> None:
        """Data frames and arrays the stage consumed, as MLflow dataset inputs (lineage)."""
        datasets = dataset_inputs(stage, records)
        if datasets:
            self._log_inputs_racing_others(run_id, datasets)

    def _log_inputs_racing_others(self, run_id: str, datasets: list[Any]) -> None:
        """MLflow's SQL store inserts a dataset it hasn't seen, racing any parallel stage that
        consumes the same one; the loser retries and then finds it existing."""
        from mlflow.exceptions import MlflowException

        for attempt in range(5):
            try:
                self.client.log_inputs(run_id, datasets=datasets)
                return
            except MlflowException as error:
                if "unique constraint" not in str(error).lower() or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def finish_stage(
        self,
        run_id: str,
        status: str,
        duration: float,
        record: StageRecord | None,
        notebooks: list[Path],
        error: str | None = None,
    ) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric("duration_s", round(duration, 2), now, 0)]
        if record is not None:
            metrics += [Metric(k, v, now, 0) for k, v in record.metrics.items()]
        self.client.log_batch(run_id, metrics=metrics)
        for path in notebooks:
            if path.is_file():
                self.client.log_artifact(run_id, str(path), "notebook")
        if error:
            self.client.set_tag(run_id, TAG_PREFIX + "error", error[:5000])
        self.client.set_terminated(run_id, status)

    def _log_outputs(self, run_id: str, record: StageRecord) -> None:
        """The models a reused record names, as outputs of the run that reused them."""
        from mlflow.entities import LoggedModelOutput
        from mlflow.exceptions import MlflowException

        models = [i["model_id"] for i in record.models.values() if i.get("model_id")]
        # A model logged to another store: the run names what it reused by tag only.
        with contextlib.suppress(MlflowException):
            if models:
                self.client.log_outputs(run_id, [LoggedModelOutput(m, 0) for m in models])

    def _log_params(self, run_id: str, parameters: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, param_text(v)) for k, v in parameters.items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=params[start : start + 100])


def run_name(bundle: Bundle, number: int, parameters: dict[str, Any]) -> str:
    """`wine-classifier #7 · n_estimators=500`: the parameters that differ from the defaults."""
    defaults = {p.name: p.default for p in bundle.parameters}
    changed = [
        f"{name}={param_text(value)[:24]}"
        for name, value in parameters.items()
        if name in defaults and value != defaults[name]
    ]
    shown = ", ".join(changed[:3]) + (f" +{len(changed) - 3}" if len(changed) > 3 else "")
    return f"{bundle.name} #{number}" + (f" · {shown}" if shown else "")


def consumed_models(stage: Stage, records: dict[str, StageRecord]) -> list[str]:
    """The logged models (ids) among the values a stage receives."""
    found = []
    for variable, producer in stage.inputs.items():
        record = records.get(producer)
        info = record.models.get(variable) if record else None
        if info and info.get("model_id"):
            found.append(str(info["model_id"]))
    return found


def evaluation_dataset(stage: Stage, records: dict[str, StageRecord]) -> tuple[str, str] | None:
    """The dataset (name, digest) a stage's metrics were computed on: its held-out data
    when it names one (`X_test`, `valid_df`), else the first data it received."""
    datasets = [(d.dataset.name, d.dataset.digest) for d in dataset_inputs(stage, records)]
    for hint in ("test", "valid", "val", "eval", "holdout"):
        for name, digest in datasets:
            if hint in name.lower():
                return name, digest
    return datasets[0] if datasets else None


def fail_abandoned(
    tracking_uri: str, parent_run_id: str, run_folder: str, stage_run_ids: list[str]
) -> None:
    """Mark a dead runner's MLflow runs FAILED; best effort, failing fast.

    The tracking server may be the very thing that went away, so errors are swallowed (the
    run folder's run.json already says failed); call `set_fail_fast_defaults` first, from
    the main thread. Only runs that are this run's are touched: the parent whose run folder
    tag names `run_folder`, and stage runs under that parent. A run.json naming someone
    else's runs fails nothing.
    """
    try:
        client = open_client(tracking_uri)
        parent = client.get_run(parent_run_id)
        if Path(parent.data.tags.get(TAG_PREFIX + "run_dir", "")).name != run_folder:
            return
        runs = [parent]
        for run_id in stage_run_ids:
            run = client.get_run(run_id)
            if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id:
                runs.append(run)
        for run in runs:
            if run.info.status == "RUNNING":
                client.set_terminated(run.info.run_id, "FAILED")
    except Exception:  # unreachable store: run.json still says failed
        pass
