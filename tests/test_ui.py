# ruff: noqa: F811 (the jupyter, browser and page fixtures are imported)
"""The JupyterLab extension in a real `jupyter lab`, driven in headless Chromium as a user would.

What a data scientist relies on, end to end: the sidebar shows the notebook's stages, a cell
tagged through the right-click menu becomes a new stage (in the sidebar, on the cell and in
the saved `.ipynb`), Productionize runs everything into MLflow with live progress, a failing
stage is one click from its cell, and tagging errors stop Productionize at the right cell.

Screenshots of the sidebar (during a run, after success, after a failure) are written to
`test-artifacts/ui/` at the repository root on every run, for a human (or CI) to look at.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import (  # noqa: F401
    JupyterLab,
    browser,
    collect_page_errors,
    jupyter,
    keep_screenshot,
    open_notebook,
    page,
)
from conftest import EXAMPLES, ROOT, code, divergent_cells, md, notebook, write
from mlflow import MlflowClient
from mlflow_helpers import pipeline_runs
from nbformat.v4 import new_output
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "ui"
SIDEBAR = "#jupyter-mlops-sidebar"
WINE_STAGES = ["load", "split", "train", "evaluate", "report"]
# Where the sidebar leaves Productionize: every phase that is not "on its way".
FINAL_PHASES = ["succeeded", "failed", "cancelled", "error", "blocked"]
RUN_TIMEOUT = 420  # seconds: the wine pipeline on a loaded 2-core machine, with margin
UI_TIMEOUT = 60  # seconds: an analysis, a save, a dialog


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def page_errors(page: Any) -> list[str]:
    """Uncaught JS errors of the test's page, recorded from before it loads JupyterLab."""
    return collect_page_errors(page)


def cell(page: Any, index: int) -> Any:
    """Notebook cell `index` of the current notebook (all cells are in the DOM: no windowing)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)


def prompt(page: Any, index: int) -> tuple[Any, dict[str, float]]:
    """A cell's input prompt and a point on its `[n]:` text (the stage badge sits below it)."""
    return cell(page, index).locator(".jp-InputPrompt"), {"x": 12, "y": 8}


def select_cell(page: Any, index: int) -> None:
    """Click a cell's input prompt: selects it in command mode, as a user does before a command."""
    target, point = prompt(page, index)
    target.click(position=point)
    wait_active_cell(page, index)


def active_cell_index(page: Any) -> int:
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex")


def wait_active_cell(page: Any, index: int) -> None:
    page.wait_for_function(
        "(i) => window.jupyterapp.shell.currentWidget.content.activeCellIndex === i",
        arg=index,
        timeout=UI_TIMEOUT * 1000,
    )


def open_notebook_alone(page: Any, lab: JupyterLab, path: str) -> None:
    """Open `path` in a workspace of its own: nothing an earlier test opened comes back."""
    open_notebook(page, lab, path, workspace=Path(path).stem.replace("_", "-"))


def open_sidebar(page: Any) -> Any:
    """Click the sidebar's tab in the left bar (as a user would) and return the sidebar."""
    sidebar = page.locator(SIDEBAR)
    if not sidebar.is_visible():  # a second click on the tab would close it
        page.locator(
            '.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="jupyter-mlops-sidebar"]'
        ).click()
    sidebar.wait_for(state="visible", timeout=UI_TIMEOUT * 1000)
    return sidebar


def stage_row(page: Any, name: str) -> Any:
    return page.locator(f'{SIDEBAR} .jp-mlops-stage[data-stage="{name}"]')


def cell_menu_command(page: Any, index: int, command: str) -> None:
    """Right-click cell `index` → "ML Pipeline" submenu → the item of `command`."""
    select_cell(page, index)
    target, point = prompt(page, index)
    target.click(button="right", position=point)
    page.locator(".lm-Menu .lm-Menu-item", has_text="ML Pipeline").click()  # opens the submenu
    page.locator(f'.lm-Menu .lm-Menu-item[data-command="{command}"]').click()


def answer_stage_dialog(page: Any, name: str) -> None:
    """Type `name` into the "Pipeline stage" dialog (it offers the stages, or a new name)."""
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=UI_TIMEOUT * 1000)
    dialog.locator("input").fill(name)
    dialog.get_by_role("button", name="Set stage").click()
    dialog.wait_for(state="detached", timeout=UI_TIMEOUT * 1000)


def save_with_keyboard(page: Any, index: int) -> None:
    """Ctrl+S with the notebook focused, then wait until the server has the file."""
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
    select_cell(page, index)
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
        timeout=UI_TIMEOUT * 1000,
    )


