"""Shared helpers: build notebooks in memory and run the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

pytest_plugins = ["pytest_jupyter.jupyter_server", "pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "example_notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def code(source: str, *tags: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


def md(source: str) -> nbformat.NotebookNode:
    return new_markdown_cell(source)


def notebook(*cells: nbformat.NotebookNode, **settings: object) -> nbformat.NotebookNode:
    metadata: dict[str, object] = {"kernelspec": dict(KERNELSPEC)}
    if settings:
        metadata["jupyter_mlops"] = settings
    nb = new_notebook(cells=list(cells), metadata=metadata)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"c{index}"
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def cli(
    *args: str,
    cwd: Path,
    timeout: float = 600,
    env: dict[str, str] | None = None,
    bin_dir: Path | None = None,
):
    """Run `jupyter-mlops ARGS` as a user would, in `cwd` (from `bin_dir`: another venv)."""
    command = [str((bin_dir or Path(sys.executable).parent) / "jupyter-mlops"), *args]
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    merged = {**inherited, **(env or {})}
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=merged
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder to work in: mlflow.db and mlops-runs/ land here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path
