"""PipelinePanel: a notebook's pipeline, its parameters and its runs, as one ipywidgets box.

It is a view over the core, like the CLI and the server: ``analyze_notebook`` gives what it
shows, ``prepare_run`` checks a run request and builds the `jupyter-mlops run` command, and
the run's run.json is its progress. Runs are child processes followed from a thread
(:mod:`.watch`), so the kernel stays free while a pipeline runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from ..analysis import Analysis, analyze_notebook
from ..errors import MlopsError
from ..notebooks import SourceNotebook, read_notebook
from ..places import project_runs_dir
from ..run.child import RunEnd, prepare_run
from ..run.runstate import QUEUED, RUN_RUNNING, RUN_SUCCEEDED, RunState
from ..run.scheduling import default_jobs
from ..tracking import MlflowLinks, resolve_tracking_uri
from . import messages
from .form import ParameterForm
from .locate import this_notebook
from .stages import StageTable
from .watch import RunProcess

IDLE = "idle"
WHOLE_PIPELINE = "all stages"


class PipelinePanel(widgets.VBox):
    """The pipeline of a tagged notebook: stages, data flow, parameters, Run and Cancel.

    ``status`` is "idle", "running", "succeeded", "failed" or "cancelled" (a traitlet:
    ``panel.observe(callback, "status")`` works; callbacks may come from the run's thread);
    ``result`` is the last finished run's state; ``error`` why the last run or request
    failed; ``wait()`` blocks until the current run ends.

    The notebook is read from disk: save it in the editor before clicking Run.
    """

    status = Unicode(IDLE)  # not synced to the browser: read or observe it from Python

    def __init__(
        self,
        notebook: str | Path,
        *,
        runs_dir: str | Path | None = None,
        tracking_uri: str | None = None,
        mlflow_ui_url: str | None = None,
        jobs: int | None = None,
    ) -> None:
        """Analyse `notebook` (raises NotebookError when it can't be read).

        Runs go to `runs_dir` and log to `tracking_uri`; by default (`places`) to
        ``mlops-runs/`` and ``mlflow.db`` at the project's root, the top level of the
        notebook's git repository (else the kernel's working folder), as from the command
        line; an explicit MLFLOW_TRACKING_URI or `mlflow.set_tracking_uri` wins.
        `mlflow_ui_url` turns MLflow run ids into links; an HTTP tracking server serves its
        own UI, so it is the default for one. `jobs` stages run
        at once; by default as many as the command's ``--jobs``: the machine's cores.
        """
        super().__init__()
        self.notebook = Path(notebook).expanduser().absolute()
        self.runs_dir = Path(runs_dir).absolute() if runs_dir else project_runs_dir(self.notebook)
        self.tracking_uri = resolve_tracking_uri(tracking_uri, near=self.notebook)
        if mlflow_ui_url is None and self.tracking_uri.startswith(("http://", "https://")):
            mlflow_ui_url = self.tracking_uri
        self.links = MlflowLinks(mlflow_ui_url)
        self.jobs = default_jobs() if jobs is None else jobs
        self.result: RunState | None = None
        self.error: str | None = None
        self._run: RunProcess | None = None

        self.header = widgets.HTML()
        self.diagnostics = widgets.HTML()
        compact = {"width": "auto", "padding": "0 14px"}
        self.run_button = widgets.Button(
            description="Run",
            icon="play",
            button_style="primary",
            tooltip="Run the pipeline as saved on disk",
            layout=compact,
        )
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning", disabled=True, layout=compact
        )
        self.reload_button = widgets.Button(
            description="Reload",
            icon="refresh",
            tooltip="Read the saved notebook again",
            layout=compact,
        )
        self.from_stage = widgets.Dropdown(
            description="from",
            tooltip="Run this stage and what depends on it, reusing earlier outputs",
            style={"description_width": "initial"},
            layout={"width": "14em"},
        )
        self.status_label = widgets.Label(IDLE)
        self.outcome = widgets.HTML()
        self.run_button.on_click(lambda _button: self._start())
        self.cancel_button.on_click(lambda _button: self.cancel())
        self.reload_button.on_click(lambda _button: self.reload())
        self.add_class("jupyter-mlops-panel")
        self.layout = widgets.Layout(padding="6px", border="1px solid #9e9e9e80")
        self._show_notebook(read_notebook(self.notebook), keep=None)

    @classmethod
    def this_notebook(cls, **options: Any) -> PipelinePanel:
        """A panel for the notebook this kernel runs (JupyterLab, Notebook 7, VS Code)."""
        return cls(this_notebook(), **options)

    # --- what Python sees ---------------------------------------------------------------

    @property
    def analysis(self) -> Analysis:
        return self._analysis

    @property
    def parameters(self) -> dict[str, Any]:
        """The form's values, checked against the parameter types. Raises BadInput."""
        return self.form.values()

    def wait(self, timeout: float | None = None) -> RunState | None:
        """Block until the current run ends; its final state (None if it never began).

        Raises TimeoutError if it still runs after `timeout` seconds.
        """
        run = self._run
        if run is not None and not run.finished.wait(timeout):
            raise TimeoutError(f"run {run.prepared.run_id} still running after {timeout} s")
        return self.result

    def cancel(self) -> None:
        """Stop the current run: its kernels are killed and its MLflow runs marked FAILED."""
        if self._run is not None and self.status == RUN_RUNNING:
            self.status_label.value = "cancelling…"
            self._run.cancel()

    def reload(self) -> None:
        """Read the notebook again (after editing its tags); typed parameter values stay."""
        if self.status == RUN_RUNNING:
            return
        try:
            self._show_notebook(read_notebook(self.notebook), keep=self.form)
        except MlopsError as error:
            self.outcome.value = messages.refusal_html(str(error))

    # --- the views ----------------------------------------------------------------------

    def _show_notebook(self, source: SourceNotebook, keep: ParameterForm | None) -> None:
        self._source_sha256 = source.sha256
        self._analysis = analysis = analyze_notebook(source.nb, self.notebook)
        self.header.value = messages.header_html(self.notebook, analysis, self.tracking_uri)
        self.diagnostics.value = messages.diagnostics_html(analysis.diagnostics)
        self.form = ParameterForm(analysis.parameters, keep=keep)
        self.stages = StageTable(analysis)
        self.from_stage.options = [(WHOLE_PIPELINE, None)] + [
            (s.name, s.name) for s in analysis.stages
        ]
        self.from_stage.index = 0  # by index: a Dropdown's value None means "none selected"
        self.run_button.disabled = bool(analysis.errors)
        self.children = [
            self.header,
            self.diagnostics,
            _section("Parameters"),
            self.form.widget,
            _section("Stages"),
            self.stages.widget,
            widgets.HBox(
                [
                    self.run_button,
                    self.cancel_button,
                    self.reload_button,
                    self.from_stage,
                    self.status_label,
                ],
                layout=widgets.Layout(align_items="center", margin="8px 0 0 0", grid_gap="6px"),
            ),
            self.outcome,
        ]

    # --- a run --------------------------------------------------------------------------

    def _start(self) -> None:
        """What Run does: check the request with the core, then start the command."""
        if self.status == RUN_RUNNING:
            return
        try:
            source = read_notebook(self.notebook)
            if source.sha256 != self._source_sha256:  # saved since: show what will run
                self._show_notebook(source, keep=self.form)
            prepared = prepare_run(
                self.notebook,
                self.parameters,
                self.runs_dir,
                self.tracking_uri,
                jobs=self.jobs,
                from_stage=self.from_stage.value,
            )
        except MlopsError as error:
            self.error = str(error)
            self.outcome.value = messages.refusal_html(self.error)
            return
        self.result, self.error, self._run = None, None, None
        self.outcome.value = ""
        self.stages.reset(QUEUED)
        self._set_running(True)
        self.status_label.value = "starting…"
        self.status = RUN_RUNNING
        self._run = RunProcess(
            prepared, self.notebook.parent, self._progress, self._finish, on_queued=self._queued
        )

    def _queued(self) -> None:
        """From the run's thread: it waits for one of the runs of this kernel to end."""
        self.status_label.value = "queued: waiting for a free run slot"

    def _progress(self, state: RunState) -> None:
        """From the run's thread, every poll: the stages' statuses and the elapsed time."""
        self.stages.show(state)
        if self._run is None or not self._run.cancelled:
            self.status_label.value = f"running {time.time() - state.created:.0f} s"

    def _finish(self, end: RunEnd) -> None:
        """From the run's thread, once: the final state, and the way on from it."""
        if end.state is not None:
            self.stages.show(end.state)
        self.result = end.state
        self.error = None if end.status == RUN_SUCCEEDED else end.message
        self.outcome.value = messages.outcome_html(end.status, end.state, end.message, self.links)
        self.status_label.value = end.status
        self._set_running(False)
        self.status = end.status

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running or bool(self._analysis.errors)
        self.cancel_button.disabled = not running
        self.reload_button.disabled = running
        self.from_stage.disabled = running


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f'<div style="margin-top:6px"><b>{title}</b></div>')
