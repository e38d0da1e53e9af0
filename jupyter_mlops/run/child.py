"""Starting a run in a child process, as the Jupyter server and the widget panel do.

The request is checked here with the same code the command uses (tagging, parameter types,
stage names, reusable outputs), so a bad request is refused before any process starts, and
the child is simply the `jupyter-mlops run` command, behaving exactly as in a terminal.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import analyze_notebook
from ..bundle import bundle_for, raise_for_errors
from ..notebooks import read_notebook
from ..parameters import resolve, values_json_text
from .runner import PipelineRunner, RunOptions, new_run_id

RUNNER_LOG = "runner.log"


@dataclass(frozen=True)
class PreparedRun:
    run_id: str
    folder: Path  # the run folder; its run.json appears once the child has started
    pipeline: str
    command: list[str]
    tracking_uri: str = ""  # where it logs: the store to tell if its runner dies

    @property
    def log(self) -> Path:
        return self.folder / RUNNER_LOG


def prepare_run(
    notebook: Path,
    parameters: dict[str, Any],
    runs_dir: Path,
    tracking_uri: str,
    jobs: int = 1,
    from_stage: str | None = None,
    only: list[str] | None = None,
) -> PreparedRun:
    """Check a run request and return the command that runs it. Raises BadInput."""
    source = read_notebook(notebook)
    analysis = analyze_notebook(source.nb, notebook)
    raise_for_errors(analysis)
    values = resolve(analysis.parameters, parameters)
    run_id = new_run_id()
    folder = runs_dir / analysis.settings.pipeline / run_id
    options = RunOptions(
        parameters=values,
        jobs=jobs,
        from_stage=from_stage,
        only=list(only or []),
        runs_root=runs_dir,
        run_id=run_id,
    )
    PipelineRunner(bundle_for(source, analysis, folder / "bundle"), options)  # checks only
    folder.mkdir(parents=True)
    request = folder / "parameters.json"  # JSON, as checked: `run -f x.json` reads JSON
    request.write_text(values_json_text(values), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "jupyter_mlops",
        "run",
        str(notebook),
        "--run-id",
        run_id,
        "--runs-dir",
        str(runs_dir),
        "--tracking-uri",
        tracking_uri,
        "-f",
        str(request),
        "--jobs",
        str(jobs),
    ]
    if from_stage:
        command += ["--from", from_stage]
    for stage in options.only:
        command += ["--only", stage]
    return PreparedRun(run_id, folder, analysis.settings.pipeline, command, tracking_uri)
