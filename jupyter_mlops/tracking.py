"""All of MLflow on the runner's side: the parent run, a child run per stage, the registry.

One parent run per pipeline run (parameters, source tags, the bundle's files) and one nested
child run per stage (its parameters, metrics, executed notebook as .ipynb and .html, the
data frames and arrays it consumed as dataset inputs). Each stage's kernel logs into its own
child run (through ``MLFLOW_RUN_ID``); models it logged are registered here once the whole
pipeline has succeeded, with the alias ``candidate`` and a model card as the description.

Everything goes through one ``MlflowClient``, never MLflow's global fluent state, so stages
running in parallel threads can't log into each other's runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .analysis import Stage
from .artifacts import StageRecord, VariableInfo
from .bundle import Bundle
from .errors import TrackingLost, TrackingUnavailable

CANDIDATE_ALIAS = "candidate"
MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values
TAG_PREFIX = "jupyter_mlops."

_NUMPY_TO_MLFLOW = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
    "object": "string",
    "str": "string",
    "string": "string",
}


def resolve_tracking_uri(uri: str | None = None) -> str:
    """`--tracking-uri`, else MLFLOW_TRACKING_URI, else MLflow's default; sqlite made absolute.

    Stage kernels start in the notebook's folder, so a relative `sqlite:///mlflow.db` must be
    pinned to the folder the user ran from, or each stage would log to a different file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        import mlflow

        uri = mlflow.get_tracking_uri()
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def without_credentials(url: str) -> str:
    """`url` without the user and password it may carry, for logging and showing it.

    A remote cloned as `https://user:token@host/repo.git` keeps the token in its URL, and
    the repository URL is logged as a tag that the MLflow UI shows to anyone who can read the
    experiment. Over HTTP the user part is often the token itself, so both go, as do a query
    and a fragment (`?private_token=...`); ssh keeps its user name, which is no secret
    (`ssh://git@host/repo`). scp-like remotes (`git@host:repo`) can't hold a password.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:  # a path, or scp-like `git@host:repo`
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() in ("ssh", "git+ssh", "ssh+git") and userinfo:
        host = f"{userinfo.partition(':')[0]}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def git_info(path: Path | None) -> dict[str, str]:
    """Commit, branch and whether the notebook has uncommitted changes; {} outside git."""
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
        info["path"] = git("ls-files", "--full-name", "--", path.name) or path.name
        info["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
        info["dirty"] = "true" if git("status", "--porcelain", "--", path.name) else "false"
        info["repo_url"] = without_credentials(git("config", "--get", "remote.origin.url"))
    except (RuntimeError, OSError, subprocess.SubprocessError):
        pass
    return info


class MlflowLinks:
    """Links into the MLflow UI, or None everywhere when there is no UI to link to."""

    def __init__(self, ui_url: str | None) -> None:
        self.ui = ui_url.rstrip("/") if ui_url else None

    def run(self, experiment_id: str | None, run_id: str | None) -> str | None:
        if not (self.ui and experiment_id and run_id):
            return None
        return f"{self.ui}/#/experiments/{experiment_id}/runs/{run_id}"

    def model(self, name: str, version: str) -> str | None:
        return f"{self.ui}/#/models/{name}/versions/{version}" if self.ui else None


@dataclass
class RegisteredModel:
    name: str
    version: str
    variable: str
    stage: str
    uri: str  # models:/NAME/VERSION
    alias_uri: str  # models:/NAME@candidate
    flavor: str

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class StageOutcome:
    """What the tracker needs to know about a finished stage for the model card."""

    stage: str
    run_id: str
    status: str
    duration: float
    record: StageRecord | None = None


@dataclass
class PipelineTracker:
    tracking_uri: str
    bundle: Bundle
    parent_run_id: str | None = None
    experiment_id: str | None = None
    git: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mlflow import MlflowClient

        for key, value in FAIL_FAST.items():  # for this process and the stage kernels
            os.environ.setdefault(key, value)
        with _sqlite_setup_lock(self.tracking_uri):
            self.client = GuardedClient(MlflowClient(tracking_uri=self.tracking_uri))
            try:
                self.client.search_experiments(max_results=1)  # creates a new store's tables
            except TrackingLost as lost:
                raise TrackingUnavailable(
                    f"can't reach the MLflow tracking server at {self.tracking_uri} "
                    f"({lost.reason}); nothing was run. Check --tracking-uri or "
                    "MLFLOW_TRACKING_URI, or start the server"
                ) from None

    @property
    def lost(self) -> bool:
        """Whether the tracking server went away during the run."""
        return self.client.lost is not None

    # --- runs ---------------------------------------------------------------------------

    def start(self, parameters: dict[str, Any], run_dir: Path) -> str:
        """Create the parent run: parameters, source tags and the bundle's files."""
        self.parameters = parameters
        self.experiment_id = self._experiment()
        source = self.bundle.source_path
        self.git = git_info(source)
        tags = {
            "mlflow.runName": self.bundle.name,
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": str(source) if source else self.bundle.name,
            TAG_PREFIX + "pipeline": self.bundle.name,
            TAG_PREFIX + "run_dir": str(run_dir),
            TAG_PREFIX + "stages": ",".join(self.bundle.stage_names),
        }
        if self.bundle.source_sha256:
            tags[TAG_PREFIX + "notebook_sha256"] = self.bundle.source_sha256
        for key, tag in (
            ("commit", "mlflow.source.git.commit"),
            ("branch", "mlflow.source.git.branch"),
            ("repo_url", "mlflow.source.git.repoURL"),
            ("dirty", TAG_PREFIX + "git_dirty"),
        ):
            if self.git.get(key):
                tags[tag] = self.git[key]
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

    def attach(self, parent_run_id: str, parameters: dict[str, Any]) -> None:
        """Log into a parent run another process created (a scheduler's `begin` task)."""
        self.parameters = parameters
        self.parent_run_id = parent_run_id
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        self.git = git_info(self.bundle.source_path)

    def stage_runs(self) -> dict[str, Any]:
        """The parent's child runs by stage (the newest when a stage was retried)."""
        found: dict[str, Any] = {}
        runs = self.client.search_runs(
            [str(self.experiment_id)],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        for run in runs:
            found[run.data.tags.get(TAG_PREFIX + "stage", "")] = run
        return found

    def _experiment(self) -> str:
        existing = self.client.get_experiment_by_name(self.bundle.experiment)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                self.client.restore_experiment(existing.experiment_id)
            return existing.experiment_id
        try:
            return self.client.create_experiment(self.bundle.experiment)
        except Exception:  # created concurrently by another run
            found = self.client.get_experiment_by_name(self.bundle.experiment)
            if found is None:
                raise
            return found.experiment_id

    def start_stage(self, stage: Stage, position: int) -> str:
        assert self.parent_run_id and self.experiment_id
        run = self.client.create_run(
            self.experiment_id,
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                "mlflow.runName": stage.name,
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
        self.finish_stage(run_id, "FINISHED", 0.0, record, [])
        return run_id

    def discard_run(self, run_id: str) -> None:
        """Remove the run of a stage that was prepared but never ran (skipped or cached)."""
        self.client.delete_run(run_id)

    def log_inputs(self, run_id: str, stage: Stage, records: dict[str, StageRecord]) -> None:
        """Data frames and arrays the stage consumed, as MLflow dataset inputs (lineage)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        datasets = []
        for variable, producer in stage.inputs.items():
            record = records.get(producer)
            info = record.variables.get(variable) if record else None
            if info is None or not info.summary:
                continue
            datasets.append(
                DatasetInput(
                    Dataset(
                        name=variable,
                        digest=info.digest[:16],
                        source_type="jupyter_mlops",
                        source=json.dumps(
                            {"stage": producer, "variable": variable, "object": record.object}
                        ),
                        schema=json.dumps(_schema(info)),
                        profile=json.dumps(_profile(info)),
                    ),
                    tags=[
                        InputTag("mlflow.data.context", f"from stage {producer}"),
                    ],
                )
            )
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
        metrics = [Metric("duration_s", duration, now, 0)]
        if record is not None:
            metrics += [Metric(k, v, now, 0) for k, v in record.metrics.items()]
        self.client.log_batch(run_id, metrics=metrics)
        for path in notebooks:
            if path.is_file():
                self.client.log_artifact(run_id, str(path), "notebook")
        if error:
            self.client.set_tag(run_id, TAG_PREFIX + "error", error[:5000])
        self.client.set_terminated(run_id, status)

    def finish(self, status: str, outcomes: list[StageOutcome]) -> list[RegisteredModel]:
        """End the parent run; on success register the logged models as candidates."""
        from mlflow.entities import Metric

        assert self.parent_run_id
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
            if status == "FINISHED":
                registered = self._register(outcomes)
        finally:
            self.client.set_terminated(self.parent_run_id, status)
        return registered

    def _log_params(self, run_id: str, parameters: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, _param_text(v)) for k, v in parameters.items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=params[start : start + 100])

    # --- the registry ---------------------------------------------------------------------

    def _register(self, outcomes: list[StageOutcome]) -> list[RegisteredModel]:
        logged = [
            (outcome, variable, info)
            for outcome in outcomes
            if outcome.record
            for variable, info in outcome.record.models.items()
        ]
        registered = []
        for outcome, variable, info in logged:
            name = self.bundle.model_name
            if len(logged) > 1:
                name = f"{name}-{variable}"
            self._ensure_registered_model(name)
            version = self.client.create_model_version(
                name=name,
                source=info["model_uri"],
                run_id=outcome.run_id,
                model_id=info.get("model_id"),
                tags={
                    TAG_PREFIX + "pipeline_run": self.parent_run_id or "",
                    TAG_PREFIX + "stage": outcome.stage,
                    TAG_PREFIX + "variable": variable,
                    **({"git_commit": self.git["commit"]} if self.git.get("commit") else {}),
                },
            )
            model = RegisteredModel(
                name=name,
                version=str(version.version),
                variable=variable,
                stage=outcome.stage,
                uri=f"models:/{name}/{version.version}",
                alias_uri=f"models:/{name}@{CANDIDATE_ALIAS}",
                flavor=info.get("flavor", "pyfunc"),
            )
            self.client.set_registered_model_alias(name, CANDIDATE_ALIAS, str(version.version))
            self.client.update_model_version(
                name, str(version.version), description=self.model_card(model, outcomes)
            )
            registered.append(model)
        return registered

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    name, description=f"Models trained by the `{self.bundle.name}` pipeline."
                )
            except MlflowException:
                self.client.get_registered_model(name)  # created concurrently: fine

    def model_card(self, model: RegisteredModel, outcomes: list[StageOutcome]) -> str:
        """The version's description: where the model comes from and how to use it."""
        source = self.git.get("path") or self.bundle.source_path or "(no source notebook)"
        commit = self.git.get("commit")
        lines = [
            f"# {model.name} v{model.version}: candidate from pipeline `{self.bundle.name}`",
            "",
            f"- Source notebook: `{source}`"
            + (
                f" (sha256 `{self.bundle.source_sha256[:12]}`)" if self.bundle.source_sha256 else ""
            ),
            f"- Git commit: `{commit}`"
            + (" (notebook had uncommitted changes)" if self.git.get("dirty") == "true" else "")
            if commit
            else "- Git commit: not in a git repository",
            f"- Pipeline run: `{self.parent_run_id}`; trained in stage `{model.stage}` "
            f"as variable `{model.variable}` ({model.flavor} flavor)",
            "",
            "## Parameters",
            "",
            "| parameter | value |",
            "|---|---|",
            *(f"| {k} | `{_param_text(v)[:80]}` |" for k, v in self.parameters.items()),
            "",
            "## Metrics",
            "",
            "| stage | metric | value |",
            "|---|---|---|",
            *(
                f"| {o.stage} | {k} | {v:.6g} |"
                for o in outcomes
                if o.record
                for k, v in o.record.metrics.items()
            ),
            "",
            "## Stages",
            "",
            "| stage | status | seconds |",
            "|---|---|---|",
            *(f"| {o.stage} | {o.status} | {o.duration:.1f} |" for o in outcomes),
            "",
            "## Use it",
            "",
            "```python",
            "import mlflow",
            f'model = mlflow.pyfunc.load_model("{model.alias_uri}")',
            "```",
            "",
            "Serve it over HTTP:",
            "",
            "```",
            f'mlflow models serve -m "{model.alias_uri}" --env-manager local -h 127.0.0.1 -p 5001',
            "```",
        ]
        return "\n".join(lines)


# MLflow retries an unreachable server for minutes by default; a pipeline should say so
# within seconds and keep its results (`jupyter-mlops log` uploads them later). Users' own
# settings of these variables win.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
_UNREACHABLE = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Connection refused",
    "Connection aborted",
    "Read timed out",
    "RemoteDisconnected",
)


class GuardedClient:
    """An MlflowClient whose calls, once the server is unreachable, all fail at once with
    TrackingLost instead of each waiting out its own retries."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.lost: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.lost is not None:
                raise TrackingLost(self.lost)
            try:
                return attribute(*args, **kwargs)
            except Exception as error:
                text = str(error)
                if not any(sign in text for sign in _UNREACHABLE):
                    raise
                self.lost = next(s for s in _UNREACHABLE if s in text).lower()
                raise TrackingLost(self.lost) from None

        return call


@contextmanager
def _sqlite_setup_lock(uri: str) -> Iterator[None]:
    """Let one process at a time create a new sqlite store's tables.

    MLflow migrates a new sqlite database on first use; runs started at the same moment
    (CI matrix jobs, a user clicking twice) would otherwise race and fail half-way.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        yield
        return
    lock_path = Path(uri[len(prefix) :] + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _param_text(value: Any) -> str:
    """Parameters as a Python user would write them: `None`, `0.25`, `[1, 2]`."""
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - 20] + "...(truncated)"
    return text


def _schema(info: VariableInfo) -> dict[str, Any]:
    summary = info.summary
    if summary.get("kind") == "dataframe":
        return {
            "mlflow_colspec": [
                {"name": name, "type": _NUMPY_TO_MLFLOW.get(dtype, "string")}
                for name, dtype in summary["columns"].items()
            ]
        }
    shape = summary.get("shape") or [summary.get("rows", -1)]
    return {
        "mlflow_tensorspec": {
            "features": json.dumps(
                [
                    {
                        "type": "tensor",
                        "tensor-spec": {"dtype": summary["dtype"], "shape": [-1, *shape[1:]]},
                    }
                ]
            ),
            "targets": None,
        }
    }


def _profile(info: VariableInfo) -> dict[str, Any]:
    summary = info.summary
    rows = summary.get("rows") or (summary.get("shape") or [None])[0]
    profile: dict[str, Any] = {"num_rows": rows}
    if summary.get("kind") == "ndarray":
        profile["shape"] = summary["shape"]
    return profile
