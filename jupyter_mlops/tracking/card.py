"""The model card: a registered model version's description, in Markdown.

Where the model comes from (notebook, commit, pipeline run, stage and variable), the
parameters and metrics it was trained with, and how to load and serve it, so the MLflow UI
answers those questions on the version's own page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import RegisteredModel
    from .runs import PipelineTracker, StageOutcome

MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values


def param_text(value: Any) -> str:
    """Parameters as a Python user would write them: `None`, `0.25`, `[1, 2]`."""
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - 20] + "...(truncated)"
    return text


def model_card(
    tracker: PipelineTracker, model: RegisteredModel, outcomes: list[StageOutcome]
) -> str:
    """The version's description: where the model comes from and how to use it."""
    bundle, git = tracker.bundle, tracker.git
    source = git.get("path") or bundle.source_path or "(no source notebook)"
    commit = git.get("commit")
    lines = [
        f"# {model.name} v{model.version}: candidate from pipeline `{bundle.name}`",
        "",
        f"- Source notebook: `{source}`"
        + (f" (sha256 `{bundle.source_sha256[:12]}`)" if bundle.source_sha256 else ""),
        f"- Git commit: `{commit}`"
        + (" (notebook had uncommitted changes)" if git.get("dirty") == "true" else "")
        if commit
        else "- Git commit: not in a git repository",
        f"- Pipeline run: `{tracker.parent_run_id}`; trained in stage `{model.stage}` "
        f"as variable `{model.variable}` ({model.flavor} flavor)",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        *(f"| {k} | `{param_text(v)[:80]}` |" for k, v in tracker.parameters.items()),
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
