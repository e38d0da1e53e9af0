"""Shared helpers: build notebooks in memory, run the real command line, call the REST API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
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
    command, merged = _command_line(args, env, bin_dir)
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=merged
    )


def start_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`cli`, started in the background: for runs a test kills, interrupts or races."""
    command, merged = _command_line(args, env, None)
    return subprocess.Popen(
        command, cwd=cwd, env=merged, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, ended but not reaped yet, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run_at_once(commands: list[list[str]], cwd: Path, timeout: float) -> None:
    """Start every `jupyter-mlops` command together and assert that each one succeeds."""
    processes = [start_cli(*args, cwd=cwd) for args in commands]
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=timeout)
            assert process.returncode == 0, stderr
    finally:
        for process in processes:
            process.kill()  # a failed assertion must not leave runs behind


def _command_line(
    args: tuple[str, ...], env: dict[str, str] | None, bin_dir: Path | None
) -> tuple[list[str], dict[str, str]]:
    """The command and its environment, with no tracking URI leaking in from the caller's."""
    command = [str((bin_dir or Path(sys.executable).parent) / "jupyter-mlops"), *args]
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return command, {**inherited, **(env or {})}


@pytest.fixture(autouse=True)
def _mlflow_process_uri_reset():
    """A test that set MLflow's process-wide tracking URI (and failed before it put it back)
    must not send every later test's default store there."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        return
    from mlflow.tracking._tracking_service import utils

    if utils._tracking_uri is not None:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder to work in: mlflow.db and mlops-runs/ land here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def jp_server_config():
    """pytest-jupyter's servers load our extension."""
    return {"ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}}}


@pytest.fixture
def api(jp_fetch):
    """`await api(METHOD, *path, body=..., expect=STATUS)`: our REST API, the JSON it answers."""

    async def call(method, *path, body=None, expect=200, **kwargs):
        kwargs.setdefault("raise_error", False)
        response = await jp_fetch(
            "jupyter-mlops",
            *path,
            method=method,
            body=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
            allow_nonstandard_methods=True,
            **kwargs,
        )
        assert response.code == expect, response.body
        return json.loads(response.body) if response.body else None

    return call


async def wait_for(api, run_id, timeout=240, collection="runs"):
    """A run's (or, with collection="verifications", a verification's) view once it ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        view = await api("GET", collection, run_id)
        if view["status"] not in ("running", "queued"):
            return view
        await asyncio.sleep(0.5)
    raise AssertionError(f"{collection} {run_id} still running after {timeout} s")


def divergent_cells() -> tuple[nbformat.NotebookNode, ...]:
    """A notebook whose split computes something else: a `skip` cell changes what stage `a`
    hands on, which the notebook runs and the pipeline doesn't, so stage `b`'s `n` (cell 2)
    is 2 in the notebook and 1 in the pipeline."""
    return (
        code("x = [1]", "stage:a"),
        code("x.append(2)", "skip"),
        code("n = len(x)", "stage:b"),
        code("m = n * 2", "stage:c"),
    )
