# ruff: noqa: F811 (the jupyter, browser and page fixtures are imported)
"""The panel in a real JupyterLab page, in headless Chromium: rendered, run, updated live.

Set UPDATE_SCREENSHOTS=1 to refresh the README's screenshot, docs/images/widget-panel.png,
from the finished run (off by default, so running the tests leaves the tree clean).
"""

from __future__ import annotations

import os
import shutil

import pytest
from browser import browser, jupyter, open_notebook, page, run_all_cells  # noqa: F401
from conftest import EXAMPLES, ROOT, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

pytestmark = pytest.mark.slow

SCREENSHOT = ROOT / "docs" / "images" / "widget-panel.png"
WINE_STAGES = ["load", "split", "train", "evaluate", "report"]


def test_the_panel_renders_runs_and_updates_live(jupyter, page, tmp_path):
    page.set_viewport_size({"width": 1280, "height": 1500})  # the whole panel on screen
    shutil.copy(EXAMPLES / "wine_classifier.ipynb", jupyter.root)
    write(
        notebook(
            code(
                "from jupyter_mlops.widgets import PipelinePanel\n"
                'panel = PipelinePanel("wine_classifier.ipynb")\n'
                "panel"
            )
        ),
        jupyter.root / "panel.ipynb",
    )
    open_notebook(page, jupyter, "panel.ipynb")
    run_all_cells(page)
    panel = page.locator(".jupyter-mlops-panel")
    panel.wait_for(timeout=60_000)
    for name in WINE_STAGES:
        assert panel.get_by_text(name, exact=True).first.is_visible()
    assert panel.locator(".widget-label", has_text="n_estimators").is_visible()

    panel.get_by_role("button", name="Run").click()  # its name has the icon too
    # The click handler returned long ago: what follows arrives from the run's thread.
    panel.get_by_text("▸ running").first.wait_for(timeout=60_000)
    panel.get_by_text("✓ done").first.wait_for(timeout=120_000)
    panel.get_by_text("succeeded", exact=True).wait_for(timeout=180_000)
    assert panel.get_by_text("✓ done").count() == len(WINE_STAGES)
    assert panel.get_by_text("models:/wine-classifier/1").first.is_visible()
    parent, children = pipeline_runs(client_for(jupyter.root), "wine-classifier")
    assert parent.info.status == "FINISHED" and sorted(children) == sorted(WINE_STAGES)
    assert panel.get_by_text(parent.info.run_id).is_visible()

    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "panel.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


def test_a_panel_for_the_notebook_it_runs_in(jupyter, page):
    write(
        notebook(
            code("rows: int = 3", "parameters"),
            code("values = list(range(rows))", "stage:make"),
            code("total = sum(values)", "stage:add"),
            code(
                "from jupyter_mlops.widgets import PipelinePanel\nPipelinePanel.this_notebook()",
                "skip",
            ),
        ),
        jupyter.root / "work" / "itself.ipynb",
    )
    open_notebook(page, jupyter, "work/itself.ipynb")
    run_all_cells(page)
    panel = page.locator(".jupyter-mlops-panel")
    panel.wait_for(timeout=60_000)
    assert panel.get_by_text("itself.ipynb").is_visible()
    for name in ("make", "add"):
        assert panel.get_by_text(name, exact=True).first.is_visible()
