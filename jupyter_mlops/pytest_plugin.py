"""`pytest --mlops NOTEBOOK_OR_DIR`: each tagged notebook a test module, each stage a test.

Stages run in dependency order through the ordinary runner (real kernels, MLflow logging),
one pipeline run per notebook. A failing stage reports its source cell and traceback like a
failing test; stages downstream of it are skipped, not failed. `--mlops-params FILE` gives
smoke parameters (a YAML mapping, as `jupyter-mlops run -f`).

Loaded by every pytest run through the `pytest11` entry point, so importing it costs nothing
and it does nothing unless `--mlops` is given.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from .run.runner import PipelineRunner


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlops", "jupyter-mlops pipelines")
    group.addoption(
        "--mlops",
        action="append",
        default=[],
        metavar="NOTEBOOK_OR_DIR",
        help="Run the tagged notebooks here as tests, one test per stage (repeatable).",
    )
    group.addoption(
        "--mlops-params",
        metavar="FILE",
        help="YAML file of parameter values (smoke parameters) for every pipeline.",
    )
    group.addoption(
        "--mlops-runs-dir",
        default=None,
        metavar="DIR",
        help="Where the pipelines' run folders go (default: mlops-runs/ at the project's root, "
        "as for `jupyter-mlops run`).",
    )


def pytest_configure(config: pytest.Config) -> None:
    paths = config.getoption("mlops")
    if paths and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = list(paths)  # collect the notebooks, not the project's test paths


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    roots = [Path(p).resolve() for p in parent.config.getoption("mlops")]
    if file_path.suffix != ".ipynb" or ".ipynb_checkpoints" in file_path.parts:
        return None
    resolved = file_path.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        return None
    return NotebookPipeline.from_parent(parent, path=file_path)


class StageFailure(Exception):
    """A stage failed; carries the runner's message and the kernel's traceback."""

    def __init__(self, message: str, traceback: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.traceback = traceback


class NotebookPipeline(pytest.File):
    """A tagged notebook: its stages are the tests, run as one pipeline run."""

    runner: PipelineRunner | None = None

    def collect(self) -> Any:
        from .pipeline import read_analyzed

        _, analysis = read_analyzed(self.path)
        if not analysis.stages and {d.code for d in analysis.errors} <= {"no-stages", "no-cells"}:
            return  # an untagged notebook in a folder: not a pipeline
        if analysis.errors:
            yield TaggingErrors.from_parent(self, name="tagging", analysis=analysis)
            return
        for stage in analysis.stages:
            yield StageItem.from_parent(self, name=stage.name)

    def pipeline(self) -> PipelineRunner:
        """The notebook's pipeline run, started on first use by its first stage."""
        if self.runner is None:
            self.runner = self._start()
        return self.runner

    def _start(self) -> PipelineRunner:
        from .parameters import read_values_file
        from .pipeline import prepare
        from .run.runner import RunOptions

        config = self.config
        given: dict[str, Any] = {}
        if config.getoption("mlops_params"):
            given = read_values_file(Path(config.getoption("mlops_params")))  # as `-f` reads
        runs_dir = config.getoption("mlops_runs_dir")
        options = RunOptions(runs_root=Path(runs_dir) if runs_dir else None)
        runner = prepare(self.path, options, given)
        runner.start()
        return runner

    def teardown(self) -> None:
        from .errors import MlopsError

        if self.runner is not None:
            # A failed stage was already reported by its own test: finishing only ends the
            # parent MLflow run (FAILED) and, on success, registers the models.
            with contextlib.suppress(MlopsError):
                self.runner.finish()


class TaggingErrors(pytest.Item):
    def __init__(self, *, analysis: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.analysis = analysis

    def runtest(self) -> None:
        lines = [str(d) for d in self.analysis.errors]
        raise StageFailure("the notebook's tags have errors:\n" + "\n".join(lines), None)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, "tagging"


class StageItem(pytest.Item):
    """One stage of a notebook's pipeline."""

    def runtest(self) -> None:
        from .run.runstate import CACHED, DONE

        succeeded = {DONE, CACHED}  # cached: unchanged since a run where it passed

        pipeline = self.parent
        assert isinstance(pipeline, NotebookPipeline)
        runner = pipeline.pipeline()
        stage = runner.bundle.stage(self.name)
        states = {s.name: s for s in runner.state.state.stages}
        blocked = [u for u in stage.upstream if states[u].status not in succeeded]
        if blocked:
            pytest.skip(f"upstream stage `{blocked[0]}` did not succeed")
        runner.run_stage(self.name)
        state = states[self.name]
        if state.status not in succeeded:
            error = state.error
            message = error.message if error else f"stage `{self.name}` {state.status}"
            raise StageFailure(message, error.traceback if error else None)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        error = excinfo.value
        if isinstance(error, StageFailure):
            return f"{error.message}\n\n{error.traceback or ''}".rstrip()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name  # pytest shows `notebook.ipynb::stage`
