"""The model card (a version's description) as a function of real inputs.

A real bundle (the wine example, or a small notebook that reads a CSV), real MLflow runs and
versions in a sqlite store at a non-default path; the stages' outcomes and records are built
directly, so no pipeline runs and the tests stay fast. What an engineer acts on is checked:
version-pinned URIs, the alias only as a note, links that open MLflow's model-training view,
the data the model saw, the command that reproduces it, metrics against the previous version
and the champion, cached stages, rounded figures.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import chromium
from conftest import EXAMPLES, ROOT, code, notebook, write
from mlflow_helpers import MlflowServer

from jupyter_mlops.artifacts import StageRecord, VariableInfo
from jupyter_mlops.bundle import Bundle
from jupyter_mlops.pipeline import convert
from jupyter_mlops.provenance import TIMES
from jupyter_mlops.tracking.card import commit_url, delta, duration, model_card, number
from jupyter_mlops.tracking.registry import RegisteredModel
from jupyter_mlops.tracking.runs import PipelineTracker, StageOutcome

VIEW = "?workflowType=machine_learning"
ARTIFACTS = ROOT / "test-artifacts" / "model-card"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WINE_GIT = {
    "commit": COMMIT,
    "branch": "main",
    "path": "example_notebooks/wine_classifier.ipynb",
    "dirty": "false",
    "repo_url": "git@github.com:acme/wine.git",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sqlite store that is not ./mlflow.db, shared by the module's tests (each test names
    its own registered model). Its experiments keep their artifacts beside it: MLflow puts
    them in ./mlruns of the folder the experiment is created from."""
    folder = tmp_path_factory.mktemp("stores")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield f"sqlite:///{folder / 'cards.db'}"


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    return convert(EXAMPLES / "wine_classifier.ipynb", tmp_path_factory.mktemp("wine")).bundle


def plain(card: str) -> str:
    """The card without the em spaces that pad its table cells."""
    return card.replace("&emsp;", "")


def variable(name: str, summary: dict[str, Any] | None = None) -> VariableInfo:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return VariableInfo(name, "object", digest, 0, 1, 0, summary or {})


def frame(name: str, rows: int, columns: int) -> VariableInfo:
    return variable(
        name,
        {
            "kind": "dataframe",
            "rows": rows,
            "columns": {f"c{i}": "float64" for i in range(columns)},
        },
    )


def wine_records(metrics: dict[str, float]) -> dict[str, StageRecord]:
    """What the wine pipeline's stages leave behind, as their records say it."""
    return {
        "load": StageRecord("load", "o-load", {"df": frame("df", 178, 14)}),
        "split": StageRecord(
            "split",
            "o-split",
            {
                "X_train": frame("X_train", 124, 13),
                "y_train": variable("y_train", {"kind": "series", "rows": 124, "dtype": "int64"}),
                "X_test": variable(
                    "X_test", {"kind": "ndarray", "shape": [54, 13], "dtype": "float64"}
                ),
                "y_test": variable("y_test", {"kind": "series", "rows": 54, "dtype": "int64"}),
                "features": variable("features"),
            },
        ),
        "train": StageRecord(
            "train",
            "o-train",
            {"model": variable("model")},
            models={"model": {"flavor": "sklearn", "model_id": "m-0123abcd"}},
        ),
        "evaluate": StageRecord("evaluate", "o-evaluate", {}, metrics=metrics),
        "report": StageRecord("report", "o-report"),
    }


