# ruff: noqa: F811 (the browser and page fixtures are imported, then named as arguments)
"""MLflow's own UI, in headless Chromium, shows the ML engineer where a model came from and
how good it is (issue 13): the logged model's page (source run, metrics, version), the
experiment's Models tab, the registry's *Compare versions*, the parent run's registered
model and the model card.

One module fixture does the expensive part once: a real `mlflow server` on 127.0.0.1 (sqlite
store, `--artifacts-destination`) and two real runs of the wine example against it over HTTP,
with different parameters, so that there are two versions to compare. The pages are opened in
MLflow's model-training view (`?workflowType=machine_learning`; its default is the GenAI view).

Screenshots of each page are kept in test-artifacts/mlflow-ui/; set UPDATE_SCREENSHOTS=1 to
also refresh the README's copies, docs/images/mlflow-*.png (off by default, so running the
tests leaves the tree clean).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import browser, page, require_chromium  # noqa: F401
from browser import keep_screenshot as browser_screenshot
from conftest import EXAMPLES, ROOT, cli
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow_helpers import MlflowServer
from playwright.sync_api import expect

ARTIFACTS = ROOT / "test-artifacts" / "mlflow-ui"
README_IMAGES = ROOT / "docs" / "images"
NOTEBOOK = "wine_classifier.ipynb"
PIPELINE = "wine-classifier"  # the example's pipeline and registered model name
TREES = ("5", "200")  # n_estimators of the two runs: two versions that score differently
EVALUATION = ("accuracy", "f1_macro")  # what the example's evaluate stage measures
ML_VIEW = "workflowType=machine_learning"
LOAD_TIMEOUT = 60_000  # ms: the UI fetches each page's data after its bundle loads
# MLflow's assistant panel opens itself on a local server's first page and covers a third of
# it; a browser where it has opened once before keeps it closed.
NO_ASSISTANT = (
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
)


pytestmark = pytest.mark.slow


@dataclass
class Store:
    """The server's URI and what the two runs wrote to it, keyed by n_estimators."""

    uri: str
    client: MlflowClient
    experiment_id: str
    parents: dict[str, Run]
    versions: dict[str, ModelVersion]

    def url(self, route: str) -> str:
        """A page of the server's UI, in the model-training view."""
        separator = "&" if "?" in route else "?"
        return f"{self.uri}/#/{route}{separator}{ML_VIEW}"

    def model_id(self, trees: str) -> str:
        """The logged model behind the version (its source is `models:/<model_id>`)."""
        source = self.versions[trees].source
        assert source.startswith("models:/m-"), source
        return source.removeprefix("models:/")

    def stage_run(self, trees: str, stage: str) -> Run:
        parent = self.parents[trees].info.run_id
        [run] = [
            run
            for run in self.client.search_runs(
                [self.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
            )
            if run.data.tags.get("jupyter_mlops.stage") == stage
        ]
        return run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    require_chromium()  # no browser: don't start a server and train for nothing
    folder = tmp_path_factory.mktemp("mlflow-ui")
    shutil.copy(EXAMPLES / NOTEBOOK, folder)
    with MlflowServer(folder / "server") as uri:
        for trees in TREES:
            args = ("run", NOTEBOOK, "--tracking-uri", uri, "-p", "n_estimators", trees)
            done = cli(*args, cwd=folder)
            assert done.returncode == 0, done.stdout + done.stderr
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(PIPELINE)
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
        parents = {
            run.data.params["n_estimators"]: run
            for run in runs
            if "mlflow.parentRunId" not in run.data.tags
        }
        by_run = {parent.info.run_id: trees for trees, parent in parents.items()}
        versions = {
            by_run[version.run_id]: version
            for version in client.search_model_versions(f"name='{PIPELINE}'")
        }
        assert sorted(parents) == sorted(versions) == sorted(TREES)
        yield Store(uri, client, experiment.experiment_id, parents, versions)


def open_page(page: Any, url: str, ready: str) -> Any:
    """Open `url` and wait until its main area shows `ready`; returns the main area."""
    page.context.add_init_script(NO_ASSISTANT)
    page.goto(url)
    main = page.locator("main")
    expect(main.get_by_text(ready, exact=True).first).to_be_visible(timeout=LOAD_TIMEOUT)
    return main


def link_to(main: Any, route: str) -> Any:
    """The first link in the main area whose target contains `route`."""
    return main.locator(f'a[href*="{route}"]').first


def keep_screenshot(main: Any, name: str, record_property: Any) -> Path:
    """Save the page's main area as test-artifacts/mlflow-ui/NAME.png and say where (printed,
    seen with -s, and as a property of the test in JUnit XML); with UPDATE_SCREENSHOTS=1 also
    as the README's docs/images/mlflow-NAME.png."""
    path = browser_screenshot(main, ARTIFACTS, name, record_property, min_bytes=10_000)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, README_IMAGES / f"mlflow-{name}.png")
    return path


def displayed(value: float) -> str:
    """A metric as the logged model's page prints it (JavaScript's shortest round trip,
    which is Python's repr for a float)."""
    return repr(value)


