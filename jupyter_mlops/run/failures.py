"""Turning a failed stage execution into one clear paragraph that points at the source cell.

Papermill reports the index of the failing cell in the *stage* notebook; users know their
own notebook. Every cell we copy into a stage notebook carries its source index in
``metadata.jupyter_mlops.source_cell``, and the executed notebook on disk tells which cell
raised (an ``error`` output) or was running when the kernel died.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from ..artifacts import UNHANDABLE_MIME
from ..dataflow import analyze_code
from .runstate import StageError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
_HINTS = {
    "SystemExit": " (sys.exit() ends a stage before it hands its values on, so the stage "
    "fails whatever the exit code; let the code reach its end instead)",
}
DISK_FULL = "No space left on device"
DISK_FULL_HINT = (
    " (the disk is full: free some space, or put the runs and the artifact store on a "
    "bigger disk with --runs-dir and --artifact-store)"
)


def _hint(ename: str, evalue: str) -> str:
    return DISK_FULL_HINT if DISK_FULL in evalue else _HINTS.get(ename, "")


_GENERATED = {
    "load-inputs": "while loading its inputs from upstream stages",
    "load-early-inputs": "while loading the inputs its functions and classes need",
    "definitions": "while defining the functions and classes of earlier stages it uses",
    "replay": "while making again the settings earlier stages made",
    "save-outputs": "while handing over its outputs",
    "parameters": "in its parameters cell",
}


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def describe_failure(
    stage: str,
    executed: Path,
    source_name: str,
    reason: str | None = None,
) -> StageError:
    """The error of a failed stage, from its executed notebook.

    `reason` overrides the exception text when the kernel died or the stage timed out, in
    which case the cell is the one that was running.
    """
    cells, cell, output = _failing_cell(executed)
    where = _where(cell, source_name)
    source_cell = _source_cell(cell)
    if output is not None and reason is None:
        ename = output.get("ename", "Error")
        exception = f"{ename}: {output.get('evalue', '')}".rstrip(": ")
        traceback = strip_ansi("\n".join(output.get("traceback", [])))
        match = _CELL_LINE.search(traceback)
        line = int(match.group(1)) if match and source_cell is not None else None
        at_line = f", line {line}" if line else ""
        unsaved = _unhandable_variable(cell) if source_cell is None else None
        setter = _last_setter(cells, unsaved) if unsaved else None
        if unsaved and setter is not None:  # the user's cell that made the value, not ours
            source_cell = setter
            at_line = f" (`{unsaved}` is set in cell {setter} of {source_name})"
        hint = _hint(ename, str(output.get("evalue", "")))
        message = f"stage `{stage}` failed {where}{at_line}: {exception}{hint}"
        return StageError(message, source_cell, line, exception, traceback)
    exception = reason or "the stage stopped without reporting an error"
    return StageError(f"stage `{stage}` failed {where}: {exception}", source_cell, None, exception)


def _failing_cell(executed: Path) -> tuple[list[Any], Any, Any]:
    """The executed cells; the cell that raised and its error output, else the cell that
    was running.

    When the kernel dies or is killed, papermill marks every cell "completed" as it gives
    up, so the running cell is the last one it started (cells it never reached have no
    start time).
    """
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:  # not written yet (the kernel never started) or unreadable
        return [], None, None
    running = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return nb.cells, cell, output
        if cell.metadata.get("papermill", {}).get("start_time"):
            running = cell
    return nb.cells, running, None


def _unhandable_variable(cell: Any) -> str | None:
    """The variable a stage couldn't hand on, from the facts the stage kernel showed as an
    output of the failing cell (runtime.save_outputs), if it showed any."""
    for output in cell.get("outputs", []):
        facts = output.get("data", {}).get(UNHANDABLE_MIME)
        if isinstance(facts, dict) and isinstance(facts.get("variable"), str):
            return facts["variable"]
    return None


def _last_setter(cells: list[Any], variable: str) -> int | None:
    """The source index of the last copied cell that binds or changes `variable`."""
    found = None
    for cell in cells:
        index = _source_cell(cell)
        if index is not None and variable in analyze_code(cell.source).touched:
            found = index
    return found


def _source_cell(cell: Any) -> int | None:
    if cell is None:
        return None
    return cell.metadata.get("jupyter_mlops", {}).get("source_cell")


def _where(cell: Any, source_name: str) -> str:
    if cell is None:
        return "before running any cell"
    index = _source_cell(cell)
    if index is not None:
        return f"in cell {index} of {source_name}"
    generated = cell.metadata.get("jupyter_mlops", {}).get("generated")
    return _GENERATED.get(generated, "in a cell papermill added")