def pipeline_run(
    tracker: PipelineTracker,
    parameters: dict[str, Any],
    records: dict[str, StageRecord],
    cached: dict[str, str] | None = None,
    tmp_path: Path | None = None,
) -> list[StageOutcome]:
    """A real parent run with a child run per stage, ended with its metrics on the parent
    (as `PipelineTracker.end` leaves it), and the stages' outcomes."""
    tracker.start(parameters, (tmp_path or Path("/nonexistent")) / "run")
    outcomes = []
    for position, stage in enumerate(tracker.bundle.stages, 1):
        run_id = tracker.start_stage(stage, position)
        source = (cached or {}).get(stage.name)
        took = 0.0 if source else 3.94 * position
        outcomes.append(
            StageOutcome(stage.name, run_id, "FINISHED", took, records.get(stage.name), source)
        )
        tracker.client.set_terminated(run_id, "FINISHED")
    for key, value in {k: v for r in records.values() for k, v in r.metrics.items()}.items():
        tracker.client.log_metric(tracker.parent_run_id, key, value)
    tracker.client.set_terminated(tracker.parent_run_id, "FINISHED")
    return outcomes


def new_version(
    tracker: PipelineTracker, name: str, outcomes: list[StageOutcome]
) -> RegisteredModel:
    """Register the train stage's model as the next version of `name`, as the registry does
    (its run is the pipeline's parent run), and describe it."""
    if not tracker.client.search_registered_models(f"name = '{name}'"):
        tracker.client.create_registered_model(name)
    train = next(o for o in outcomes if o.stage == "train")
    version = tracker.client.create_model_version(
        name, f"runs:/{tracker.parent_run_id}/model", run_id=tracker.parent_run_id
    )
    model = RegisteredModel(
        name=name,
        version=str(version.version),
        variable="model",
        stage="train",
        uri=f"models:/{name}/{version.version}",
        alias_uri=f"models:/{name}@candidate",
        flavor="sklearn",
        model_id="m-0123abcd",
        run_id=train.run_id,
    )
    tracker.client.set_registered_model_alias(name, "candidate", model.version)
    return model


def wine_tracker(store: str, bundle: Bundle, git: dict[str, str] | None = None) -> PipelineTracker:
    tracker = PipelineTracker(store, bundle)
    tracker.git = dict(WINE_GIT if git is None else git)
    return tracker


def defaults(bundle: Bundle, **changed: Any) -> dict[str, Any]:
    return {**{p.name: p.default for p in bundle.parameters}, **changed}


def card_for(
    store: str,
    bundle: Bundle,
    name: str,
    metrics: dict[str, float],
    git: dict[str, str] | None = None,
    cached: dict[str, str] | None = None,
    **changed: Any,
) -> tuple[str, PipelineTracker, RegisteredModel, list[StageOutcome]]:
    """One pipeline run of `bundle`, its model registered under `name`, and its card."""
    tracker = wine_tracker(store, bundle, git)
    outcomes = pipeline_run(tracker, defaults(bundle, **changed), wine_records(metrics), cached)
    tracker.git = dict(WINE_GIT if git is None else git)  # start() read the repository's
    model = new_version(tracker, name, outcomes)
    return model_card(tracker, model, outcomes), tracker, model, outcomes


def section(card: str, title: str) -> str:
    """The text of one `## title` section."""
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", card, re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r} in:\n{card}"
    return match.group(1)


# --- the version, pinned ------------------------------------------------------------------


def test_the_card_pins_its_version_and_notes_the_alias(store: str, wine: Bundle) -> None:
    card, _, model, _ = card_for(store, wine, "pinned", {"accuracy": 0.9})
    assert card.splitlines()[0] == f"# pinned v{model.version}"
    use = section(card, "Use it")
    assert f'mlflow.pyfunc.load_model("models:/pinned/{model.version}")' in use
    assert f'mlflow models serve -m "models:/pinned/{model.version}"' in use
    assert "@candidate" not in card and "@" not in use
    assert "Registered with alias `candidate` at registration; aliases move" in card