def wait_for_run_end(page: Any, lab: JupyterLab, timeout: float = RUN_TIMEOUT) -> str:
    """Wait until Productionize reaches a final phase; return it (the caller asserts which)."""
    status = page.locator(f'{SIDEBAR} [data-testid="mlops-run-status"]')
    try:
        page.wait_for_function(
            """([selector, phases]) => {
                const status = document.querySelector(selector);
                return status !== null && phases.includes(status.dataset.status);
            }""",
            arg=[f'{SIDEBAR} [data-testid="mlops-run-status"]', FINAL_PHASES],
            timeout=timeout * 1000,
        )
    except PlaywrightTimeout as error:  # say where the run was, and what the server logged
        text = page.locator(SIDEBAR).inner_text()
        raise AssertionError(f"the run did not end:\n{text}\n{lab.log_tail()}") from error
    return status.get_attribute("data-status")


def stage_statuses(page: Any) -> dict[str, str]:
    """The sidebar's per-stage progress rows: stage name -> status."""
    rows = page.locator(f'{SIDEBAR} [data-testid="mlops-stage-progress"]')
    return {
        rows.nth(i).get_attribute("data-stage"): rows.nth(i).get_attribute("data-status")
        for i in range(rows.count())
    }


def screenshot_sidebar(page: Any, name: str, record_property: Any) -> Path:
    """Save the sidebar as test-artifacts/ui/NAME.png (`keep_screenshot`)."""
    return keep_screenshot(page.locator(SIDEBAR), ARTIFACTS, name, record_property)


def tracking_client(lab: JupyterLab) -> MlflowClient:
    """The store the server logs to, as the server itself reports it."""
    return MlflowClient(tracking_uri=lab.api("GET", "jupyter-mlops/config")["tracking_uri"])


# --- tests ------------------------------------------------------------------------------


def wine_with_summary(root: Path) -> tuple[Path, int]:
    """The wine example plus one untagged cell at the end (so it continues `report`).

    The cell carries outputs and metadata of its own, so that tagging it can be shown to
    leave them alone. Returns the notebook's path and the new cell's index.
    """
    target = root / "wine_classifier.ipynb"
    shutil.copy(EXAMPLES / "wine_classifier.ipynb", target)
    nb = nbformat.read(target, as_version=4)
    summary = code('summary = f"{top_feature}: accuracy {accuracy:.3f}"\nprint(summary)')
    summary["id"] = "cell-summary"
    summary["metadata"] = {"team": {"owner": "ds", "reviewed": True}}
    summary["execution_count"] = 7
    summary["outputs"] = [new_output("stream", name="stdout", text="proline: accuracy 0.978\n")]
    nb.cells.append(summary)
    nbformat.write(nb, target)
    return target, len(nb.cells) - 1


