"""What the server's worker processes do (see `worker`): each job reads, analyses and
perhaps writes, and returns plain data.

Top-level functions with plain arguments and results, so that they cross into a spawned
process and back. They import nothing of the server (tornado, jupyter_server) themselves;
a spawned worker still imports the script that started the server (`jupyter-lab`), as
multiprocessing does, which is why workers are kept warm between requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analysis import analyze_notebook
from ..bundle import raise_for_errors
from ..notebooks import parse_notebook, read_notebook
from ..pipeline import convert as convert_notebook
from ..pipeline import read_analyzed


def analyze(notebook: dict[str, Any] | None, path: Path | None, name: str) -> dict[str, Any]:
    """The analysis of a notebook sent as JSON, or of the file at `path`."""
    nb = parse_notebook(notebook, name) if notebook is not None else read_notebook(path).nb  # type: ignore[arg-type]
    return analyze_notebook(nb, name).to_dict()


def convert(notebook: Path, output: Path) -> tuple[list[str], dict[str, Any]]:
    """Write the bundle; its files (relative to `output`) and the analysis."""
    converted = convert_notebook(notebook, output)
    return converted.files, converted.analysis.to_dict()


def check_tagging(notebook: Path) -> None:
    """Raise BadInput when the notebook can't be read or its tagging has errors."""
    raise_for_errors(read_analyzed(notebook)[1])