def test_the_card_links_the_runs_the_logged_model_and_the_commit(store: str, wine: Bundle) -> None:
    card, tracker, model, outcomes = card_for(store, wine, "linked", {"accuracy": 0.9})
    experiment = tracker.experiment_id
    assert experiment
    heading = card.split("## ")[0]
    assert re.fullmatch(r"wine-classifier #\d+", tracker.run_name)  # numbered per pipeline
    parent = f"[{tracker.run_name}](#/experiments/{experiment}/runs/{tracker.parent_run_id}{VIEW})"
    assert f"Trained by the pipeline `wine-classifier` in its run {parent}" in heading
    assert f"(#/experiments/{experiment}/runs/{model.run_id}{VIEW})" in heading  # trained it
    assert f"[`m-0123abcd`](#/experiments/{experiment}/models/m-0123abcd{VIEW})" in heading
    stages = section(card, "Stages")
    for outcome in outcomes:
        assert (
            f"[{outcome.run_id[:8]}](#/experiments/{experiment}/runs/{outcome.run_id}{VIEW})"
            in stages
        )
    # Every link into the UI is relative and opens the model-training view.
    links = re.findall(r"\]\((#/[^)]*)\)", card)
    assert len(links) >= len(outcomes) + 3
    assert all(link.endswith(VIEW) for link in links), links
    reproduce = section(card, "Reproduce")
    assert f"[`{COMMIT[:12]}`](https://github.com/acme/wine/commit/{COMMIT})" in reproduce


@pytest.mark.parametrize(
    ("remote", "page"),
    [
        ("https://github.com/acme/wine.git", "https://github.com/acme/wine/commit/C"),
        ("https://github.com/acme/wine", "https://github.com/acme/wine/commit/C"),
        ("git@github.com:acme/wine.git", "https://github.com/acme/wine/commit/C"),
        ("ssh://git@github.com/acme/wine.git", "https://github.com/acme/wine/commit/C"),
        ("https://gitlab.com/acme/ml/wine.git", "https://gitlab.com/acme/ml/wine/-/commit/C"),
        ("git@gitlab.example.org:acme/wine.git", "https://gitlab.example.org/acme/wine/-/commit/C"),
        (
            "ssh://git@gitlab.example.org:2222/acme/wine.git",
            "https://gitlab.example.org/acme/wine/-/commit/C",
        ),
        ("http://gitlab.internal/acme/wine", "http://gitlab.internal/acme/wine/-/commit/C"),
        ("https://git.example.org/acme/wine.git", None),
        ("/srv/git/wine.git", None),
        ("", None),
    ],
)
def test_the_commit_links_to_github_and_gitlab(remote: str, page: str | None) -> None:
    assert commit_url(remote, "C") == page


def test_a_commit_on_an_unknown_host_is_named_not_linked(store: str, wine: Bundle) -> None:
    git = {**WINE_GIT, "repo_url": "https://git.example.org/acme/wine.git"}
    card, *_ = card_for(store, wine, "unknown-host", {"accuracy": 0.9}, git=git)
    reproduce = section(card, "Reproduce")
    assert f"`{COMMIT}`" in reproduce and "https://git.example.org/acme/wine.git" in reproduce
    assert "/commit/" not in reproduce


# --- data ---------------------------------------------------------------------------------

# Loads a CSV, derives the features, trains on them, evaluates on another CSV.
READER_CELLS = (
    code("import pandas as pd\nfrom sklearn.linear_model import LinearRegression", "setup"),
    code('df = pd.read_csv("data/train.csv")', "stage:load"),
    code('X = df[["a"]].to_numpy()\ny = df["b"].to_numpy()', "stage:features"),
    code("model = LinearRegression().fit(X, y)", "stage:train", "model:model"),
    code(
        'holdout = pd.read_csv("data/holdout.csv")\n'
        'score = model.score(holdout[["a"]], holdout["b"])',
        "stage:evaluate",
        "metrics",
    ),
)


