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

from ..bundle import Bundle

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


def exporters() -> dict[str, Exporter]:
    from . import airflow, github_actions, kubeflow

    return {
        "airflow": airflow.export,
        "kubeflow": kubeflow.export,
        "github-actions": github_actions.export,
    }
