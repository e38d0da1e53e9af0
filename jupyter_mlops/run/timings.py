"""Where a stage's time went, from the run's own clock: `jupyter-mlops run --timings`.

Papermill stamps each executed cell with its start and end; the runner knows when it asked
for the kernel, when it opened the stage's gate, when papermill was done and the kernel asked
to end, and when the stage was recorded. Together they split a stage into the parts a user
can act on: the kernel's start, the setup cells (and the generated cells that prepare the
stage), waiting at the gate for upstream stages (pre-started kernels only), loading inputs,
the stage's own cells, saving outputs (with its models), papermill's work after the last
cell ("shutdown": writing the executed notebook, asking the kernel to end), and the runner's
logging before the next stages may start (its inputs and models linked in MLflow). The
kernel's exit, the notebook's HTML and the end of the stage's MLflow run come after, off the
next stages' path, and are not counted.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import nbformat

# The parts, in the order a stage goes through them (the columns of --timings).
PARTS = ("kernel", "setup", "waited", "inputs", "cells", "outputs", "shutdown", "logging")
_SETUP_KINDS = {"parameters", "definitions", "replay"}
_INPUT_KINDS = {"load-inputs", "load-early-inputs"}


def stage_timings(
    executed: Path, launched: float, opened: float | None, ended: float, finished: float
) -> dict[str, float]:
    """A stage's time by part, in seconds; {} when its executed notebook can't be read.

    `launched`: the kernel was asked for; `opened`: its gate opened (None: it ran at once);
    `ended`: papermill was done and the kernel asked to end; `finished`: the stage was
    recorded.
    """
    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return {}
    spans = [span for cell in nb.cells if cell.cell_type == "code" and (span := _span(cell))]
    if not spans:
        return {}
    parts = dict.fromkeys(PARTS, 0.0)
    parts["kernel"] = spans[0][1] - launched
    for kind, start, end in spans:
        if kind in _INPUT_KINDS and opened is not None:
            waited = max(0.0, min(end, opened) - start)
            parts["waited"] += waited
            parts["inputs"] += end - start - waited
        elif kind in _INPUT_KINDS:
            parts["inputs"] += end - start
        elif kind == "stage":
            parts["cells"] += end - start
        elif kind == "save-outputs":
            parts["outputs"] += end - start
        else:  # the parameters, the setup cells, definitions and replayed settings
            parts["setup"] += end - start
    last = max(end for _, _, end in spans)
    parts["shutdown"] = ended - last
    parts["logging"] = finished - ended
    return {part: round(max(0.0, seconds), 3) for part, seconds in parts.items()}


def _span(cell: Any) -> tuple[str, float, float] | None:
    """The cell's kind (its role, or what the generated cell does) and when it ran; None
    for a cell that didn't run."""
    mlops = cell.metadata.get("jupyter_mlops", {})
    kind = mlops.get("generated") or mlops.get("role") or "setup"  # papermill's parameters
    timing = cell.metadata.get("papermill", {})
    start, end = _time(timing.get("start_time")), _time(timing.get("end_time"))
    if start is None or end is None:
        return None
    return kind, start, end


def _time(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