def test_the_data_section_lists_the_datasets_and_the_files_the_loading_stage_read(
    store: str, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    (folder / "data" / "holdout.csv").write_text("a,b\n7,8\n")
    source = write(notebook(*READER_CELLS, model_name="reader"), folder / "reader.ipynb")
    bundle = convert(source, tmp_path / "bundle").bundle
    assert bundle.stage("train").inputs == {"X": "features", "y": "features"}
    records = {
        "load": StageRecord("load", "o1", {"df": frame("df", 3, 2)}),
        "features": StageRecord(
            "features",
            "o2",
            {
                "X": variable("X", {"kind": "ndarray", "shape": [3, 1], "dtype": "int64"}),
                "y": variable("y", {"kind": "ndarray", "shape": [3], "dtype": "int64"}),
            },
        ),
        "train": StageRecord(
            "train", "o3", {"model": variable("model")}, models={"model": {"flavor": "sklearn"}}
        ),
        "evaluate": StageRecord("evaluate", "o4", metrics={"score": 1.0}),
    }
    tracker = PipelineTracker(store, bundle)
    outcomes = pipeline_run(tracker, {}, records, tmp_path=tmp_path)
    card = plain(model_card(tracker, new_version(tracker, "reader", outcomes), outcomes))
    data = section(card, "Data")
    assert "`model` was fitted on `X`." in data
    df, x, y = (variable(n) for n in ("df", "X", "y"))
    assert f"| `df` | load | features | `{df.digest[:12]}` | 3{TIMES}2 |" in data
    assert f"| `X` | features | train | `{x.digest[:12]}` | 3{TIMES}1 |" in data
    assert f"| `y` | features | train | `{y.digest[:12]}` | 3 |" in data
    content = (folder / "data" / "train.csv").read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    assert f"| `data/train.csv` | load | `{sha}` | {len(content)} |" in data
    assert "holdout.csv" not in data  # read by evaluate, after the model was trained


def test_the_data_section_of_a_model_trained_from_library_data(store: str, wine: Bundle) -> None:
    card, *_ = card_for(store, wine, "library-data", {"accuracy": 0.9})
    data = section(plain(card), "Data")
    assert "`model` was fitted on `X_train`." in data
    assert "| `df` | load | split |" in data and f"178{TIMES}14" in data
    assert "| `X_train` | split | train |" in data and f"124{TIMES}13" in data
    assert "| `y_train` | split | train |" in data and "124 rows" in data
    assert "X_test" not in data  # evaluate's, not the model's
    assert "names no files" in data


# --- reproduce ------------------------------------------------------------------------------


def test_the_card_says_how_to_reproduce_the_model(store: str, wine: Bundle) -> None:
    card, *_ = card_for(store, wine, "reproducible", {"accuracy": 0.9}, n_estimators=500)
    reproduce = section(card, "Reproduce")
    commands, params = re.findall(r"```(?:yaml)?\n(.*?)```", reproduce, re.DOTALL)
    assert commands.splitlines() == [
        "git clone git@github.com:acme/wine.git",
        "cd wine",
        f"git checkout {COMMIT}",
        "jupyter-mlops run example_notebooks/wine_classifier.ipynb -f params.yaml",
    ]
    assert yaml.safe_load(params) == defaults(wine, n_estimators=500)
    assert "| n_estimators | `500` (default `200`) |" in plain(section(card, "Parameters"))


def test_reproducing_a_model_from_outside_git(store: str, wine: Bundle) -> None:
    card, *_ = card_for(store, wine, "no-git", {"accuracy": 0.9}, git={})
    reproduce = section(card, "Reproduce")
    assert "Not in a git repository" in reproduce and "git checkout" not in reproduce
    assert "jupyter-mlops run wine_classifier.ipynb -f params.yaml" in reproduce
    assert f"`{wine.source_sha256}`" in reproduce


# --- metrics ------------------------------------------------------------------------------


def test_metrics_against_the_previous_version_and_the_champion(store: str, wine: Bundle) -> None:
    _, tracker, first, _ = card_for(store, wine, "compared", {"accuracy": 0.85})
    tracker.client.set_registered_model_alias("compared", "champion", first.version)
    card_for(store, wine, "compared", {"accuracy": 0.95, "f1_macro": 0.9})
    card, _, third, _ = card_for(
        store, wine, "compared", {"accuracy": 0.9074074, "f1_macro": 0.90123}
    )
    metrics = plain(section(card, "Metrics"))
    assert third.version == "3"
    assert "| metric | stage | v3 (this) | v2 (previous) | Δ | v1 (`champion`) | Δ |" in metrics
    assert "| accuracy | evaluate | 0.9074 | 0.95 | -0.0426 | 0.85 | +0.0574 |" in metrics
    assert "| f1_macro | evaluate | 0.9012 | 0.9 | +0.0012 | n/a | n/a |" in metrics
    assert "duration_s" not in metrics


def test_the_champion_that_is_the_previous_version_is_one_column(store: str, wine: Bundle) -> None:
    _, tracker, first, _ = card_for(store, wine, "champion-previous", {"accuracy": 0.8})
    tracker.client.set_registered_model_alias("champion-previous", "champion", first.version)
    card, *_ = card_for(store, wine, "champion-previous", {"accuracy": 0.8})
    metrics = plain(section(card, "Metrics"))
    assert "| metric | stage | v2 (this) | v1 (previous, `champion`) | Δ |" in metrics
    assert "| accuracy | evaluate | 0.8 | 0.8 | ±0 |" in metrics


def test_the_first_version_has_nothing_to_compare_with(store: str, wine: Bundle) -> None:
    card, *_ = card_for(store, wine, "first", {"accuracy": 0.9})
    metrics = plain(section(card, "Metrics"))
    assert (
        "| metric | stage | v1 (this) |" in metrics and "| accuracy | evaluate | 0.9 |" in metrics
    )
    assert (
        "first version of `first`" in metrics and "No version holds the alias `champion`" in metrics
    )


# --- stages -------------------------------------------------------------------------------


def test_a_cached_stage_says_which_run_it_came_from(store: str, wine: Bundle) -> None:
    _, tracker, _, earlier = card_for(store, wine, "cached", {"accuracy": 0.9})
    split = next(o.run_id for o in earlier if o.stage == "split")
    cached = {"split": split, "load": "20261202-120000-abcd"}  # a run folder, not an MLflow run
    card, tracker, *_ = card_for(store, wine, "cached", {"accuracy": 0.9}, cached=cached)
    stages = plain(section(card, "Stages"))
    rows = {line.split(" | ")[1]: line for line in stages.splitlines() if line.startswith("| ")}
    experiment = tracker.experiment_id
    assert (
        f"| cached from run [{split[:8]}](#/experiments/{experiment}/runs/{split}{VIEW}) | — |"
        in rows["split"]
    )
    assert "| cached from run `20261202-120000-abcd` | — |" in rows["load"]
    assert "FINISHED | 0.0" not in stages
    assert [line.split(" | ")[1] for line in rows.values()][1:] == wine.stage_names


def test_figures_are_rounded_for_people(store: str, wine: Bundle) -> None:
    card, *_ = card_for(store, wine, "rounded", {"accuracy": 0.9074074074})
    stages = plain(section(card, "Stages"))
    assert "| FINISHED | 3.9 s |" in stages and "| FINISHED | 20 s |" in stages  # 3.94, 19.7
    assert "0.9074074" not in card and "| 0.9074 |" in plain(section(card, "Metrics"))
    assert [duration(s) for s in (0.04, 3.94, 42.4, 125.2, 3725)] == [
        "0.0 s",
        "3.9 s",
        "42 s",
        "2 min 5 s",
        "1 h 2 min",
    ]
    assert [number(v) for v in (0.9074074, 12345.678, 3.0, 1.5e-7, None, float("nan"))] == [
        "0.9074",
        "12346",
        "3",
        "1.500e-07",
        "n/a",
        "nan",
    ]
    assert [delta(*pair) for pair in ((0.9, 0.9), (10.0, 7.0), (None, 1.0), (0.5, 1.5e-7))] == [
        "±0",
        "+3",
        "n/a",
        "+5.000e-01",
    ]


# --- in MLflow's own UI ---------------------------------------------------------------------


@pytest.mark.slow
def test_mlflow_ui_renders_the_card_and_its_links_open_the_training_view(
    tmp_path: Path, wine: Bundle
) -> None:
    """The card in MLflow 3.17's UI, behind a real `mlflow server`: its sections and tables
    render, and its link to the pipeline run opens the run in the model-training view, not the
    GenAI view a fresh browser would otherwise get. Screenshot: test-artifacts/model-card/."""
    with MlflowServer(tmp_path / "server") as uri, chromium() as browser:
        card, tracker, model, _ = card_for(uri, wine, "shown", {"accuracy": 0.9})
        tracker.client.update_model_version("shown", model.version, description=card)
        context = browser.new_context(viewport={"width": 1400, "height": 2600})
        page = context.new_page()
        page.goto(f"{uri}/#/models/shown/versions/{model.version}{VIEW}")
        page.wait_for_selector("h2:has-text('Reproduce')", timeout=120_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "card.png"))
        assert page.locator("h1", has_text=f"shown v{model.version}").count() == 1
        assert page.locator("table:has(th:has-text('metric'))").count() == 1
        assert page.locator("pre", has_text=f"models:/shown/{model.version}").count() == 2
        link = page.locator("a[target=_blank]", has_text=tracker.run_name).first
        with context.expect_page() as opened:
            link.click()
        run = opened.value
        run.wait_for_selector(f"text={tracker.run_name}", timeout=120_000)
        assert f"runs/{tracker.parent_run_id}?workflowType=machine_learning" in run.url
        run.wait_for_selector("text=Model registry")  # the model-training view's side bar
        assert run.locator("text=Observability").count() == 0  # the GenAI view's
        run.screenshot(path=str(ARTIFACTS / "pipeline-run-from-card.png"))
        context.close()


