"""The panel driven from Python as a user's code would: its widgets, real runs, MLflow."""

from __future__ import annotations

import time
from pathlib import Path

import click
import ipywidgets as widgets
import pytest
from conftest import code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

from jupyter_mlops.cli import main
from jupyter_mlops.errors import BadInput, NotebookError
from jupyter_mlops.run.scheduling import default_jobs
from jupyter_mlops.widgets import PipelinePanel
from jupyter_mlops.widgets.locate import this_notebook

PARAMETERS = """\
rows: int = 3  # how many values
scale: float = 1.5
label: str = "x"
verbose: bool = False
sizes: list = [1, 2]
limit: int | None = None  # no limit when None
tuned: bool | None = None
"""


def pipeline(folder: Path, failing: bool = False, name: str = "small.ipynb") -> Path:
    return write(
        notebook(
            code(PARAMETERS, "parameters"),
            code("values = [i * scale for i in range(rows)]", "stage:make"),
            code(
                "total = sum(values) + len(sizes)\n"
                + ("raise RuntimeError('nope')\n" if failing else ""),
                "stage:add",
                "metrics",
            ),
            code(
                "from sklearn.dummy import DummyRegressor\n"
                "features = [[v] for v in values]\n"
                "model = DummyRegressor().fit(features, values)",
                "stage:fit",
                "model:model",
            ),
        ),
        folder / name,
    )


def sleepy(folder: Path) -> Path:
    return write(
        notebook(
            code("import time\ntime.sleep(300)\nx = 1", "stage:wait"),
            code("y = x", "stage:after"),
        ),
        folder / "sleepy.ipynb",
    )


def statuses(panel: PipelinePanel) -> dict[str, str]:
    return {name: row.status.value for name, row in panel.stages.rows.items()}


def wait_for_status(panel: PipelinePanel, stage: str, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while panel.stages.rows[stage].status.value != status:
        assert time.monotonic() < deadline, f"{stage} never became {status}: {statuses(panel)}"
        time.sleep(0.2)


# --- what the panel shows -----------------------------------------------------------------


def test_stages_data_flow_and_typed_parameters(workdir):
    panel = PipelinePanel(pipeline(workdir))
    assert panel.status == "idle" and panel.result is None
    assert list(panel.stages.rows) == ["make", "add", "fit"]
    make, add, fit = panel.stages.rows.values()
    assert (make.badge.value, make.cells.value) == ("make", "cell 1")
    assert make.badge.style.background == "#3566a8" and add.badge.style.background == "#b8541a"
    assert "gives <code>values</code>" in make.flow.value
    assert "parameters <code>rows</code>, <code>scale</code>" in make.flow.value
    assert "takes <code>values</code> (make)" in add.flow.value
    assert "metrics <code>total</code>" in add.flow.value
    assert "model <code>model</code>" in fit.flow.value
    kinds = {name: type(w) for name, w in panel.form.inputs.items()}
    assert kinds == {
        "rows": widgets.IntText,
        "scale": widgets.FloatText,
        "label": widgets.Text,
        "verbose": widgets.Checkbox,
        "sizes": widgets.Textarea,
        "limit": widgets.Text,
        "tuned": widgets.Dropdown,
    }
    assert panel.form.inputs["tuned"].label == "None"
    assert panel.form.inputs["sizes"].value == "[1, 2]"
    assert panel.parameters == {
        "rows": 3,
        "scale": 1.5,
        "label": "x",
        "verbose": False,
        "sizes": [1, 2],
        "limit": None,
        "tuned": None,
    }
    assert "small.ipynb" in panel.header.value and "sqlite:///" in panel.header.value
    assert not panel.run_button.disabled and panel.cancel_button.disabled
    assert panel.diagnostics.value == ""


def test_diagnostics_are_shown_and_errors_block_the_run(workdir):
    path = write(
        notebook(
            code("print('exploring')"),
            code("y = x + 1", "stage:use"),
        ),
        workdir / "broken.ipynb",
    )
    panel = PipelinePanel(path)
    assert "cell 1, line 1" in panel.diagnostics.value and "`x`" in panel.diagnostics.value
    assert "cell 0: this cell comes before the first stage" in panel.diagnostics.value
    assert panel.run_button.disabled
    panel.run_button.click()  # from Python a disabled button still clicks: refused anyway
    assert panel.status == "idle"
    assert "not started" in panel.outcome.value and "`x`" in panel.error
    assert not (workdir / "mlops-runs").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("limit", "many", "parameter `limit` must be an integer, got 'many'"),
        ("sizes", '{"a": 1}', "parameter `sizes` must be a list, got {'a': 1}"),
        ("sizes", "[1, 2", "parameter `sizes` must be a list in YAML/JSON"),
    ],
)
def test_a_bad_parameter_value_is_refused_before_anything_starts(workdir, name, value, message):
    panel = PipelinePanel(pipeline(workdir))
    panel.form.inputs[name].value = value
    assert message in panel.form.fields[name].problem.value.replace("&#x27;", "'")
    with pytest.raises(BadInput, match="must be"):
        panel.parameters  # noqa: B018 (the property checks)
    panel.run_button.click()
    assert panel.status == "idle" and panel.result is None
    assert message in panel.error
    assert "not started" in panel.outcome.value
    assert not (workdir / "mlops-runs").exists() and not (workdir / "mlflow.db").exists()


