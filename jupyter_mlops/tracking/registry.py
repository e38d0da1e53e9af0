"""The model registry: the models a pipeline run trained, as versions with an alias.

Once every stage of a pipeline run succeeded, each model a stage of that run trained
(`model:VAR`) becomes a version of the registered model named after the pipeline (one per
variable when there are several), gets the alias ``candidate`` and a model card as its
description. The version is registered by model id (its source is ``models:/m-...``), and
its run is the pipeline's parent run, which carries every stage's metrics: MLflow's
*Compare versions* and the parent run's page then show what the model scored.

Lineage can't lie: a model this run did not train (its stage was cached, or its outputs
were reused from an earlier run) gets no new version and moves no alias; the run links to
the version that model already has.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .card import model_card
from .client import TAG_PREFIX, process_store, ui_route

if TYPE_CHECKING:
    from ..bundle import Bundle
    from .runs import PipelineTracker, StageOutcome

CANDIDATE_ALIAS = "candidate"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # MLflow's own link from a logged model
NOTE_TAG = "mlflow.note.content"  # the logged model's description in MLflow's UI


@dataclass
class RegisteredModel:
    name: str
    version: str
    variable: str
    stage: str
    uri: str  # models:/NAME/VERSION
    alias_uri: str  # models:/NAME@candidate
    flavor: str
    model_id: str | None = None  # the logged model (m-...)
    run_id: str = ""  # the stage run that logged it
    new: bool = True  # False: the version an earlier run registered for a reused model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register_models(
    tracker: PipelineTracker, outcomes: list[StageOutcome], appendix: str = ""
) -> list[RegisteredModel]:
    """Register the models this run trained as candidates; link the ones it reused.

    `appendix` (markdown) ends each new version's model card."""
    from mlflow.exceptions import MlflowException

    logged = [
        (outcome, variable, info)
        for outcome in outcomes
        if outcome.record
        for variable, info in outcome.record.models.items()
    ]
    registered = []
    # The SQL registry looks the logged model up through MLflow's process-wide URI.
    with process_store(tracker.tracking_uri):
        for outcome, variable, info in logged:
            name = registered_name(tracker.bundle, variable)
            model = RegisteredModel(
                name=name,
                version="",
                variable=variable,
                stage=outcome.stage,
                uri="",
                alias_uri=f"models:/{name}@{CANDIDATE_ALIAS}",
                flavor=info.get("flavor", "pyfunc"),
                model_id=model_id(info),
                run_id=info.get("run_id") or outcome.run_id,
            )
            existing = _existing_version(tracker, model) if outcome.cached_from else None
            if existing is not None:
                (model.name, model.version), model.new = existing, False
                model.alias_uri = f"models:/{model.name}@{CANDIDATE_ALIAS}"
            else:
                model.version = _new_version(tracker, model, info)
            model.uri = f"models:/{model.name}/{model.version}"
            if model.new:
                tracker.client.set_registered_model_alias(name, CANDIDATE_ALIAS, model.version)
                tracker.client.update_model_version(
                    name,
                    model.version,
                    description=model_card(tracker, model, outcomes)
                    + (f"\n{appendix.strip()}\n" if appendix.strip() else ""),
                )
                # Links MLflow's pages read; the version stands without them.
                with contextlib.suppress(MlflowException):
                    _link_logged_model(tracker, model)
            registered.append(model)
    return registered


def registered_name(bundle: Bundle, variable: str) -> str:
    """The registered model a `model:VAR` becomes a version of: the notebook's model name,
    suffixed with the variable when the pipeline has several models. The logged model is
    named so too, so MLflow's Models tab reads like the registry."""
    count = sum(len(stage.models) for stage in bundle.stages)
    return bundle.model_name if count <= 1 else f"{bundle.model_name}-{variable}"


def model_id(info: dict[str, Any]) -> str | None:
    """The logged model's id, from what the stage recorded (`models:/m-...` in older ones)."""
    if info.get("model_id"):
        return str(info["model_id"])
    uri = str(info.get("model_uri", ""))
    return uri.removeprefix("models:/") if uri.startswith("models:/m-") else None


def _new_version(
    tracker: PipelineTracker,
    model: RegisteredModel,
    info: dict[str, Any],
) -> str:
    client, git = tracker.client, tracker.git
    _ensure_registered_model(tracker, model.name)
    version = client.create_model_version(
        name=model.name,
        source=f"models:/{model.model_id}" if model.model_id else info["model_uri"],
        run_id=tracker.parent_run_id,
        model_id=model.model_id,
        tags={
            TAG_PREFIX + "pipeline_run": tracker.parent_run_id or "",
            TAG_PREFIX + "stage": model.stage,
            TAG_PREFIX + "stage_run": model.run_id,
            TAG_PREFIX + "variable": model.variable,
            **({TAG_PREFIX + "model_id": model.model_id} if model.model_id else {}),
            **({"git_commit": git["commit"]} if git.get("commit") else {}),
        },
    )
    return str(version.version)


def _existing_version(tracker: PipelineTracker, model: RegisteredModel) -> tuple[str, str] | None:
    """(name, version) of a version an earlier run registered for this logged model under
    this run's registered name, and that still exists. Under another name (a renamed or
    another pipeline whose stages were cached) the model gets a first version of its own,
    its card saying that an earlier run trained it."""
    from mlflow.exceptions import MlflowException

    if not model.model_id:
        return None
    try:
        logged = tracker.client.get_logged_model(model.model_id)
    except MlflowException:
        return None
    entries = json.loads(logged.tags.get(MODEL_VERSIONS_TAG) or "[]")
    for entry in [e for e in entries if e.get("name") == model.name]:
        name, number = str(entry.get("name")), str(entry.get("version"))
        try:  # MLflow keeps the entry after the version is deleted
            version = tracker.client.get_model_version(name, number)
        except MlflowException:
            continue
        if version.source == f"models:/{model.model_id}":
            return name, number
    return None


def _link_logged_model(tracker: PipelineTracker, model: RegisteredModel) -> None:
    """What mlflow.register_model records on the logged model (its page lists the version),
    and a description saying where it comes from."""
    if not model.model_id:
        return
    logged = tracker.client.get_logged_model(model.model_id)
    entries = json.loads(logged.tags.get(MODEL_VERSIONS_TAG) or "[]")
    recorded = any(  # a tracking server's registry records it itself
        e.get("name") == model.name and str(e.get("version")) == model.version for e in entries
    )
    if not recorded:
        entries.append({"name": model.name, "version": model.version})
    note = (
        f"Trained by the pipeline run *{tracker.run_name or tracker.bundle.name}*, stage "
        f"`{model.stage}`; registered as [{model.name} v{model.version}]"
        f"({ui_route('version', model.name, model.version)}), whose page has the model card."
    )
    tracker.client.set_logged_model_tags(
        model.model_id, {MODEL_VERSIONS_TAG: json.dumps(entries), NOTE_TAG: note}
    )


def _ensure_registered_model(tracker: PipelineTracker, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        tracker.client.get_registered_model(name)
    except MlflowException:
        try:
            tracker.client.create_registered_model(
                name, description=f"Models trained by the `{tracker.bundle.name}` pipeline."
            )
        except MlflowException:
            tracker.client.get_registered_model(name)  # created concurrently: fine
