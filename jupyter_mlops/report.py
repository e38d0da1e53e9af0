"""Human-readable text for the terminal: the `check` report, a run's and a sweep's progress
lines and summaries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .analysis import Analysis
from .run.runstate import CACHED, CANCELLED, DONE, FAILED, RUNNING, SKIPPED, RunState
from .run.timings import PARTS
from .state import value_name
from .status_symbols import STATUS_SYMBOLS
from .sweeps.record import SUCCEEDED as TRIAL_SUCCEEDED
from .sweeps.record import SweepState, Trial, value_text
from .tracking import without_credentials
from .tracking.client import ui_route
from .verify import Difference, VerifyReport

DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default

# The statuses a progress line is printed for (a queued stage has none), in click's colours.
_STATUS_COLOURS = {
    RUNNING: "cyan",
    DONE: "green",
    CACHED: "blue",
    FAILED: "red",
    SKIPPED: "yellow",
    CANCELLED: "yellow",
}


def check_report(analysis: Analysis, name: str) -> str:
    s = analysis.settings
    out = [
        click.style(name, bold=True)
        + f": pipeline `{s.pipeline}` (experiment `{s.experiment}`, model `{s.model_name}`)",
    ]
    if analysis.parameters:
        out += ["", click.style("Parameters", bold=True)]
        kinds = [
            f"{p.type} | None" if p.optional and p.type != "any" else p.type
            for p in analysis.parameters
        ]
        width = max(len(p.name) for p in analysis.parameters)
        kind_width = max(len(kind) for kind in kinds)
        for p, kind in zip(analysis.parameters, kinds, strict=True):
            help_text = f"  # {p.help}" if p.help else ""
            out.append(f"  {p.name:<{width}}  {kind:<{kind_width}}  = {p.default!r}{help_text}")
    if analysis.setup_cells:
        out += ["", click.style("Setup cells", bold=True) + ": " + _cells(analysis.setup_cells)]
    if analysis.stages:
        out += ["", click.style("Stages", bold=True) + " (in run order)"]
    for number, stage in enumerate(analysis.stages, 1):
        out.append(f"  {number}. {click.style(stage.name, bold=True)}  cells {_cells(stage.cells)}")
        for index in stage.cells:
            skipped = analysis.cells[index].after_skip
            if skipped is not None:
                out.append(
                    f"       cell {index} follows skip cell {skipped}: it runs in this stage"
                )
        if stage.inputs:
            takes = ", ".join(f"{value_name(v)} ({p})" for v, p in stage.inputs.items())
            out.append(f"       takes: {takes}")
        if stage.definitions:
            uses = ", ".join(
                f"{name} (cell {cell}, `{analysis.cells[cell].stage}`)"
                for name, cell in stage.definitions.items()
            )
            out.append(f"       defines again: {uses}")
        if stage.replay:
            cells = [line.split()[2] for line in stage.replay]  # "# cell N (stage ...)"
            out.append(f"       replays the settings of cells {', '.join(cells)}")
        if stage.outputs:
            out.append(f"       gives: {', '.join(map(value_name, stage.outputs))}")
        if stage.parameters:
            out.append(f"       parameters: {', '.join(stage.parameters)}")
        if stage.after:
            out.append(f"       after: {', '.join(stage.after)}")
        if stage.metrics:
            out.append(f"       metrics: {', '.join(stage.metrics)}")
        for variable, data in stage.models.items():
            fitted = f" (input example from `{data}`)" if data else ""
            out.append(f"       model: {variable}{fitted}")
    if analysis.edges:
        out += ["", click.style("Edges", bold=True)]
        for edge in analysis.edges:
            what = ", ".join(map(value_name, edge.variables)) if edge.variables else "after: tag"
            out.append(f"  {edge.source} -> {edge.target}: {what}")
    for title, items, colour in (
        ("Warnings", analysis.warnings, "yellow"),
        ("Errors", analysis.errors, "red"),
    ):
        if items:
            out += ["", click.style(title, bold=True, fg=colour)]
            out += [f"  {d}" for d in items]
    errors, warnings = len(analysis.errors), len(analysis.warnings)
    summary = (
        click.style(f"✗ {errors} error(s)", fg="red", bold=True)
        if errors
        else click.style("✓ no errors", fg="green", bold=True)
    )
    out += ["", f"{summary}, {warnings} warning(s)"]
    return "\n".join(out)


def verify_report(report: VerifyReport) -> str:
    """What `verify` found: identical, or each value that differs and where to look."""
    timing = (
        f"notebook {report.plain_seconds:.1f} s, pipeline {report.pipeline_seconds:.1f} s "
        f"({report.stages} stages)"
    )
    real = [d for d in report.differences if not d.unseeded]
    unseeded = [d for d in report.differences if d.unseeded]
    out = []
    if not real:
        out.append(
            click.style("✓ identical", fg="green", bold=True)
            + f": {_values(report.values)} the stages hand on or log match the notebook's; "
            f"{timing}"
        )
    else:
        out.append(
            click.style("✗ divergent", fg="red", bold=True)
            + f": {len(real)} of {_values(report.values)} handed on or logged differ from "
            f"the notebook's; {timing}"
        )
        for difference in real:
            readers = ", ".join(f"`{r}`" for r in difference.readers) or "no stage"
            what = (
                f"logs {_variable(difference)}"
                if difference.metric
                else f"hands {_variable(difference)} to {readers}"
            )
            out.append(
                f"  stage `{difference.stage}` (cell {difference.cell}) {what}: {difference.detail}"
            )
        out.append(f"  the runs to look into: {report.folder}")
    if unseeded:
        names = ", ".join(f"{_variable(d)} (stage `{d.stage}`)" for d in unseeded)
        out.append(
            click.style("  note: ", fg="yellow")
            + f"{names} differ between two plain runs of the notebook too (unseeded "
            "randomness, or contents that vary from run to run): no split can be checked on "
            "them; seed the randomness to have them checked"
        )
    return "\n".join(out)


def _variable(difference: Difference) -> str:
    return difference.label if difference.variable != difference.label else f"`{difference.label}`"


def _values(count: int) -> str:
    return f"{count} value" + ("" if count == 1 else "s")


def _cells(cells: list[int]) -> str:
    return ", ".join(str(c) for c in cells)


class ProgressPrinter:
    """A run listener printing one line per stage status change (readable in CI logs too)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, state: RunState, stage: str | None) -> None:
        for entry in state.stages:
            if self.seen.get(entry.name) == entry.status or entry.status not in _STATUS_COLOURS:
                continue
            self.seen[entry.name] = entry.status
            symbol, colour = STATUS_SYMBOLS[entry.status], _STATUS_COLOURS[entry.status]
            duration = entry.duration
            timing = f" {duration:.1f}s" if entry.status != RUNNING and duration else ""
            note = f" ({cached_note(entry.cached_from)})" if entry.status == CACHED else ""
            stamp = time.strftime("%H:%M:%S")
            click.echo(
                f"{stamp} {click.style(symbol, fg=colour)} {entry.name:<20} "
                f"{click.style(entry.status, fg=colour)}{timing}{note}",
                err=True,
            )