def test_reload_shows_the_saved_notebook_and_keeps_typed_values(workdir):
    path = pipeline(workdir)
    panel = PipelinePanel(path)
    panel.form.inputs["rows"].value = 7
    panel.form.inputs["tuned"].value = True
    changed = PARAMETERS.replace("scale: float = 1.5", "scale: float = 2.5")
    write(notebook(code(changed, "parameters"), code("v = rows", "stage:only")), path)
    panel.reload_button.click()
    assert list(panel.stages.rows) == ["only"]
    assert panel.form.inputs["rows"].value == 7  # typed by the user
    assert panel.form.inputs["scale"].value == 2.5  # the notebook's new default
    assert panel.parameters["tuned"] is True
    assert [label for label, _ in panel.from_stage.options] == ["all stages", "only"]


def test_a_missing_notebook_is_a_clear_error(workdir):
    with pytest.raises(NotebookError, match=r"missing\.ipynb: no such file"):
        PipelinePanel("missing.ipynb")


def test_an_http_tracking_server_is_its_own_ui(workdir):
    panel = PipelinePanel(pipeline(workdir), tracking_uri="http://mlflow.example:5000")
    assert panel.links.ui == "http://mlflow.example:5000"
    assert PipelinePanel(pipeline(workdir)).links.ui is None


# --- which notebook is "this" one --------------------------------------------------------


def test_the_panel_runs_as_many_stages_at_once_as_the_command(workdir):
    run = main.commands["run"]
    option = next(param for param in run.params if param.name == "jobs")
    command_default = option.get_default(click.Context(run))
    assert PipelinePanel(pipeline(workdir)).jobs == command_default == default_jobs()
    assert PipelinePanel(pipeline(workdir), jobs=1).jobs == 1


def test_this_notebook_from_jupyter_server_or_vscode(workdir, monkeypatch):
    path = pipeline(workdir / "work")
    found = this_notebook({}, {"JPY_SESSION_NAME": str(path)}, cwd=workdir)
    assert found == path
    # a server that doesn't know the kernel's folder sends the path from its root
    assert this_notebook({}, {"JPY_SESSION_NAME": "work/small.ipynb"}, cwd=workdir) == path
    assert this_notebook({}, {"JPY_SESSION_NAME": "work/small.ipynb"}, cwd=path.parent) == (
        path.parent / "small.ipynb"
    )
    assert this_notebook({"__vsc_ipynb_file__": str(path)}, {}, cwd=Path("/")) == path
    with pytest.raises(BadInput, match=r"pass its path, e\.g\. PipelinePanel\('churn.ipynb'\)"):
        this_notebook({}, {}, cwd=workdir)
    with pytest.raises(BadInput, match="not a notebook file any more"):
        this_notebook({}, {"JPY_SESSION_NAME": str(workdir / "renamed.ipynb")}, cwd=workdir)

    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    panel = PipelinePanel.this_notebook()
    assert panel.notebook == path and list(panel.stages.rows) == ["make", "add", "fit"]


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_from_the_widgets_logs_to_mlflow(workdir):
    path = pipeline(workdir)
    before = path.read_bytes()
    panel = PipelinePanel(path, mlflow_ui_url="http://mlflow.example/")
    inputs = panel.form.inputs
    inputs["rows"].value = 4
    inputs["scale"].value = 2.0
    inputs["sizes"].value = "[1, 2, 3]"
    inputs["limit"].value = "10"
    seen: dict[str, list[str]] = {name: [] for name in panel.stages.rows}
    for name, row in panel.stages.rows.items():
        row.status.observe(lambda change, name=name: seen[name].append(change["new"]), "value")
    statuses_seen: list[str] = []
    panel.observe(lambda change: statuses_seen.append(change["new"]), "status")

    panel.run_button.click()
    assert panel.status == "running" and panel.run_button.disabled
    assert not panel.cancel_button.disabled
    command = panel._run.prepared.command
    assert command[command.index("--jobs") + 1] == str(default_jobs())  # the command's default
    state = panel.wait(timeout=300)

    assert panel.status == "succeeded", panel.outcome.value
    assert statuses_seen == ["running", "succeeded"]
    assert state is panel.result and state.status == "succeeded" and panel.error is None
    assert statuses(panel) == {"make": "✓ done", "add": "✓ done", "fit": "✓ done"}
    for name, row in panel.stages.rows.items():
        assert seen[name][0] == "○ queued" and seen[name][-1] == "✓ done"  # live, in order
        assert row.duration.value.endswith(" s") and float(row.duration.value[:-2]) > 0
    # The panel polls every 0.5 s: a stage that starts and ends between two polls (a
    # pre-started kernel running a one-liner, on a busy machine) goes straight to done.
    assert any("▸ running" in changes for changes in seen.values())
    assert panel.status_label.value == "succeeded"
    assert not panel.run_button.disabled and panel.cancel_button.disabled

    client = client_for(workdir)
    parent, children = pipeline_runs(client, "small")
    assert parent.info.run_id == state.parent_run_id and parent.info.status == "FINISHED"
    assert parent.data.params["rows"] == "4" and parent.data.params["sizes"] == "[1, 2, 3]"
    assert parent.data.params["limit"] == "10"
    assert children["add"].data.metrics["total"] == 0 + 2 + 4 + 6 + 3
    version = client.get_model_version_by_alias("small", "candidate")
    assert version.run_id == parent.info.run_id
    assert version.tags["jupyter_mlops.stage_run"] == children["fit"].info.run_id
    outcome = panel.outcome.value
    experiment = parent.info.experiment_id
    assert (
        f"http://mlflow.example/#/experiments/{experiment}/runs/{parent.info.run_id}?workflowType=machine_learning"
        in outcome
    )
    assert f"models:/small/{version.version}" in outcome
    assert "metrics: <code>total 15</code>" in outcome
    assert (
        f"http://mlflow.example/#/models/small/versions/{version.version}?workflowType=machine_learning"
        in outcome
    )
    assert state.run_dir == str(workdir / "mlops-runs" / "small" / state.id)
    assert path.read_bytes() == before

    # Again from `add`: it reuses the outputs of `make`; `fit` is not downstream of it.
    panel.from_stage.value = "add"
    panel.run_button.click()
    again = panel.wait(timeout=300)
    assert again.status == "succeeded" and again.id != state.id
    # Served by the runner the kernel started ahead when the first run ended (run/spare.py).
    assert "jupyter_mlops.run.spare" in panel._run.process.args
    assert again.pid == panel._run.process.pid
    assert statuses(panel) == {"make": "= cached", "add": "✓ done", "fit": "- skipped"}
    assert panel.stages.rows["make"].duration.value == ""
    assert path.read_bytes() == before


