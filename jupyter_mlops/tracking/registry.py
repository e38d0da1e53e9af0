"""The model registry: a pipeline's logged models registered as versions with an alias.

Once every stage of a pipeline run succeeded, each model a stage logged (`model:VAR`)
becomes a version of the registered model named after the pipeline (one per variable when
there are several), gets the alias ``candidate`` and a model card as its description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .card import model_card
from .client import TAG_PREFIX

if TYPE_CHECKING:
    from .runs import PipelineTracker, StageOutcome

CANDIDATE_ALIAS = "candidate"


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


def register_models(
    tracker: PipelineTracker, outcomes: list[StageOutcome]
) -> list[RegisteredModel]:
    """Register the models the stages logged, as candidates of the tracker's pipeline run."""
    client, bundle, git = tracker.client, tracker.bundle, tracker.git
    logged = [
        (outcome, variable, info)
        for outcome in outcomes
        if outcome.record
        for variable, info in outcome.record.models.items()
    ]
    registered = []
    for outcome, variable, info in logged:
        name = bundle.model_name
        if len(logged) > 1:
            name = f"{name}-{variable}"
        _ensure_registered_model(tracker, name)
        version = client.create_model_version(
            name=name,
            source=info["model_uri"],
            run_id=outcome.run_id,
            model_id=info.get("model_id"),
            tags={
                TAG_PREFIX + "pipeline_run": tracker.parent_run_id or "",
                TAG_PREFIX + "stage": outcome.stage,
                TAG_PREFIX + "variable": variable,
                **({"git_commit": git["commit"]} if git.get("commit") else {}),
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
        client.set_registered_model_alias(name, CANDIDATE_ALIAS, str(version.version))
        client.update_model_version(
            name, str(version.version), description=model_card(tracker, model, outcomes)
        )
        registered.append(model)
    return registered


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
