# ruff: noqa: F811 (the jupyter, browser and page fixtures are imported)
"""The Runs panel in a real `jupyter lab`, driven in headless Chromium as a user would.

A notebook's past runs in the main area (`jupyter-mlops:open-runs`, "Pipeline Runs" in the
command palette): listed with their parameters and metrics while they run and once they
have ended, one opened with its stages, logs and executed stage notebooks (one opened in
JupyterLab), one re-run with the same parameters, two compared side by side, and a long run
cancelled. Screenshots of the panel are written to test-artifacts/ui/runs-panel.png (and
runs-panel-dark.png, under the dark theme) for a person to look at.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from browser import (  # noqa: F401
    JupyterLab,
    browser,
    collect_page_errors,
    jupyter,
    keep_screenshot,
    open_notebook,
    page,
    run_command,
)
from conftest import ROOT, code, notebook, write
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts" / "ui"
PANEL = ".jp-mlops-runs-panel"
OPEN_RUNS = "jupyter-mlops:open-runs"
FINAL = ("succeeded", "failed", "cancelled")
RUN_TIMEOUT = 300  # seconds: a two-stage run on a loaded 2-core machine, with margin
UI_TIMEOUT = 60  # seconds: a listing, a poll, a document opening


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def page_errors(page: Any) -> list[str]:
    """Uncaught JS errors of the test's page, recorded from before it loads JupyterLab."""
    return collect_page_errors(page)


def tally(root: Path) -> Path:
    """Two stages, one int parameter, and a `metrics` cell: `total` is 3 for n=3, 10 for n=5."""
    return write(
        notebook(
            code("n: int = 3  # how many values", "parameters"),
            code("values = list(range(n))", "stage:make"),
            code("total = sum(values)", "stage:score", "metrics"),
            pipeline="tally",
        ),
        root / "work" / "tally.ipynb",
    )


def sleepy(root: Path) -> Path:
    return write(
        notebook(
            code("import time\ntime.sleep(600)\nx = 1", "stage:wait"),
            code("y = x", "stage:after"),
            pipeline="sleepy",
        ),
        root / "work" / "sleepy.ipynb",
    )


def start_run(lab: JupyterLab, path: str, parameters: dict[str, Any] | None = None) -> str:
    """Start a run through the REST API, as another client would; return its id."""
    run = lab.api("POST", "jupyter-mlops/runs", {"path": path, "parameters": parameters or {}})
    return run["id"]


def get_run(lab: JupyterLab, run_id: str) -> dict[str, Any]:
    return lab.api("GET", f"jupyter-mlops/runs/{run_id}")