def test_tag_a_new_stage_in_the_ui_and_productionize(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    """The main path of the product: tag a new stage by hand, save, Productionize, find it
    all in MLflow. The tag goes through the right-click menu and its dialog, not the command
    API, so the menu, the dialog, the sidebar's refresh and the badge are all exercised."""
    path, index = wine_with_summary(jupyter.root)
    before = nbformat.read(path, as_version=4)
    open_notebook_alone(page, jupyter, path.name)
    sidebar = open_sidebar(page)

    # The sidebar shows the tagged stages; the untagged last cell continues `report`.
    for name in WINE_STAGES:
        stage_row(page, name).wait_for(timeout=UI_TIMEOUT * 1000)
    assert stage_row(page, "report").locator(f'.jp-mlops-cell-link[data-cell="{index}"]').count()

    # A new stage through the cell's right-click menu and its dialog.
    cell_menu_command(page, index, "jupyter-mlops:set-stage")
    answer_stage_dialog(page, "summary")
    summary_row = stage_row(page, "summary")
    summary_row.locator(f'.jp-mlops-cell-link[data-cell="{index}"]').wait_for(
        timeout=UI_TIMEOUT * 1000
    )
    assert not stage_row(page, "report").locator(f'[data-cell="{index}"]').count()
    cell(page, index).locator('.jp-mlops-badge[data-role="stage"][data-stage="summary"]').wait_for(
        timeout=UI_TIMEOUT * 1000
    )
    assert cell(page, index).locator(".jp-mlops-badge").inner_text() == "summary"
    page.locator('[data-testid="mlops-dag"] .jp-mlops-dag-node[data-stage="summary"]').wait_for()
    names = sidebar.locator(".jp-mlops-stage").evaluate_all(
        "rows => rows.map(r => r.dataset.stage)"
    )
    assert names == [*WINE_STAGES, "summary"]

    # Saved with Ctrl+S: the tag is in the file, nothing else changed.
    save_with_keyboard(page, index)
    saved = nbformat.read(path, as_version=4)
    assert len(saved.cells) == len(before.cells)
    tagged = saved.cells[index]
    assert tagged.metadata.tags == ["stage:summary"]
    expected = copy.deepcopy(before.cells[index])
    expected.metadata["tags"] = ["stage:summary"]
    assert (tagged.id, tagged.source, tagged.metadata, tagged.outputs) == (
        expected.id,
        expected.source,
        expected.metadata,
        expected.outputs,
    )
    for was, now in zip(before.cells[:index], saved.cells[:index], strict=True):
        assert (now.id, now.cell_type, now.source, now.metadata) == (
            was.id,
            was.cell_type,
            was.source,
            was.metadata,
        )
    assert saved.metadata.jupyter_mlops == before.metadata.jupyter_mlops

    # The typed parameters form: fewer trees make the run quicker.
    field = sidebar.locator('.jp-mlops-param[data-param="n_estimators"][data-type="int"]')
    field.locator("input").fill("10")
    assert "jp-mod-invalid" not in (field.get_attribute("class") or "")
    sidebar.get_by_text("Reset to the notebook").wait_for()  # the form knows it was edited

    # Productionize, with live progress.
    sidebar.locator('[data-testid="mlops-productionize"]').click()
    sidebar.locator('[data-testid="mlops-stage-progress"][data-status="running"]').first.wait_for(
        timeout=RUN_TIMEOUT * 1000
    )
    screenshot_sidebar(page, "sidebar-running", record_property)
    assert sidebar.locator('[data-testid="mlops-productionize"]').is_disabled()
    phase = wait_for_run_end(page, jupyter)
    assert phase == "succeeded", sidebar.inner_text()
    assert stage_statuses(page) == {name: "done" for name in [*WINE_STAGES, "summary"]}
    models = sidebar.locator('[data-testid="mlops-model"]')
    assert models.count() == 1 and "models:/wine-classifier/1" in models.inner_text()
    assert "now @candidate" in models.inner_text()
    screenshot_sidebar(page, "sidebar-succeeded", record_property)

    # What the ML engineer finds in MLflow.
    client = tracking_client(jupyter)
    parent, children = pipeline_runs(client, "wine-classifier")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["n_estimators"] == "10"  # the form's value, not the default
    assert sorted(children) == sorted([*WINE_STAGES, "summary"])
    assert {run.info.status for run in children.values()} == {"FINISHED"}
    version = client.get_model_version_by_alias("wine-classifier", "candidate")
    assert version.tags["jupyter_mlops.stage_run"] == children["train"].info.run_id
    accuracy = children["evaluate"].data.metrics["accuracy"]
    shown = sidebar.locator('[data-testid="mlops-metrics"]').inner_text()
    assert shown.startswith(f"accuracy {float(f'{accuracy:.4g}'):g}")  # the logged value
    link = sidebar.locator('[data-testid="mlops-mlflow-link"]')
    assert parent.info.run_id in (link.get_attribute("href") or "")

    # The run's record on the server agrees, and the source notebook was left as saved.
    run = jupyter.api("GET", f"jupyter-mlops/runs?path={path.name}")["runs"][0]
    assert run["status"] == "succeeded" and run["parameters"]["n_estimators"] == 10
    assert run["mlflow"]["run_id"] == parent.info.run_id
    assert nbformat.read(path, as_version=4) == saved
    assert page_errors == []


def test_a_failing_stage_is_one_click_from_its_cell(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    """A failed run names its stage and exception, and "Show cell" selects the very cell
    that raised (not the stage's first cell), in the notebook's own numbering."""
    failing = 5  # the second cell of stage `check`: an untagged cell that continues it
    write(
        notebook(
            md("# A pipeline that fails in the middle"),
            code("rows: int = 5", "parameters"),
            code("values = list(range(rows))", "stage:make"),
            md("## Check"),
            code("total = sum(values)", "stage:check"),
            code('if total > 3:\n    raise ValueError(f"total {total} is too big")'),
            code("doubled = total * 2", "stage:report"),
            pipeline="fails-in-the-middle",
        ),
        jupyter.root / "work" / "failing.ipynb",
    )
    open_notebook_alone(page, jupyter, "work/failing.ipynb")
    sidebar = open_sidebar(page)
    stage_row(page, "check").wait_for(timeout=UI_TIMEOUT * 1000)
    select_cell(page, 0)

    sidebar.locator('[data-testid="mlops-productionize"]').click()
    phase = wait_for_run_end(page, jupyter)
    assert phase == "failed", sidebar.inner_text()
    statuses = stage_statuses(page)
    assert statuses["make"] == "done" and statuses["check"] == "failed"
    assert statuses["report"] != "done"
    failure = sidebar.locator('[data-testid="mlops-failure"]')
    text = failure.inner_text()
    assert "check" in text and "ValueError: total 10 is too big" in text, text
    screenshot_sidebar(page, "sidebar-failed", record_property)

    assert active_cell_index(page) == 0
    failure.locator('[data-testid="mlops-show-cell"]').click()
    wait_active_cell(page, failing)
    classes = cell(page, failing).get_attribute("class") or ""
    assert "jp-mod-active" in classes and "jp-mod-selected" in classes
    assert "raise ValueError" in cell(page, failing).inner_text()

    parent, children = pipeline_runs(tracking_client(jupyter), "fails-in-the-middle")
    assert parent.info.status == "FAILED"
    assert children["make"].info.status == "FINISHED"
    assert children["check"].info.status == "FAILED"
    assert page_errors == []


def test_tagging_errors_block_productionize_at_their_cell(
    jupyter: JupyterLab, page: Any, page_errors: list[str]
) -> None:
    """A notebook whose check finds errors starts no run: the sidebar lists the error and
    Productionize has already brought its cell into view, so the fix is where she looks."""
    broken = 3  # reads `weights`, which nothing defines
    write(
        notebook(
            code("import math", "setup"),
            code("values = [1.0, 2.0, 3.0]", "stage:make"),
            md("## Score"),
            code("score = math.fsum(v * w for v, w in zip(values, weights))", "stage:score"),
            pipeline="blocked",
        ),
        jupyter.root / "blocked.ipynb",
    )
    open_notebook_alone(page, jupyter, "blocked.ipynb")
    sidebar = open_sidebar(page)
    stage_row(page, "score").wait_for(timeout=UI_TIMEOUT * 1000)
    select_cell(page, 0)

    sidebar.locator('[data-testid="mlops-productionize"]').click()
    assert wait_for_run_end(page, jupyter, timeout=UI_TIMEOUT) == "blocked"
    problem = sidebar.locator(
        '.jp-mlops-blocked .jp-mlops-diagnostic[data-code="undefined-name"][data-severity="error"]'
    )
    assert "weights" in problem.inner_text()
    wait_active_cell(page, broken)  # Productionize brought the error's cell into view
    assert jupyter.api("GET", "jupyter-mlops/runs?path=blocked.ipynb")["runs"] == []

    select_cell(page, 0)
    problem.locator("button").click()  # the problem itself goes to its cell too
    wait_active_cell(page, broken)
    assert page_errors == []


def test_tag_a_selection_from_the_cell_toolbar_and_skip_from_the_menu(
    jupyter: JupyterLab, page: Any, page_errors: list[str]
) -> None:
    """The other ways in: the cell toolbar's tag button on a selection of several cells, the
    menu's Skip toggle (the cell leaves its stage and is dimmed) and its "Log Variable as
    Model", which offers the names the cell touches; all reach the file."""
    write(
        notebook(
            code("import math", "setup"),
            code("values = [1.0, 2.0, 4.0]", "stage:make"),
            code("total = math.fsum(values)"),
            code("mean = total / len(values)"),
            code("print(mean)"),
            pipeline="tagging",
        ),
        jupyter.root / "tagging.ipynb",
    )
    open_notebook_alone(page, jupyter, "tagging.ipynb")
    sidebar = open_sidebar(page)
    make = stage_row(page, "make")
    make.locator('.jp-mlops-cell-link[data-cell="4"]').wait_for(timeout=UI_TIMEOUT * 1000)

    # Two cells at once: click one, shift-click the next, then the cell toolbar's tag button.
    select_cell(page, 2)
    target, point = prompt(page, 3)
    target.click(position=point, modifiers=["Shift"])
    wait_active_cell(page, 3)
    cell(page, 3).locator('.jp-cell-toolbar [data-command="jupyter-mlops:set-stage"]').click()
    answer_stage_dialog(page, "stats")
    stats = stage_row(page, "stats")
    stats.locator('.jp-mlops-cell-link[data-cell="3"]').wait_for(timeout=UI_TIMEOUT * 1000)
    links = stats.locator(".jp-mlops-cell-link").evaluate_all("a => a.map(l => l.dataset.cell)")
    assert links == ["2", "3", "4"]  # the untagged cell after them continues the stage
    for index in (2, 3):
        cell(page, index).locator('.jp-mlops-badge[data-stage="stats"]').wait_for()

    # Skip through the right-click menu: out of every stage, and dimmed.
    cell_menu_command(page, 4, "jupyter-mlops:toggle-skip")
    page.locator(".jp-Notebook .jp-Cell.jp-mlops-skip-cell").wait_for(timeout=UI_TIMEOUT * 1000)
    assert "jp-mlops-skip-cell" in (cell(page, 4).get_attribute("class") or "")
    stats.locator('.jp-mlops-cell-link[data-cell="4"]').wait_for(state="detached")
    assert sidebar.locator(".jp-mlops-stage").count() == 2

    # A model through the menu: the dialog offers what the cell assigns.
    cell_menu_command(page, 1, "jupyter-mlops:add-model")
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=UI_TIMEOUT * 1000)
    assert dialog.locator("option").evaluate_all("o => o.map(x => x.value)") == ["values"]
    dialog.locator("input").fill("values")
    dialog.get_by_role("button", name="Log as model").click()
    dialog.wait_for(state="detached", timeout=UI_TIMEOUT * 1000)
    make.locator('[data-fact="models"]', has_text="values").wait_for(timeout=UI_TIMEOUT * 1000)

    save_with_keyboard(page, 4)
    saved = nbformat.read(jupyter.root / "tagging.ipynb", as_version=4)
    assert [c.metadata.get("tags") for c in saved.cells] == [
        ["setup"],
        ["stage:make", "model:values"],
        ["stage:stats"],
        ["stage:stats"],
        ["skip"],
    ]
    assert page_errors == []


def test_verify_names_the_divergent_value_and_shows_its_cell(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    """Verify runs the notebook plainly and as a pipeline: a `skip` cell that mutates what
    stage `a` hands on makes stage `b`'s `n` differ, and "Show cell" selects the cell that
    computes it, in the notebook's own numbering."""
    write(
        notebook(*divergent_cells(), pipeline="verify-divergent"),
        jupyter.root / "verify_divergent.ipynb",
    )
    open_notebook_alone(page, jupyter, "verify_divergent.ipynb")
    sidebar = open_sidebar(page)
    stage_row(page, "c").wait_for(timeout=UI_TIMEOUT * 1000)
    select_cell(page, 0)

    verify = sidebar.locator('[data-testid="mlops-verify"]')
    assert verify.is_enabled()
    verify.click()
    status = sidebar.locator('[data-testid="mlops-verify-status"]')
    status.wait_for(timeout=UI_TIMEOUT * 1000)
    final = ["identical", "divergent", "failed"]
    try:
        page.wait_for_function(
            """([selector, phases]) => {
                const status = document.querySelector(selector);
                return status !== null && phases.includes(status.dataset.status);
            }""",
            arg=[f'{SIDEBAR} [data-testid="mlops-verify-status"]', final],
            timeout=RUN_TIMEOUT * 1000,
        )
    except PlaywrightTimeout as error:
        text = sidebar.inner_text()
        raise AssertionError(
            f"the verification did not end:\n{text}\n{jupyter.log_tail()}"
        ) from error
    assert status.get_attribute("data-status") == "divergent", sidebar.inner_text()

    [row] = sidebar.locator('[data-testid="mlops-verify-difference"]').all()
    assert row.get_attribute("data-stage") == "b" and row.get_attribute("data-label") == "n"
    text = row.inner_text()
    assert "stage b hands on n" in text and "the notebook has 2, the pipeline 1" in text, text
    summary = sidebar.locator('[data-testid="mlops-verify-summary"]').inner_text()
    assert summary.startswith("✗ divergent: 1 value differs"), summary
    assert not verify.is_disabled()  # ready for another go once the notebook is fixed
    screenshot_sidebar(page, "sidebar-verify", record_property)

    assert active_cell_index(page) == 0
    row.locator('[data-testid="mlops-verify-show-cell"]').click()
    wait_active_cell(page, 2)
    assert "n = len(x)" in cell(page, 2).inner_text()
    assert jupyter.api("GET", "jupyter-mlops/runs?path=verify_divergent.ipynb")["runs"] == []
    assert page_errors == []