def test_a_notebook_is_dirty_when_its_code_changed_not_when_jupyterlab_filled_it_in(tmp_path):
    """Opening a committed notebook in JupyterLab fills in `language_info` and saving keeps
    outputs: the commit still holds the code that ran (issue 15). Code, tags and settings
    changing is a change."""
    import subprocess

    import nbformat
    from conftest import code, notebook, write

    from jupyter_mlops.tracking.runs import git_info

    def commit() -> None:
        subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "nb"],
            cwd=tmp_path,
            check=True,
        )

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    nb = notebook(code("x = 1", "stage:a"), code("y = x + 1", "stage:b"), model_name="m")
    path = write(nb, tmp_path / "nb.ipynb")
    commit()
    assert git_info(path)["dirty"] == "false"

    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "x"}
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    nb.cells[0].execution_count = 3
    write(nb, path)
    assert git_info(path)["dirty"] == "false"

    for change in (
        lambda n: n.cells[1].update(source="y = x + 2"),
        lambda n: n.cells[1].metadata.update(tags=["stage:c"]),
        lambda n: n.metadata.jupyter_mlops.update(model_name="other"),
    ):
        changed = notebook(code("x = 1", "stage:a"), code("y = x + 1", "stage:b"), model_name="m")
        change(changed)
        write(changed, path)
        assert git_info(path)["dirty"] == "true"

    path.write_text("not a notebook any more")
    assert git_info(path)["dirty"] == "true"

    # A copy nobody committed, beside a committed notebook of the same name elsewhere: dirty.
    (tmp_path / "experiments").mkdir()
    copy = write(nb, tmp_path / "experiments" / "nb.ipynb")
    path.unlink()
    commit_again = notebook(code("x = 1", "stage:a"), code("y = x + 1", "stage:b"), model_name="m")
    write(commit_again, path)
    assert git_info(copy)["dirty"] == "true"