@pytest.mark.slow
def test_a_failing_run_shows_the_message_and_the_source_cell(workdir):
    path = pipeline(workdir, failing=True)
    before = path.read_bytes()
    panel = PipelinePanel(path, jobs=1)  # one at a time: `fit` comes after `add`, so is skipped
    panel.run_button.click()
    state = panel.wait(timeout=300)
    assert panel.status == "failed" and state.status == "failed"
    assert statuses(panel) == {"make": "✓ done", "add": "✗ failed", "fit": "- skipped"}
    assert "RuntimeError: nope" in panel.error and "cell 2 of small.ipynb" in panel.error
    outcome = panel.outcome.value
    assert "RuntimeError: nope" in outcome and "source cell: 2 of small.ipynb" in outcome
    assert "02_add.ipynb" in outcome and "<summary>traceback</summary>" in outcome
    assert "(marked FAILED)" in outcome
    parent, children = pipeline_runs(client_for(workdir), "small")
    assert parent.info.status == "FAILED" and children["add"].info.status == "FAILED"
    assert path.read_bytes() == before


@pytest.mark.slow
def test_cancel_stops_the_run_and_fails_it_in_mlflow(workdir):
    panel = PipelinePanel(sleepy(workdir))
    panel.run_button.click()
    wait_for_status(panel, "wait", "▸ running")
    with pytest.raises(TimeoutError, match="still running"):
        panel.wait(timeout=0.1)
    panel.cancel_button.click()
    state = panel.wait(timeout=60)
    assert panel.status == "cancelled" and state.status == "cancelled"
    assert statuses(panel) == {"wait": "■ cancelled", "after": "■ cancelled"}
    assert "run cancelled" in panel.outcome.value
    parent, children = pipeline_runs(client_for(workdir), "sleepy")
    assert parent.info.status == "FAILED" and children["wait"].info.status == "FAILED"


@pytest.mark.slow
def test_runs_beyond_the_free_slots_wait_queued_and_can_be_cancelled(workdir, monkeypatch):
    from jupyter_mlops.widgets import watch

    monkeypatch.setattr(watch, "SLOTS", watch.RunSlots(1))
    first = PipelinePanel(sleepy(workdir))
    first.run_button.click()
    wait_for_status(first, "wait", "▸ running")
    second, third = PipelinePanel(pipeline(workdir)), PipelinePanel(pipeline(workdir))
    for panel in (second, third):
        panel.run_button.click()
    deadline = time.monotonic() + 30
    while third.status_label.value != "queued: waiting for a free run slot":
        assert time.monotonic() < deadline, third.status_label.value
        time.sleep(0.1)
    assert second.status_label.value == "queued: waiting for a free run slot"
    third.cancel_button.click()
    assert third.wait(timeout=10) is None and third.status == "cancelled"
    assert "cancelled while queued" in third.outcome.value
    assert second.status == "running" and second._run.process is None  # still waiting
    first.cancel_button.click()
    assert first.wait(timeout=60).status == "cancelled"
    assert second.wait(timeout=300).status == "succeeded"
