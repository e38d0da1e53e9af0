"""Colours and symbols of the panel.

Stage colours are the JupyterLab sidebar's (``labextension/src/palette.ts``), picked the
same way, by the stage's position in run order, so a stage looks the same in the sidebar,
on its cells and in this panel. Keep the two lists in step.
"""

from __future__ import annotations

from ..run.runstate import CACHED, CANCELLED, DONE, FAILED, QUEUED, RUNNING, SKIPPED
from ..status_symbols import STATUS_SYMBOLS

STAGE_COLORS = (
    "#3566a8",  # blue
    "#b8541a",  # orange
    "#2f7d52",  # green
    "#a8326f",  # magenta
    "#6848b8",  # violet
    "#23777a",  # teal
    "#9b2c2c",  # red
    "#7d6418",  # ochre
)

_STATUS_COLORS = {
    QUEUED: "#757575",
    RUNNING: "#1565c0",
    DONE: "#2e7d32",
    CACHED: "#3566a8",
    FAILED: "#c62828",
    SKIPPED: "#b26a00",
    CANCELLED: "#b26a00",
}
# stage status -> (symbol, text colour); the symbols are the terminal's (status_symbols.py)
STATUS_STYLE = {status: (STATUS_SYMBOLS[status], color) for status, color in _STATUS_COLORS.items()}

ERROR_COLOR = "#c62828"
WARNING_COLOR = "#b26a00"
SUCCESS_COLOR = "#2e7d32"


def stage_color(position: int) -> str:
    return STAGE_COLORS[position % len(STAGE_COLORS)]