def wait_run(lab: JupyterLab, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Poll the server until the run has ended; return it."""
    deadline = time.monotonic() + timeout
    while True:
        run = get_run(lab, run_id)
        if run["status"] in FINAL:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not end:\n{run.get('log_tail')}")
        time.sleep(1)


def open_runs_from_palette(page: Any, path: str) -> Any:
    """Open the current notebook's Runs panel from the command palette, as a user would."""
    run_command(page, "apputils:activate-command-palette")
    palette = page.locator(".lm-CommandPalette")
    palette.locator(".lm-CommandPalette-input").fill("Pipeline Runs")
    item = palette.locator(f'.lm-CommandPalette-item[data-command="{OPEN_RUNS}"]')
    item.wait_for(timeout=UI_TIMEOUT * 1000)
    headers = palette.locator(".lm-CommandPalette-header").all_inner_texts()
    assert any(header.strip().lower() == "ml pipeline" for header in headers), headers
    assert item.locator(".lm-CommandPalette-itemLabel").inner_text() == "Pipeline Runs"
    item.click()
    return wait_for_panel(page, path)


def wait_for_panel(page: Any, path: str) -> Any:
    panel = page.locator(f'{PANEL}[data-path="{path}"]')
    panel.wait_for(state="visible", timeout=UI_TIMEOUT * 1000)
    return panel


def row(panel: Any, run_id: str) -> Any:
    return panel.locator(f'[data-testid="mlops-runs-row"][data-run="{run_id}"]')


def row_ids(panel: Any) -> list[str]:
    return panel.locator('[data-testid="mlops-runs-row"]').evaluate_all(
        "rows => rows.map(r => r.dataset.run)"
    )


def wait_row_status(page: Any, lab: JupyterLab, run_id: str, statuses: tuple[str, ...]) -> str:
    """Wait until the panel shows the run with one of `statuses` (the panel polls)."""
    selector = f'{PANEL} [data-testid="mlops-runs-row"][data-run="{run_id}"]'
    try:
        page.wait_for_function(
            """([selector, statuses]) => {
                const row = document.querySelector(selector);
                return row !== null && statuses.includes(row.dataset.status);
            }""",
            arg=[selector, list(statuses)],
            timeout=RUN_TIMEOUT * 1000,
        )
    except PlaywrightTimeout as error:
        text = page.locator(PANEL).inner_text()
        raise AssertionError(
            f"run {run_id} never became {statuses}:\n{text}\n{lab.log_tail()}"
        ) from error
    return page.locator(selector).get_attribute("data-status")


def compare_values(panel: Any, kind: str, name: str) -> tuple[list[str], str]:
    """A comparison row's two values as shown, and whether it is marked as differing."""
    line = panel.locator(
        f'[data-testid="mlops-compare-row"][data-kind="{kind}"][data-name="{name}"]'
    )
    values = line.locator('[data-testid="mlops-compare-value"]').all_inner_texts()
    return [value.strip() for value in values], line.get_attribute("data-differs")


def screenshot_panel(panel: Any, name: str, record_property: Any) -> Path:
    """Save the panel as test-artifacts/ui/NAME.png (`keep_screenshot`)."""
    return keep_screenshot(panel, ARTIFACTS, name, record_property)


# --- tests ------------------------------------------------------------------------------


def test_list_open_rerun_and_compare_runs(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    """Two runs with different parameters, started by another client while the panel is
    open, are listed on Refresh and followed as they run and end; one opens with its stages,
    logs and MLflow links, and its executed stage notebook opens in JupyterLab; a re-run
    repeats the parameters; the two are compared side by side with their differences marked."""
    tally(jupyter.root)
    path = "work/tally.ipynb"
    open_notebook(page, jupyter, path, workspace="runs-panel")
    panel = open_runs_from_palette(page, path)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Runs: tally.ipynb")
    assert tab.count() == 1
    panel.locator('[data-testid="mlops-runs-empty"]').wait_for(timeout=UI_TIMEOUT * 1000)
    assert "No runs of this notebook yet" in panel.inner_text()

    # Two runs from another client (the REST API): listed on Refresh, then followed to their
    # end by the panel's polls.
    first = start_run(jupyter, path, {"n": 3})
    second = start_run(jupyter, path, {"n": 5})
    panel.locator('[data-testid="mlops-runs-refresh"]').click()
    row(panel, second).wait_for(timeout=UI_TIMEOUT * 1000)
    for run_id in (first, second):
        assert wait_row_status(page, jupyter, run_id, FINAL) == "succeeded", get_run(
            jupyter, run_id
        )["log_tail"]
    # Newest first, by the time each runner started (both started at once here).
    started = {run_id: get_run(jupyter, run_id)["created"] for run_id in (first, second)}
    assert row_ids(panel) == sorted(started, key=started.__getitem__, reverse=True)
    for run_id, n, total in ((first, 3, 3), (second, 5, 10)):
        shown = row(panel, run_id)
        assert shown.locator('[data-testid="mlops-runs-params"]').inner_text() == f"n={n}"
        assert shown.locator('[data-testid="mlops-runs-metrics"]').inner_text() == f"total={total}"
        assert shown.locator(".jp-mlops-runs-duration").inner_text().endswith(" s")

    # Open the first run: its stages, the runner's log, MLflow links.
    row(panel, first).locator(".jp-mlops-runs-started").click()
    detail = panel.locator(f'[data-testid="mlops-runs-detail"][data-run="{first}"]')
    detail.locator('[data-testid="mlops-runs-stage"]').first.wait_for(timeout=UI_TIMEOUT * 1000)
    stages = detail.locator('[data-testid="mlops-runs-stage"]')
    assert stages.evaluate_all("rows => rows.map(r => [r.dataset.stage, r.dataset.status])") == [
        ["make", "done"],
        ["score", "done"],
    ]
    score = detail.locator('[data-testid="mlops-runs-stage"][data-stage="score"]')
    assert score.locator('[data-testid="mlops-runs-stage-metrics"]').inner_text() == "total=3"
    assert "succeeded" in detail.locator('[data-testid="mlops-runs-log"]').inner_text()
    record = get_run(jupyter, first)
    assert record["folder"] and (jupyter.root / record["folder"]).is_dir()
    if record["mlflow"]["url"]:
        link = detail.locator('[data-testid="mlops-runs-mlflow-link"]')
        assert record["mlflow"]["run_id"] in (link.get_attribute("href") or "")
        assert score.locator('[data-testid="mlops-runs-stage-mlflow"]').count() == 1

    # Its executed stage notebook opens as a document of its own.
    button = score.locator('[data-testid="mlops-runs-open-notebook"]')
    executed = button.get_attribute("data-path") or ""
    [stage_record] = [s for s in record["stages"] if s["name"] == "score"]
    assert executed == f"{record['folder']}/{stage_record['notebook']}"
    assert (jupyter.root / executed).is_file()
    button.click()
    page.wait_for_function(
        """(path) => {
            const widget = window.jupyterapp.shell.currentWidget;
            return widget?.context?.path === path && widget.content.widgets.length > 0;
        }""",
        arg=executed,
        timeout=UI_TIMEOUT * 1000,
    )
    assert page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=Path(executed).name).count()
    tab.click()
    panel.wait_for(state="visible", timeout=UI_TIMEOUT * 1000)

    # Re-run the second run: a third run with the same parameters, at the top, succeeds.
    row(panel, second).locator('[data-testid="mlops-runs-rerun"]').click()
    page.wait_for_function(
        "(selector) => document.querySelectorAll(selector).length === 3",
        arg=f'{PANEL} [data-testid="mlops-runs-row"]',
        timeout=UI_TIMEOUT * 1000,
    )
    third = row_ids(panel)[0]
    assert third not in (first, second)
    assert wait_row_status(page, jupyter, third, FINAL) == "succeeded"
    assert row(panel, third).locator('[data-testid="mlops-runs-params"]').inner_text() == "n=5"
    assert row(panel, third).locator('[data-testid="mlops-runs-metrics"]').inner_text() == (
        "total=10"
    )
    assert get_run(jupyter, third)["parameters"] == {"n": 5}

    # Compare the first two: the differing parameter and metric side by side, marked.
    row(panel, first).locator('[data-testid="mlops-runs-check"]').check()
    panel.locator('[data-testid="mlops-runs-compare-hint"]').wait_for()
    row(panel, second).locator('[data-testid="mlops-runs-check"]').check()
    comparison = panel.locator('[data-testid="mlops-runs-compare"]')
    comparison.wait_for(timeout=UI_TIMEOUT * 1000)
    left, right = sorted(started, key=started.__getitem__)  # the older on the left
    assert comparison.get_attribute("data-left") == left
    assert comparison.get_attribute("data-right") == right
    n, total = {first: "3", second: "5"}, {first: "3", second: "10"}
    assert compare_values(comparison, "parameter", "n") == ([n[left], n[right]], "true")
    assert compare_values(comparison, "metric", "total") == ([total[left], total[right]], "true")
    assert "jp-mod-differs" in (
        comparison.locator('[data-kind="parameter"][data-name="n"]').get_attribute("class") or ""
    )
    page.mouse.move(0, 0)  # no row under the pointer: none is highlighted in the picture
    screenshot_panel(panel, "runs-panel", record_property)

    # The same under the dark theme (theme variables only): for a person to look at.
    run_command(page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)  # the theme's CSS applied
    screenshot_panel(panel, "runs-panel-dark", record_property)
    run_command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")
    assert page_errors == []


def test_cancel_a_long_run_from_the_panel(
    jupyter: JupyterLab, page: Any, page_errors: list[str]
) -> None:
    """The panel opened from the sidebar's button: a run whose stage sleeps is cancelled
    from its row, and the panel follows it to `cancelled`, as does the server."""
    sleepy(jupyter.root)
    path = "work/sleepy.ipynb"
    open_notebook(page, jupyter, path, workspace="runs-cancel")
    run_id = start_run(jupyter, path)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(s["status"] == "running" for s in get_run(jupyter, run_id)["stages"]):
        assert time.monotonic() < deadline, get_run(jupyter, run_id)
        time.sleep(0.5)

    # This time from the sidebar's history button, where a user finds it.
    from test_ui import open_sidebar

    sidebar = open_sidebar(page)
    # The sidebar says where runs go (and, beside it, the MLflow store).
    assert sidebar.locator('[data-testid="mlops-runs-dir"]').inner_text() == "mlops-runs"
    sidebar.locator('[data-testid="mlops-runs"]').click()
    panel = wait_for_panel(page, path)
    assert wait_row_status(page, jupyter, run_id, ("running",)) == "running"
    cancel = row(panel, run_id).locator('[data-testid="mlops-runs-cancel"]')
    cancel.click()
    assert wait_row_status(page, jupyter, run_id, FINAL) == "cancelled"
    assert cancel.count() == 0  # nothing left to cancel
    assert wait_run(jupyter, run_id, timeout=UI_TIMEOUT)["status"] == "cancelled"
    assert page_errors == []
