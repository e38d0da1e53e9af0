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
DECLARED = {"min": {"accuracy": 0.5}}  # the gate the notebook declares: one threshold


def wine_with_a_gate(lab: JupyterLab) -> str:
    """The wine example with a declared promotion gate; its path under the server root."""
    target = lab.root / "wine_classifier.ipynb"
    shutil.copy(EXAMPLES / "wine_classifier.ipynb", target)
    nb = nbformat.read(target, as_version=4)
    nb.metadata["jupyter_mlops"]["promotion"] = DECLARED
    nbformat.write(nb, target)
    return target.name


def test_promote_a_succeeded_runs_model_from_the_sidebar(
    jupyter: JupyterLab, page: Any, record_property: Any
) -> None:
    errors = collect_page_errors(page)
    path = wine_with_a_gate(jupyter)
    open_notebook_alone(page, jupyter, path)
    sidebar = open_sidebar(page)

    # A real run from the sidebar: fewer trees make it quicker.
    field = sidebar.locator('.jp-mlops-param[data-param="n_estimators"] input')
    field.wait_for(timeout=UI_TIMEOUT * 1000)
    field.fill("10")
    sidebar.locator('[data-testid="mlops-productionize"]').click()
    assert wait_for_run_end(page, jupyter) == "succeeded", sidebar.inner_text()
    model = sidebar.locator('[data-testid="mlops-model"][data-model="wine-classifier"]')
    version = model.get_attribute("data-version")
    assert version

    # Promote: the dry run's checks, each with ✓ and its figures; nothing moved yet.
    model.locator('[data-testid="mlops-promote-check"]').click()
    promote = model.locator('[data-testid="mlops-promote"]')
    page.wait_for_function(
        """(selector) => document.querySelector(selector)?.dataset.phase === 'checked'""",
        arg=f'{SIDEBAR} [data-testid="mlops-model"][data-model="wine-classifier"] '
        '[data-testid="mlops-promote"]',
        timeout=PROMOTE_TIMEOUT * 1000,
    )
    rows = promote.locator('[data-testid="mlops-promote-check-row"]')
    checks = {
        rows.nth(i).get_attribute("data-check"): rows.nth(i).inner_text()
        for i in range(rows.count())
    }
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
