# ruff: noqa: F811 (the jupyter, browser, page and page_errors fixtures are imported)
"""The sidebar's Sweep section in a real `jupyter lab`, driven in headless Chromium.

She opens the collapsed section, types three values for one parameter (a range first,
which the form refuses without random draws, and too many random draws, which the server
refuses next to the form), starts the sweep, stops it while its second trial runs, resumes it,
and sees the table of trials fill and finish with the best trial starred; the sweep's record
and the registered model version are where the table says. Nothing in the section is wider
than the sidebar, in the light and the dark theme: screenshots in `test-artifacts/ui/`
(`sweep-sidebar-light.png`, `sweep-sidebar-dark.png`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from browser import JupyterLab, browser, jupyter, page  # noqa: F401
from mlflow import MlflowClient
from test_sweep_server import ridge
from test_ui import (  # noqa: F401
    SIDEBAR,
    UI_TIMEOUT,
    open_notebook_alone,
    open_sidebar,
    page_errors,
)
from test_ui_polish import assert_fits, fits_in_both_themes

pytestmark = pytest.mark.slow

ALPHA = "regularization_strength_of_the_ridge"  # a long name: the table must still fit
SWEEP = f"{SIDEBAR} [data-testid='mlops-sweep']"
TRIAL_TIMEOUT = 240  # seconds: a few tiny trials on a loaded 2-core machine, with margin


def sweep_status(page: Any) -> str | None:
    return page.evaluate(
        "(root) => document.querySelector(`${root} [data-testid='mlops-sweep-status']`)"
        "?.dataset.status ?? null",
        SWEEP,
    )


def wait_status(page: Any, *statuses: str, timeout: float = TRIAL_TIMEOUT) -> str:
    page.wait_for_function(
        """([root, statuses]) => statuses.includes(document.querySelector(
            `${root} [data-testid='mlops-sweep-status']`)?.dataset.status)""",
        arg=[SWEEP, list(statuses)],
        timeout=timeout * 1000,
    )
    return sweep_status(page) or ""


def trial_statuses(page: Any) -> list[str]:
    rows = page.locator(f"{SWEEP} [data-testid='mlops-sweep-trial']")
    return [rows.nth(i).get_attribute("data-status") or "" for i in range(rows.count())]


def test_a_sweep_from_the_sidebar_fills_its_table_and_registers_the_best(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    page.set_viewport_size({"width": 1280, "height": 1800})  # the whole sidebar on screen
    ridge(jupyter.root / "ridge_sweep.ipynb", ALPHA, "ridge_swept")
    (jupyter.root / "hold").write_text("")  # trial 2 (alpha 1) waits until it is removed
    open_notebook_alone(page, jupyter, "ridge_sweep.ipynb")
    sidebar = open_sidebar(page)
    section = page.locator(SWEEP)
    section.wait_for(timeout=UI_TIMEOUT * 1000)
    assert section.get_attribute("open") is None  # collapsed until she opens it
    section.locator("summary").click()
    field = section.locator(f".jp-mlops-param[data-param='{ALPHA}'] input")
    field.wait_for(timeout=UI_TIMEOUT * 1000)
    assert field.get_attribute("placeholder") == "1"  # the default every trial keeps
    start = section.locator("[data-testid='mlops-sweep-start']")
    assert start.is_disabled()  # nothing to sweep yet

    # A range without random draws: refused at the field, before any request.
    field.fill("0.1:10")
    error = section.locator(f".jp-mlops-param[data-param='{ALPHA}'] .jp-mlops-param-error")
    assert "random draws" in error.inner_text() and start.is_disabled()
    # Too many draws: the server refuses it, and says so next to the form.
    section.locator("[data-testid='mlops-sweep-random']").fill("20000")
    assert section.locator("[data-testid='mlops-sweep-count']").inner_text() == "20000 trials"
    start.click()
    refusal = section.locator("[data-testid='mlops-sweep-error']")
    refusal.wait_for(timeout=UI_TIMEOUT * 1000)
    assert "random" in refusal.inner_text() and "10000" in refusal.inner_text()
    assert not list(jupyter.root.glob("mlops-runs/*/sweeps"))  # nothing started

    section.locator("[data-testid='mlops-sweep-random']").fill("")
    field.fill("0.1,1,10")
    assert section.locator("[data-testid='mlops-sweep-count']").inner_text() == "3 trials"
    start.click()
    result = section.locator("[data-testid='mlops-sweep-result']")
    result.wait_for(timeout=UI_TIMEOUT * 1000)
    assert refusal.count() == 0
    header = result.locator("th").all_inner_texts()
    assert [h.replace("\u200b", "") for h in header] == ["#", ALPHA, "score", "status"]
    assert result.locator("[data-testid='mlops-sweep-trial']").count() == 3  # planned

    # Stop it while trial 2 waits, then resume it.
    page.wait_for_function(
        "(root) => document.querySelector(`${root} [data-trial='2']`)?.dataset.status"
        " === 'running'",
        arg=SWEEP,
        timeout=TRIAL_TIMEOUT * 1000,
    )
    assert trial_statuses(page)[0] == "succeeded"
    assert_fits(page)
    result.locator("[data-testid='mlops-sweep-stop']").click()
    assert wait_status(page, "stopped", "failed", "succeeded") == "stopped"
    assert trial_statuses(page) == ["succeeded", "cancelled", "pending"]
    (jupyter.root / "hold").unlink()
    result.locator("[data-testid='mlops-sweep-resume']").click()
    wait_status(page, "queued", "running", "succeeded", "failed", timeout=UI_TIMEOUT)
    assert wait_status(page, "succeeded", "failed", "stopped") == "succeeded", result.inner_text()
    assert trial_statuses(page) == ["succeeded"] * 3

    best = result.locator("[data-testid='mlops-sweep-trial'][data-best='true']")
    assert best.count() == 1 and best.get_attribute("data-trial") == "1"  # least shrunk
    assert "jp-mod-best" in (best.get_attribute("class") or "")
    assert best.locator(".jp-mlops-sweep-star").inner_text().strip() == "★"
    assert "best: trial 1, highest score" in result.inner_text()
    model = result.locator("[data-testid='mlops-sweep-model']")
    assert "ridge_swept v1" in model.inner_text().replace("\u200b", "")

    sweep_id = result.get_attribute("data-sweep")
    view = jupyter.api("GET", f"jupyter-mlops/sweeps/{sweep_id}")
    record = json.loads((jupyter.root / view["folder"] / "sweep.json").read_text())
    assert record["status"] == "succeeded" and record["best"] == 1
    assert [t["parameters"][ALPHA] for t in record["trials"]] == [0.1, 1.0, 10.0]
    client = MlflowClient(tracking_uri=view["mlflow"]["tracking_uri"])
    version = client.get_model_version_by_alias("ridge_swept", "candidate")
    assert str(version.version) == record["models"][0]["version"] == "1"
    assert version.run_id == record["trials"][0]["mlflow_run_id"]

    fits_in_both_themes(page, "sweep-sidebar", record_property)
    assert sidebar.is_visible()
    assert page_errors == []
