"""The one entry point from a notebook (or a bundle) to a run that is ready to start.

Every face starts a run through here: the command line (``run``, ``verify``), the Jupyter
server and the widget (``run.child.prepare_run``), the pytest plugin and a scheduler's
``stage`` task (``run.tasks``; ``begin`` only checks parameters, it runs nothing). So the
checks a run request gets are the same wherever it comes from, in the same order, as
papermill's own command line only calls ``execute_notebook``:

1. the notebook is read and analysed, and a tagging error stops everything (a bundle is read,
   and a warning says when its notebook changed since it was converted);
2. parameter values (a values file, then ``-p NAME VALUE`` strings) are checked against their
   declared types;
3. the run gets its id and its folder, ``<runs root>/<pipeline>/<run id>/``, with the bundle
   of a notebook in its ``bundle/`` subfolder;
4. the runner checks the stages asked for and finds the outputs ``--from``/``--only`` reuse.

Nothing is written until the runner starts: it connects to the tracking store first, then
writes the bundle of a notebook, so a bad request or an unreachable server leaves no files.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .analysis import Analysis, Diagnostic, analyze_notebook
from .bundle import Bundle, bundle_for, raise_for_errors, read_bundle, write_bundle
from .errors import MlopsError
from .notebooks import SourceNotebook, read_notebook
from .parameters import resolve
from .places import project_runs_dir
from .run.runner import Listener, PipelineRunner, RunOptions, new_run_id
from .run.runstate import RUN_BUNDLE, run_folder


@dataclass
class Pipeline:
    """A checked notebook, or a bundle: what a run is made from."""

    bundle: Bundle | None  # a bundle given as such; None for a notebook (one per run)
    source: SourceNotebook | None = None
    analysis: Analysis | None = None
    warnings: list[str] = field(default_factory=list)  # told before it runs, not recorded

    @property
    def name(self) -> str:
        if self.analysis is not None:
            return self.analysis.settings.pipeline
        assert self.bundle is not None
        return self.bundle.name

    @property
    def location(self) -> Path:
        """The notebook's path, or the bundle's folder: where its project is looked for."""
        if self.source is not None and self.source.path is not None:
            return self.source.path
        if self.bundle is not None:
            return self.bundle.root
        return Path.cwd()  # a notebook received from the browser, not saved anywhere

    def bundle_in(self, folder: Path) -> Bundle:
        """The bundle a run in `folder` runs: the given one, or the notebook's, laid out in
        the run's ``bundle/`` subfolder (described here, written when the run starts)."""
        if self.bundle is not None:
            return self.bundle
        assert self.source is not None and self.analysis is not None
        return bundle_for(self.source, self.analysis, folder / RUN_BUNDLE)

    def code(self) -> tuple[list[str], dict[str, list[str]]]:
        """The code of its setup cells, and of each stage's cells, for the zygote to import
        ahead what the stages that run import (run/zygote.py)."""
        if self.source is not None and self.analysis is not None:
            cells = self.source.nb.cells
            return (
                [str(cells[i].get("source", "")) for i in self.analysis.setup_cells],
                {
                    stage.name: [str(cells[i].get("source", "")) for i in stage.cells]
                    for stage in self.analysis.stages
                },
            )
        assert self.bundle is not None
        setup: dict[str, None] = {}
        staged: dict[str, list[str]] = {}
        for stage in self.bundle.stages:
            staged[stage.name] = []
            with contextlib.suppress(OSError, ValueError):
                nb = nbformat.read(self.bundle.notebook_path(stage.name), as_version=4)
                for cell in nb.cells:
                    role = cell.metadata.get("jupyter_mlops", {}).get("role")
                    if role == "setup":
                        setup[cell.source] = None
                    elif role == "stage":
                        staged[stage.name].append(cell.source)
        return list(setup), staged

    def write(self, bundle: Bundle) -> None:
        """Write a notebook's bundle where `bundle_in` laid it out (a given bundle exists)."""
        if self.source is not None and self.analysis is not None:
            write_bundle(self.source, self.analysis, bundle.root)