def run_summary(state: RunState) -> str:
    seconds = (state.finished or time.time()) - state.created
    run_dir = _short(Path(state.run_dir))
    lines = [
        click.style(f"✓ pipeline `{state.pipeline}` succeeded", fg="green", bold=True)
        + f" in {seconds:.1f} s (run {state.id})",
        f"  run folder: {run_dir}",
        f"  MLflow:     {without_credentials(state.tracking_uri or '')}, run {state.parent_run_id}",
    ]
    if metrics := logged_metrics(state):
        lines.append(f"  metrics:    {metrics}")
    for model in state.models:
        lines.append(f"  model:      {model_line(model)}")
    if any(stage.status == CACHED for stage in state.stages):
        lines.append(f"  cached:     {CACHED_MEANS}")
    lines += _browse_it(state.tracking_uri, state.experiment_id, state.parent_run_id)
    return "\n".join(lines)


def _browse_it(tracking_uri: str | None, experiment: str | None, run: str | None) -> list[str]:
    """How to see a run in a local store: the `mlflow ui` command, then the run's page."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:"):
        return []
    lines = [f"  browse it:  mlflow ui --backend-store-uri {tracking_uri}"]
    if experiment and run:
        lines.append(f"              then open {DEFAULT_UI}/{ui_route('run', experiment, run)}")
    return lines


CACHED_MEANS = (
    "stages whose code, parameters and inputs are unchanged reused an earlier run's "
    "outputs; --no-cache runs every stage"
)


def cached_note(origin: str | None) -> str:
    """`outputs of MLflow run 1a2b3c4d`: where a cached stage's outputs come from, short
    enough for a progress line (run.json and the stage's MLflow run have the whole id)."""
    if not origin:
        return "outputs of an earlier run"
    if len(origin) == 32 and all(c in "0123456789abcdef" for c in origin):
        return f"outputs of MLflow run {origin[:8]}"
    return f"outputs of run {origin}"  # a run folder's name, when MLflow was not reached


def timings_table(state: RunState) -> str:
    """Where each stage's time went (`run --timings`), a column per part, in seconds.

    `total` is the stage's own clock, from its gate opening to its record: a pre-started
    stage's kernel, setup and wait at the gate come before it, behind upstream stages."""
    header = ["stage", *PARTS, "total"]
    rows = []
    for stage in state.stages:
        if stage.status == CACHED:
            rows.append([stage.name, *("-" for _ in PARTS), "cached"])
        elif stage.timings:
            parts = [f"{stage.timings.get(part, 0.0):.2f}" for part in PARTS]
            rows.append([stage.name, *parts, f"{stage.duration or 0.0:.2f}"])
    if not rows:
        return "timings: no stage ran"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return "\n".join(["timings (s):", *(line(row) for row in [header, *rows])])


def model_line(model: dict[str, Any]) -> str:
    """`wine-classifier v2 -> models:/wine-classifier/2 (now @candidate)`, or the version a
    reused model already had: a run that trained nothing registers nothing."""
    text = f"{model['name']} v{model['version']} -> {model['uri']}"
    if model.get("new", True):
        alias = model["alias_uri"].rpartition("@")[2]
        return f"{text} (now @{alias})"
    return f"{text} (unchanged: trained by an earlier run, no new version)"


def logged_metrics(state: RunState) -> str:
    """`accuracy 0.9778, f1_macro 1`: what the run's `metrics` cells logged, in stage order."""
    return ", ".join(f"{k} {v:.4g}" for stage in state.stages for k, v in stage.metrics.items())


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_TRIAL_COLOURS = {"running": "cyan", "succeeded": "green", "failed": "red", "cancelled": "yellow"}


class SweepPrinter:
    """A sweep listener printing a line as each trial starts and ends."""

    def __call__(self, state: SweepState, trial: Trial | None) -> None:
        if trial is None or trial.status not in _TRIAL_COLOURS:
            return
        colour = _TRIAL_COLOURS[trial.status]
        values = " ".join(f"{k}={value_text(v)}" for k, v in trial.parameters.items())
        head = f"{time.strftime('%H:%M:%S')} trial {trial.number}/{len(state.trials)} {values}"
        if trial.status == "running":
            click.echo(f"{head}: {click.style('running', fg=colour)}", err=True)
            return
        said = [click.style(trial.status, fg=colour)]
        if trial.duration:
            said.append(f"in {trial.duration:.1f} s")
        if trial.metric is not None:
            said.append(f"{state.metric} {trial.metric:.4g}")
        if trial.shared:
            said.append(f"(shared: {', '.join(trial.shared)})")
        click.echo(f"{head}: {' '.join(said)}", err=True)
        if trial.error:
            click.echo(f"  {trial.error.splitlines()[0]}", err=True)


def sweep_table(state: SweepState) -> str:
    """The trials as a terminal table, the best one starred."""
    names = list(state.space)
    header = ["", "trial", *names, state.metric, "status", "run"]
    rows = [header]
    for trial in state.trials:
        rows.append(
            [
                "*" if trial.number == state.best else "",
                str(trial.number),
                *(value_text(trial.parameters.get(name)) for name in names),
                "" if trial.metric is None else f"{trial.metric:.4g}",
                trial.status,
                trial.run_id or "",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def sweep_summary(state: SweepState, folder: Path) -> str:
    counts = state.counts()
    best = state.trial(state.best) if state.best else None
    done = f"{counts[TRIAL_SUCCEEDED]} of {len(state.trials)} trials succeeded"
    if best is None:
        head = click.style(f"✗ sweep `{state.pipeline}`: no trial gave {state.metric}", fg="red")
    else:
        head = click.style(f"✓ sweep `{state.pipeline}`", fg="green", bold=True)
    lines = [f"{head} ({done}, sweep {state.id})", sweep_table(state)]
    if best is not None:
        lines.append(
            f"  best:       trial {best.number}, {state.objective.describe()}: "
            f"{best.metric:.6g} (run {best.run_id})"
        )
    for model in state.models:
        lines.append(f"  model:      {model_line(model)}")
    lines.append(f"  sweep:      {_short(folder)}")
    uri = without_credentials(state.tracking_uri or "")
    lines.append(
        f"  MLflow:     {uri}, sweep run {state.mlflow_run_id} (its trials nested under it)"
    )
    lines += _browse_it(state.tracking_uri, state.experiment_id, state.mlflow_run_id)
    return "\n".join(lines)
