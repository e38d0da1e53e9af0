"""The panel's texts, as HTML: what the notebook is, what is wrong with it, how a run ended.

Everything that comes from the notebook or a run is escaped: stage names, messages and
tracebacks are user content, and the HTML widget renders what it is given.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from ..analysis import Analysis, Diagnostic
from ..report import logged_metrics
from ..run.runstate import FAILED, RUN_CANCELLED, RUN_SUCCEEDED, RunState
from ..tracking import MlflowLinks
from .palette import ERROR_COLOR, SUCCESS_COLOR, WARNING_COLOR

# ipywidgets gives HTML the height of an input box as line height; text wraps tighter
LINE = "line-height:1.5"


def header_html(notebook: Path, analysis: Analysis, tracking_uri: str) -> str:
    s = analysis.settings
    return _div(
        f"<b>{escape(notebook.name)}</b>: pipeline <code>{escape(s.pipeline)}</code>, "
        f"experiment <code>{escape(s.experiment)}</code>, model "
        f"<code>{escape(s.model_name)}</code>"
    ) + _div(
        f'<span style="opacity:0.7">{escape(str(notebook.parent))} · MLflow '
        f"{escape(tracking_uri)}</span>"
    )


def diagnostics_html(diagnostics: list[Diagnostic]) -> str:
    """Errors first (they block a run), then warnings, each with its cell."""
    lines = []
    for d in diagnostics:
        symbol, colour = ("✗", ERROR_COLOR) if d.severity == "error" else ("⚠", WARNING_COLOR)
        lines.append(_coloured(colour, f"{symbol} {escape(str(d))}"))
    errors = sum(d.severity == "error" for d in diagnostics)
    if errors:
        lines.append(_div(f"<i>fix the {errors} error(s) and save the notebook to run it</i>"))
    return "".join(lines)


def refusal_html(message: str) -> str:
    return _coloured(ERROR_COLOR, f"✗ not started: {escape(message)}") + _div(
        "nothing was run and nothing was logged"
    )


def outcome_html(
    status: str, state: RunState | None, message: str | None, links: MlflowLinks
) -> str:
    """How a finished run ended, with the way on: MLflow links, the model, or the bad cell."""
    if state is not None and status == RUN_SUCCEEDED:
        return _success(state, links)
    if status == RUN_CANCELLED:
        if state is not None:
            text = "run cancelled: its kernels were stopped"
        else:  # e.g. "the run was cancelled while queued"
            text = message or "the run was cancelled before it started"
        parts = [_coloured(WARNING_COLOR, f"■ {escape(text)}")]
    else:
        parts = [_coloured(ERROR_COLOR, f"✗ {escape(message or 'the run failed')}")]
    if state is None:
        return "".join(parts)
    failed = next((s for s in state.stages if s.status == FAILED), None)
    if failed is not None and failed.error is not None:
        error = failed.error
        if error.cell is not None:
            source = Path(state.source).name if state.source else "the notebook"
            parts.append(_div(f"source cell: {error.cell} of {escape(source)}"))
        if failed.notebook:
            executed = Path(state.run_dir) / failed.notebook
            parts.append(_div(f"the executed notebook: {escape(str(executed))}"))
        if error.traceback:
            parts.append(
                "<details><summary>traceback</summary>"
                f'<pre style="white-space:pre-wrap">{escape(error.traceback)}</pre></details>'
            )
    if state.parent_run_id:
        parts.append(_mlflow_run(state, links, "marked FAILED"))
    return "".join(parts)


def _success(state: RunState, links: MlflowLinks) -> str:
    seconds = (state.finished or time.time()) - state.created
    parts = [
        _coloured(
            SUCCESS_COLOR,
            f"✓ pipeline <code>{escape(state.pipeline)}</code> succeeded in {seconds:.1f} s "
            f"(run {escape(state.id)})",
        ),
        _mlflow_run(state, links),
    ]
    if metrics := logged_metrics(state):
        parts.append(_div(f"metrics: <code>{escape(metrics)}</code>"))
    for model in state.models:
        url = links.model(model["name"], model["version"])
        version = f"version {escape(str(model['version']))}"
        parts.append(
            _div(
                f"model: <code>{escape(model['uri'])}</code> "
                f"({_link(url, version) if url else version}"
                + ("" if model.get("new", True) else ", unchanged: trained by an earlier run")
                + "); load it with "
                f'<code>mlflow.pyfunc.load_model("{escape(model["uri"])}")</code>'
            )
        )
    if links.ui is None and state.tracking_uri:
        parts.append(
            _div(
                "browse it: <code>mlflow ui --backend-store-uri "
                f"{escape(state.tracking_uri)}</code>"
            )
        )
    parts.append(_div(f"run folder: {escape(state.run_dir)}"))
    parts += [_coloured(WARNING_COLOR, f"⚠ {escape(w)}") for w in state.warnings]
    return "".join(parts)


def _mlflow_run(state: RunState, links: MlflowLinks, note: str = "") -> str:
    run_id = escape(state.parent_run_id or "")
    url = links.run(state.experiment_id, state.parent_run_id)
    shown = _link(url, run_id) if url else f"<code>{run_id}</code>"
    return _div(f"MLflow run: {shown}" + (f" ({note})" if note else ""))


def _link(url: str, text: str) -> str:
    style = "color:var(--jp-content-link-color,#1565c0)"
    return f'<a href="{escape(url)}" target="_blank" rel="noopener" style="{style}">{text}</a>'


def _coloured(colour: str, content: str) -> str:
    return f'<div style="{LINE};color:{colour}">{content}</div>'


def _div(content: str) -> str:
    return f'<div style="{LINE}">{content}</div>'
