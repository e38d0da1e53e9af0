# ruff: noqa: F811 (the jupyter, browser and page fixtures are imported)
"""Promote from the JupyterLab sidebar, in a real `jupyter lab` driven in headless Chromium.

After a pipeline run that succeeded, the engineer's next step is one click from the run's
result: "Promote" on the registered version runs the promotion gate as a dry run and shows
each check (✓ or ✗ with its figures); "Promote to champion" then moves the alias, and the
sidebar says so. The alias is checked in MLflow itself. The sidebar is saved, next to
test_ui.py's screenshots, as `test-artifacts/ui/promote-checks.png` (the checks and the
confirm) and `test-artifacts/ui/promote-sidebar.png` (promoted).
"""

from __future__ import annotations

import shutil
from typing import Any

import nbformat
import pytest
from browser import (  # noqa: F401
    JupyterLab,
    browser,
    collect_page_errors,
    jupyter,
    page,
)
from conftest import EXAMPLES
from test_ui import (
    SIDEBAR,
    UI_TIMEOUT,
    open_notebook_alone,
    open_sidebar,
    screenshot_sidebar,
    tracking_client,
    wait_for_run_end,
)

pytestmark = pytest.mark.slow

PROMOTE_TIMEOUT = 300  # seconds: the checks load the model in a fresh worker on a busy machine


def wine_with_a_gate(lab: JupyterLab, name: str, least_accuracy: float) -> str:
    """The wine example as pipeline and model `name`, its declared gate one threshold on
    accuracy; the notebook's path under the server root."""
    target = lab.root / f"{name}.ipynb"
    shutil.copy(EXAMPLES / "wine_classifier.ipynb", target)
    nb = nbformat.read(target, as_version=4)
    nb.metadata["jupyter_mlops"].update(
        pipeline=name, model_name=name, promotion={"min": {"accuracy": least_accuracy}}
    )
    nbformat.write(nb, target)
    return target.name


def run_and_check(page: Any, lab: JupyterLab, path: str, name: str) -> tuple[Any, str]:
    """Productionize `path` from the sidebar (10 trees, for speed), then click Promote on
    its registered version and wait for the checks; that version's Promote block and number."""
    open_notebook_alone(page, lab, path)
    sidebar = open_sidebar(page)
    field = sidebar.locator('.jp-mlops-param[data-param="n_estimators"] input')
    field.wait_for(timeout=UI_TIMEOUT * 1000)
    field.fill("10")
    sidebar.locator('[data-testid="mlops-productionize"]').click()
    assert wait_for_run_end(page, lab) == "succeeded", sidebar.inner_text()
    selector = f'{SIDEBAR} [data-testid="mlops-model"][data-model="{name}"]'
    model = page.locator(selector)
    version = model.get_attribute("data-version")
    assert version
    model.locator('[data-testid="mlops-promote-check"]').click()
    page.wait_for_function(
        "(selector) => document.querySelector(selector)?.dataset.phase === 'checked'",
        arg=f'{selector} [data-testid="mlops-promote"]',
        timeout=PROMOTE_TIMEOUT * 1000,
    )
    return model.locator('[data-testid="mlops-promote"]'), version


def check_rows(promote: Any) -> dict[str, str]:
    """The checks shown: name -> its line (✓ or ✗, then the figures)."""
    rows = promote.locator('[data-testid="mlops-promote-check-row"]')
    return {
        rows.nth(i).get_attribute("data-check"): rows.nth(i).inner_text()
        for i in range(rows.count())
    }


def test_promote_a_succeeded_runs_model_from_the_sidebar(
    jupyter: JupyterLab, page: Any, record_property: Any
) -> None:
    errors = collect_page_errors(page)
    path = wine_with_a_gate(jupyter, "wine-classifier", 0.5)

    # Promote: the dry run's checks, each with ✓ and its figures; nothing moved yet.
    promote, version = run_and_check(page, jupyter, path, "wine-classifier")
    checks = check_rows(promote)
    assert "min accuracy" in checks and "smoke test" in checks, checks
    assert all(text.startswith("✓") for text in checks.values()), checks
    assert "0.5" in checks["min accuracy"]  # the declared threshold, with the figure
    summary = promote.locator('[data-testid="mlops-promote-summary"]').inner_text()
    assert summary == f"Checks for v{version} → champion: all {len(checks)} checks passed"
    client = tracking_client(jupyter)
    assert "champion" not in client.get_registered_model("wine-classifier").aliases

    # Confirm: the alias moves, and the sidebar says so.
    confirm = promote.locator('[data-testid="mlops-promote-confirm"]')
    assert confirm.is_enabled() and confirm.inner_text() == "Promote to champion"
    screenshot_sidebar(page, "promote-checks", record_property)
    confirm.click()
    outcome = promote.locator('[data-testid="mlops-promote-outcome"]')
    outcome.wait_for(timeout=PROMOTE_TIMEOUT * 1000)
    assert outcome.get_attribute("data-outcome") == "promoted", promote.inner_text()
    assert outcome.inner_text() == f"✓ v{version} is now champion"
    screenshot_sidebar(page, "promote-sidebar", record_property)

    # In MLflow: the alias names the version the run registered.
    champion = client.get_model_version_by_alias("wine-classifier", "champion")
    assert str(champion.version) == version
    assert errors == []


def test_a_failed_check_keeps_promote_to_champion_disabled_with_the_reason(
    jupyter: JupyterLab, page: Any, record_property: Any
) -> None:
    errors = collect_page_errors(page)
    path = wine_with_a_gate(jupyter, "wine-strict", 2.0)  # no accuracy reaches it
    promote, version = run_and_check(page, jupyter, path, "wine-strict")
    checks = check_rows(promote)
    assert checks["min accuracy"].startswith("✗") and "2" in checks["min accuracy"], checks
    summary = promote.locator('[data-testid="mlops-promote-summary"]').inner_text()
    assert summary.startswith(f"Checks for v{version} → champion: 1 of ")
    confirm = promote.locator('[data-testid="mlops-promote-confirm"]')
    assert confirm.is_disabled()
    reason = "not promotable: min accuracy failed"
    assert confirm.get_attribute("title") == reason
    assert promote.locator('[data-testid="mlops-promote-reason"]').inner_text() == reason
    screenshot_sidebar(page, "promote-refused", record_property)
    versions = tracking_client(jupyter).get_registered_model("wine-strict")
    assert "champion" not in versions.aliases
    assert errors == []
