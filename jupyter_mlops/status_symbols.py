"""The symbol of each stage status: one character that keeps a status readable without colour.

The terminal's progress lines (:mod:`jupyter_mlops.report`) and the notebook panel's stage
list (:mod:`jupyter_mlops.widgets.palette`) show the same symbols, each in its own colours, so
a status reads alike wherever a run is watched. Kept apart from both so that neither imports
the other (the CLI needs no widgets; the widget needs no click).
"""

from __future__ import annotations

from .run.runstate import CACHED, CANCELLED, DONE, FAILED, QUEUED, RUNNING, SKIPPED

STATUS_SYMBOLS = {
    QUEUED: "○",
    RUNNING: "▸",
    DONE: "✓",
    CACHED: "=",
    FAILED: "✗",
    SKIPPED: "-",
    CANCELLED: "■",
}
