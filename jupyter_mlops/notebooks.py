"""Reading the user's notebook: never modified, and every way it can be unreadable explained."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .errors import NotebookError
from .files import sha256_bytes


@dataclass(frozen=True)
class SourceNotebook:
    """A notebook as read from disk (or received from the browser), with its identity."""

    nb: Any  # nbformat.NotebookNode, version 4
    path: Path | None
    sha256: str


def read_notebook(path: str | Path) -> SourceNotebook:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NotebookError(f"{path} is a directory, not a notebook") from None
    except OSError as error:
        raise NotebookError(f"{path}: can't read it ({error.strerror})") from None
    return SourceNotebook(parse_notebook(raw, str(path)), path, sha256_bytes(raw))


def parse_notebook(raw: bytes | str | dict[str, Any], name: str = "notebook") -> Any:
    """Parse notebook JSON into an nbformat 4 node; older formats are upgraded in memory."""
    if isinstance(raw, dict):
        content = raw
    else:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            raise NotebookError(f"{name} is empty: it is not a notebook")
        try:
            content = json.loads(text)
        except json.JSONDecodeError as error:
            raise NotebookError(
                f"{name} is not valid notebook JSON (line {error.lineno}, column {error.colno}: "
                f"{error.msg}); was it saved completely?"
            ) from None
    if not isinstance(content, dict) or "nbformat" not in content:
        raise NotebookError(f"{name} is JSON but not a Jupyter notebook (no `nbformat` field)")
    try:
        nb = nbformat.reads(json.dumps(content), as_version=4)
    except Exception as error:  # nbformat raises many kinds for malformed documents
        raise NotebookError(f"{name} is not a notebook nbformat can read: {error}") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{name} has no list of cells")
    return nb