def test_the_logged_model_page_shows_its_source_run_metrics_and_version(
    store: Store, page: Any, record_property: Any
) -> None:
    trees = TREES[1]
    model_id = store.model_id(trees)
    logged = store.client.get_logged_model(model_id)
    train = store.stage_run(trees, "train")
    evaluate = store.stage_run(trees, "evaluate")
    assert logged.source_run_id == train.info.run_id

    main = open_page(
        page,
        store.url(f"experiments/{store.experiment_id}/models/{model_id}"),
        "About this logged model",
    )
    # About this logged model: the source run by name and id, and the notebook it came from.
    source_run = link_to(main, f"/runs/{train.info.run_id}")
    expect(source_run).to_have_text(train.info.run_name)
    expect(main.get_by_text(train.info.run_id).first).to_be_visible()
    expect(main.get_by_text(NOTEBOOK, exact=True).first).to_be_visible()
    # Its evaluation metrics, each from the evaluate stage's run.
    metrics = {metric.key: metric for metric in logged.metrics}
    assert set(EVALUATION) <= set(metrics)
    for key in EVALUATION:
        assert metrics[key].run_id == evaluate.info.run_id
        assert metrics[key].value == evaluate.data.metrics[key]
        expect(main.get_by_text(key, exact=True).first).to_be_visible()
        expect(main.get_by_text(displayed(metrics[key].value)).first).to_be_visible()
    expect(link_to(main, f"/runs/{evaluate.info.run_id}")).to_be_visible()
    # Its registered version, so it is not "Not registered".
    version = store.versions[trees].version
    expect(link_to(main, f"/models/{PIPELINE}/versions/{version}")).to_be_visible()
    expect(main.get_by_text("Not registered")).to_have_count(0)
    keep_screenshot(main, "logged-model", record_property)


def test_the_models_tab_lists_each_model_with_its_source_run_and_version(
    store: Store, page: Any, record_property: Any
) -> None:
    page.set_viewport_size({"width": 1600, "height": 700})  # every column of the grid in view
    main = open_page(
        page, store.url(f"experiments/{store.experiment_id}/models"), "Registered models"
    )
    for trees in TREES:
        train = store.stage_run(trees, "train")
        version = store.versions[trees].version
        # ag-grid splits a row between its pinned and scrolled parts: join them by row index.
        source = main.locator(f'.ag-row:has(a[href*="/runs/{train.info.run_id}"])').first
        expect(source).to_contain_text(train.info.run_name, timeout=LOAD_TIMEOUT)
        row = main.locator(f'.ag-row[row-index="{source.get_attribute("row-index")}"]')
        expect(row.locator(f'a[href*="/models/{store.model_id(trees)}"]')).to_have_count(1)
        expect(row.locator(f'a[href*="/models/{PIPELINE}/versions/{version}"]')).to_have_count(1)
        expect(row.filter(has_text=f"v{version}")).not_to_have_count(0)
    keep_screenshot(main, "models-tab", record_property)


def test_compare_versions_shows_the_evaluation_metrics_of_both_versions(
    store: Store, page: Any, record_property: Any
) -> None:
    main = open_page(page, store.url(f"models/{urllib.parse.quote(PIPELINE)}"), "Versions")
    # As the engineer does it: tick both versions, then Compare.
    for trees in TREES:
        row = main.get_by_role("row").filter(has_text=f"Version {store.versions[trees].version}")
        row.locator("input[type=checkbox]").check()
    main.get_by_test_id("compareButton").click()
    expect(main.get_by_text("Comparing 2 Versions")).to_be_visible(timeout=LOAD_TIMEOUT)

    def cells(header: str) -> list[str]:
        """The table row whose header cell reads `header`, one text per version column."""
        row = main.locator("tr").filter(has=page.locator("th", has_text=header)).first
        expect(row.locator("td").first).to_be_visible(timeout=LOAD_TIMEOUT)
        return [text.strip() for text in row.locator("td").all_inner_texts()]

    columns = cells("Model Version:")
    assert sorted(columns) == sorted(store.versions[trees].version for trees in TREES)
    by_trees = {trees: columns.index(store.versions[trees].version) for trees in TREES}
    assert [cells("n_estimators")[by_trees[trees]] for trees in TREES] == list(TREES)
    for key in EVALUATION:
        shown = cells(key)
        for trees in TREES:
            value = store.stage_run(trees, "evaluate").data.metrics[key]
            assert float(shown[by_trees[trees]]) == pytest.approx(value, abs=1e-3), key
    # The two versions can be told apart by their evaluation.
    assert len(set(cells(EVALUATION[0]))) == len(TREES)
    keep_screenshot(main, "compare-versions", record_property)


def test_the_parent_run_page_shows_the_registered_model(
    store: Store, page: Any, record_property: Any
) -> None:
    trees = TREES[1]
    parent = store.parents[trees]
    main = open_page(
        page,
        store.url(f"experiments/{store.experiment_id}/runs/{parent.info.run_id}"),
        "Registered models",
    )
    expect(main.get_by_text(parent.info.run_name).first).to_be_visible()
    version = store.versions[trees].version
    registered = link_to(main, f"/models/{PIPELINE}/versions/{version}")
    expect(registered).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(registered).to_contain_text(PIPELINE)
    keep_screenshot(main, "parent-run", record_property)


def test_the_model_card_renders_with_pinned_uri_metrics_and_links_to_the_training_view(
    store: Store, page: Any, record_property: Any
) -> None:
    trees = TREES[1]
    version = store.versions[trees].version
    main = open_page(
        page,
        store.url(f"models/{urllib.parse.quote(PIPELINE)}/versions/{version}"),
        "Schema",
    )
    card = main.get_by_test_id("note-editor-preview-content").first
    expect(card).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(card).to_contain_text(f"models:/{PIPELINE}/{version}")
    # The metrics are a rendered table, not markdown source.
    expect(card.locator("table").filter(has_text=EVALUATION[0]).first).to_be_visible()
    # The link to the run that trained it opens that run in the model-training view.
    parent = store.parents[trees].info.run_id
    run_link = link_to(card, f"/runs/{parent}")
    expect(run_link).to_have_attribute("href", re.compile(rf"^#/.*\?(.*&)?{ML_VIEW}"))
    keep_screenshot(main, "model-card", record_property)
