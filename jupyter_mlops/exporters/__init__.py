"""Handing a bundle to systems that run pipelines: CI workflows and schedulers.

Every exporter writes plain files into an output folder: the bundle itself (under
``bundle/``, so the export is self-contained and reviewable) and the scheduler's own
definition, which runs the stages with the same commands as anywhere else (`jupyter-mlops
run`, or `begin` / `stage` / `end` when a scheduler runs each stage as a task).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..bundle import Bundle
from ..errors import BadInput
from ..tags import STAGE_NAME, unsafe_character

BUNDLE_FOLDER = "bundle"


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    source_notebook: Path | None = None  # the notebook, when exporting from one
    artifact_store: str | None = None  # shared store URI for schedulers
    tracking_uri: str | None = None  # MLflow every task can reach
    schedule: str | None = None  # cron expression
    parameters_file: Path | None = None  # smoke parameters for CI
    image: str | None = None  # container image for Kubeflow


Exporter = Callable[[Bundle, ExportOptions], list[Path]]


def check_inputs(bundle: Bundle, options: ExportOptions) -> None:
    """Refuse what would make the generated files say or run something else, or leak.

    A converted notebook's names passed `check`, but a bundle's pipeline.yaml may have been
    edited since, and what every exporter writes (YAML, Python, shell lines) relies on it:
    no name holds a line or control character, stage names are the lowercase identifiers
    tags allow, and parameter names are Python identifiers. URIs given for the tasks go into
    files people commit, so they carry no password (nor, over HTTP, a user, often a token).
    """
    for option, uri in (
        ("--tracking-uri", options.tracking_uri),
        ("--artifact-store", options.artifact_store),
    ):
        parts = urlsplit(uri or "")
        if parts.password is not None or (parts.username and parts.scheme in ("http", "https")):
            raise BadInput(
                f"{option} holds credentials, which the exported files would carry into your "
                "repository: give it without them, and give the tasks credentials in their "
                "environment (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                "MLFLOW_TRACKING_TOKEN, or the object store's own variables)"
            )
    names = {"pipeline": bundle.name, "experiment": bundle.experiment}
    names["model name"] = bundle.model_name
    for kind, name in names.items():
        if unsafe := unsafe_character(str(name)):
            raise BadInput(
                f"the {kind} name {name!r} holds {unsafe}, a line or control character: "
                "remove it from the bundle's pipeline.yaml (or the notebook) and convert again"
            )
    for stage in bundle.stage_names:
        if not (isinstance(stage, str) and STAGE_NAME.fullmatch(stage)):
            raise BadInput(
                f"stage name {stage!r} in pipeline.yaml is not a lowercase identifier "
                "([a-z][a-z0-9_]*): convert the notebook again rather than editing the bundle"
            )
    for parameter in bundle.parameters:
        if not (isinstance(parameter.name, str) and parameter.name.isidentifier()):
            raise BadInput(
                f"parameter name {parameter.name!r} in pipeline.yaml is not a Python "
                "identifier: convert the notebook again rather than editing the bundle"
            )


def exporters() -> dict[str, Exporter]:
    from . import airflow, github_actions, kubeflow

    return {
        "airflow": airflow.export,
        "kubeflow": kubeflow.export,
        "github-actions": github_actions.export,
    }


def printable(text: str) -> str:
    """`text` with each character that is not printable (but newlines) as a Python escape
    (`\\x85`, `\\u2028`, `\\u202e`), for generated code and comments: a reader sees what the
    code says, and no tool that reads lines differently (NEL, U+2028 end a line in YAML 1.1)
    sees other code."""
    return "".join(
        char if char.isprintable() or char == "\n" else repr(char)[1:-1] for char in text
    )
