"""The stages in run order: colour, cells, the variables they take and give, and progress.

One grid row per stage, so the analysis (what a stage is) and the run (how it is doing) sit
side by side: the status and duration columns are what a run updates.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets

from ..analysis import Analysis, Stage
from ..run.runstate import CACHED, RunState, StageState
from .messages import LINE
from .palette import STATUS_STYLE, stage_color

COLUMNS = ("stage", "cells", "data flow", "status", "time")


@dataclass
class StageRow:
    name: str
    badge: widgets.Label
    cells: widgets.Label
    flow: widgets.HTML
    status: widgets.Label  # "✓ done": symbol and status word
    duration: widgets.Label  # "3.2 s" once the stage has started

    @property
    def widgets(self) -> list[widgets.Widget]:
        return [self.badge, self.cells, self.flow, self.status, self.duration]

    def show(self, status: str | None, seconds: float | None = None, note: str = "") -> None:
        if status is None:
            self.status.value = ""
        else:
            symbol, colour = STATUS_STYLE.get(status, ("?", "inherit"))
            self.status.value = f"{symbol} {status}"
            self.status.style.text_color = colour
        self.duration.value = f"{seconds:.1f} s" if seconds is not None else ""
        self.status.tooltip = note or None


class StageTable:
    def __init__(self, analysis: Analysis) -> None:
        self.rows = {
            stage.name: _row(stage, position) for position, stage in enumerate(analysis.stages)
        }
        header = [widgets.HTML(f"<b>{title}</b>") for title in COLUMNS]
        cells = header + [w for row in self.rows.values() for w in row.widgets]
        self.widget = widgets.GridBox(
            cells,
            layout=widgets.Layout(
                grid_template_columns="max-content max-content 1fr max-content max-content",
                grid_gap="4px 14px",
                align_items="center",
            ),
        )
        if not self.rows:
            self.widget = widgets.HTML("<i>no stages: tag a cell <code>stage:NAME</code></i>")

    def reset(self, status: str | None) -> None:
        for row in self.rows.values():
            row.show(status)

    def show(self, state: RunState) -> None:
        for stage in state.stages:
            row = self.rows.get(stage.name)
            if row is not None:
                row.show(stage.status, _seconds(stage), _note(stage))


def _row(stage: Stage, position: int) -> StageRow:
    badge = widgets.Label(
        stage.name,
        style={"background": stage_color(position), "text_color": "white", "font_weight": "bold"},
        layout=widgets.Layout(padding="0 8px"),
    )
    cells = widgets.Label(("cell " if len(stage.cells) == 1 else "cells ") + _join(stage.cells))
    return StageRow(
        stage.name, badge, cells, widgets.HTML(_flow(stage)), widgets.Label(), widgets.Label()
    )


def _flow(stage: Stage) -> str:
    """What the stage takes (and from which stage), gives, reads as parameters, logs."""
    parts = []
    if stage.inputs:
        takes = ", ".join(
            f"<code>{html.escape(v)}</code> ({html.escape(p)})" for v, p in stage.inputs.items()
        )
        parts.append(f"takes {takes}")
    for label, names in (
        ("gives", stage.outputs),
        ("parameters", stage.parameters),
        ("model", list(stage.models)),
        ("metrics", stage.metrics),
        ("after", stage.after),
    ):
        if names:
            parts.append(f"{label} " + ", ".join(f"<code>{html.escape(n)}</code>" for n in names))
    text = " · ".join(parts) or '<span style="opacity:0.6">takes and gives nothing</span>'
    return f'<div style="{LINE}">{text}</div>'


def _seconds(stage: StageState) -> float | None:
    return None if stage.status == CACHED else stage.duration  # None until it starts


def _note(stage: StageState) -> str:
    if stage.status == CACHED and stage.cached_from:
        return f"outputs reused from MLflow run {stage.cached_from}"
    return stage.error.message if stage.error else ""


def _join(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)