def read_analyzed(notebook: Path) -> tuple[SourceNotebook, Analysis]:
    """A notebook file and its analysis (tagging errors included, not raised)."""
    source = read_notebook(notebook)
    return source, analyze_notebook(source.nb, notebook)


@dataclass
class Converted:
    """A bundle written by `convert`."""

    analysis: Analysis
    bundle: Bundle

    @property
    def files(self) -> list[str]:
        """The bundle's files, relative to its folder."""
        return ["pipeline.yaml", "params.yaml", "requirements.txt", *self.bundle.notebooks.values()]


def convert(
    notebook: Path, out: Path, warn: Callable[[list[Diagnostic]], None] | None = None
) -> Converted:
    """Write a notebook's bundle into `out` (`warn` hears the analysis' warnings first).

    Raises NotebookError for tagging errors, BadInput when the folder can't take the bundle.
    """
    source, analysis = read_analyzed(notebook)
    if warn is not None:
        warn(analysis.warnings)
    return Converted(analysis, write_bundle(source, analysis, out))


def open_pipeline(target: Path, warn: Callable[[list[str]], None] | None = None) -> Pipeline:
    """Read and check a notebook (``.ipynb``) or a bundle's ``pipeline.yaml``.

    `warn` hears the warnings (the analysis', a stale bundle's) before anything can refuse
    the run, so a user sees them with the error. Raises NotebookError for a notebook with
    tagging errors, BadInput for anything unreadable.
    """
    if target.suffix == ".ipynb":
        source, analysis = read_analyzed(target)
        pipeline = Pipeline(None, source, analysis, [str(d) for d in analysis.warnings])
    else:
        bundle = read_bundle(target)
        pipeline = Pipeline(bundle, warnings=_stale(bundle))
    if warn is not None and pipeline.warnings:
        warn(pipeline.warnings)
    if pipeline.analysis is not None:
        raise_for_errors(pipeline.analysis)
    return pipeline


def prepare(
    target: Path | Pipeline,
    options: RunOptions,
    values: Mapping[str, Any] | None = None,
    overrides: Sequence[tuple[str, str]] = (),
    listeners: list[Listener] | None = None,
    warn: Callable[[list[str]], None] | None = None,
) -> PipelineRunner:
    """A checked runner for `target`: parameters resolved, run id and folder chosen.

    `values` are parameter values as read from a file or sent as JSON (typed), `overrides`
    ``-p NAME VALUE`` strings; both are checked against the declared types, overrides last.
    `options.parameters` and `options.run_id` are filled in here; `warn` is as for
    `open_pipeline`. Raises BadInput.
    """
    pipeline = target if isinstance(target, Pipeline) else open_pipeline(target, warn)
    specs = pipeline.analysis.parameters if pipeline.analysis else pipeline.bundle.parameters  # type: ignore[union-attr]
    resolved = resolve(specs, dict(values or {}), list(overrides))
    run_id = options.run_id or new_run_id()
    options = dataclasses.replace(options, parameters=resolved, run_id=run_id)
    if options.runs_root is None:  # the project's (`places`): its git top level, else here
        options = dataclasses.replace(options, runs_root=project_runs_dir(pipeline.location))
    assert options.runs_root is not None
    bundle = pipeline.bundle_in(run_folder(options.runs_root, pipeline.name, run_id))
    return PipelineRunner(
        bundle, options, listeners, write_bundle=pipeline.write, code=pipeline.code()
    )


def _stale(bundle: Bundle) -> list[str]:
    """A warning when the bundle's notebook changed since it was converted."""
    path = bundle.source_path
    if path is None or not path.is_file():
        return []
    try:
        current = read_notebook(path)
    except MlopsError:  # an unreadable notebook beside a bundle doesn't stop the bundle
        return []
    if current.sha256 == bundle.source_sha256:
        return []
    return [
        f"{path.name} changed since this bundle was converted; run `jupyter-mlops convert` "
        "again to pick up the changes"
    ]
