"""Reading the user's notebook: never modified, and every way it can be unreadable explained."""

from __future__ import annotations

import json
import warnings
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
        text = _text(raw, name) if isinstance(raw, bytes) else raw
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
    _check_shape(content, name)
    try:
        # Not nbformat.reads: it checks the whole document against the JSON schema on every
        # read, which was most of the time of an `analyze` request, only to warn (missing
        # cell ids...) around our own messages; the upgrade from older formats still warns.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            major, minor = nbformat.reader.get_version(content)
            if major not in nbformat.versions:
                raise nbformat.NBFormatError(f"Unsupported nbformat version {major}")
            nb = nbformat.versions[major].to_notebook_json(content, minor=minor)
            nb = nbformat.convert(nb, 4)
    except Exception as error:  # nbformat raises many kinds for malformed documents
        raise NotebookError(f"{name} is not a notebook nbformat can read: {error}") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookError(f"{name} has no list of cells")
    return nb


def _text(raw: bytes, name: str) -> str:
    """Notebooks are UTF-8. A byte-order mark (some Windows editors add one) is harmless; other
    bytes are refused rather than replaced, which would silently change the user's code."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise NotebookError(
            f"{name} is not UTF-8 text (byte {error.start}, line {line}); Jupyter saves "
            "notebooks as UTF-8: re-save it from JupyterLab or convert its encoding"
        ) from None


def _check_shape(content: dict[str, Any], name: str) -> None:
    """The structure nbformat's upgrade code relies on, explained where it goes wrong (its own
    errors for these are Python internals such as "pop expected at most 1 argument")."""
    version = content["nbformat"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise NotebookError(f"{name}: `nbformat` must be a number like 4, not {version!r}")
    if not isinstance(content.get("metadata", {}), dict):
        raise NotebookError(f"{name}: the notebook's `metadata` must be a JSON object")
    if version != 4 or not isinstance(content.get("cells"), list):
        return
    for index, cell in enumerate(content["cells"]):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise NotebookError(
                f"{name}: cell {index} is not a notebook cell (a JSON object with a `cell_type`)"
            )
        if not isinstance(cell.get("metadata", {}), dict):
            raise NotebookError(f"{name}: the `metadata` of cell {index} must be a JSON object")
