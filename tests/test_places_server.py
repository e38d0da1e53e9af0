# ruff: noqa: F811 (the browser and page fixtures are imported, then named as arguments)
"""The Jupyter server follows the "where things live" rule per notebook, as the command line
does (issue 15): each notebook's runs go to its project's store and run folders (the top
level of its git repository, else the server's root folder), a run from a terminal is in the
same history and store, each store's MLflow UI is served behind the server, and explicit
settings still give one store for everything.

Real `jupyter lab` servers (one per module fixture, over REST with their token), real git
repositories, real runs of tiny notebooks, real `mlflow ui` processes behind
jupyter-server-proxy; the browser test looks at what the sidebar and the Runs panel say.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import (  # noqa: F401
    JupyterLab,
    browser,
    collect_page_errors,
    jupyter_lab,
    open_notebook,
    page,
    run_command,
)
from conftest import cli, code, notebook, wait_for, write
from mlflow import MlflowClient

from jupyter_mlops.places import project_root
from jupyter_mlops.server.mlflow_ui import store_path

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 300  # seconds: runs of three notebooks at once on a loaded 2-core machine
UI_TIMEOUT = 150  # seconds: the first request to a store's UI starts `mlflow ui`
MODEL = "b-rule"  # what repo B's notebook registers


def tally(path: Path, pipeline: str, *extra: Any, **settings: Any) -> Path:
    """A two-stage notebook with one parameter and a metric (`total` 1 for n=2)."""
    return write(
        notebook(
            code("n: int = 2", "parameters"),
            code("values = list(range(n))", "stage:make"),
            code("total = sum(values)", "stage:add", "metrics"),
            *extra,
            pipeline=pipeline,
            **settings,
        ),
        path,
    )


def git_repository(top: Path) -> Path:
    """`top` made a git repository with everything in it committed."""
    git = ["git", "-C", str(top), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "notebooks"], check=True)
    return top


def store(top: Path) -> str:
    return f"sqlite:///{top / 'mlflow.db'}"


def get(lab: JupyterLab, path: str, timeout: float = 30) -> Any:
    """GET a path under the server's base URL with its token; the JSON answer."""
    request = urllib.request.Request(
        lab.url + path.lstrip("/"), headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def run_now(lab: JupyterLab, path: str) -> str:
    return lab.api("POST", "jupyter-mlops/runs", {"path": path})["id"]


def wait_run(lab: JupyterLab, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = get(lab, f"jupyter-mlops/runs/{run_id}")
        if run["status"] not in ("queued", "running"):
            assert run["status"] == "succeeded", run["log_tail"]
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still running after {RUN_TIMEOUT} s")


def listed(lab: JupyterLab, path: str | None = None) -> list[str]:
    query = "" if path is None else f"?path={urllib.parse.quote(path)}"
    return [run["id"] for run in get(lab, f"jupyter-mlops/runs{query}")["runs"]]


# --- a server above two repositories and a plain folder ----------------------------------


class Above:
    """The server's root holds repo-a/ (its notebook in a subfolder), repo-b/ (its notebook
    registers a model) and plain/ (no git): one run of each, started together over REST."""

    def __init__(self, lab: JupyterLab) -> None:
        root = lab.root
        self.lab = lab
        self.a_top, self.b_top = root / "repo-a", root / "repo-b"
        self.paths = {
            "a": "repo-a/analysis/a.ipynb",
            "b": "repo-b/b.ipynb",
            "c": "plain/c.ipynb",
        }
        tally(root / self.paths["a"], "a")
        rule = code(
            "import numpy as np\n"
            "class Threshold:\n    def predict(self, data):\n"
            "        return (np.asarray(data)[:, 0] > 0.5).astype(int)\n"
            "X = np.array([[0.2], [0.7]])\nrule = Threshold()",
            "stage:fit",
            "model:rule",
        )
        tally(root / self.paths["b"], "b", rule, model_name=MODEL, fit_data={"rule": "X"})
        tally(root / self.paths["c"], "c")
        git_repository(self.a_top)
        git_repository(self.b_top)
        ids = {name: run_now(lab, path) for name, path in self.paths.items()}
        self.runs = {name: wait_run(lab, run_id) for name, run_id in ids.items()}
        self.tops = {"a": self.a_top, "b": self.b_top, "c": root}


@pytest.fixture(scope="module")
def above() -> Iterator[Above]:
    with jupyter_lab() as lab:
        yield Above(lab)


def test_each_notebooks_runs_go_to_its_own_projects_store_and_run_folders(above: Above):
    lab, root = above.lab, above.lab.root
    for name, top in above.tops.items():
        run, path = above.runs[name], above.paths[name]
        # The run folder is in the project's mlops-runs/, the MLflow run in its mlflow.db.
        runs_dir = (top / "mlops-runs").relative_to(root).as_posix()
        assert run["folder"] == f"{runs_dir}/{name}/{run['id']}"
        assert run["run_dir"] == str(root / run["folder"])
        assert run["mlflow"]["tracking_uri"] == store(top)
        logged = MlflowClient(store(top)).get_run(run["mlflow"]["run_id"])
        assert logged.data.params == {"n": "2"}
        # Only that project's runs are in its store.
        experiments = MlflowClient(store(top)).search_experiments()
        assert {e.name for e in experiments} - {"Default"} == {name}
        # Each notebook's runs are listed from its project's run folders, and where they go
        # is what `config?path=` says.
        assert listed(lab, path) == [run["id"]]
        config = get(lab, f"jupyter-mlops/config?path={urllib.parse.quote(path)}")
        assert (config["tracking_uri"], config["runs_dir"]) == (store(top), runs_dir)
        assert config["mlflow_ui_url"] == run["mlflow"]["url"].split("/#/")[0]
    # Nothing beside the notebooks: a repository's top level has it all.
    assert sorted(p.name for p in (above.a_top / "analysis").iterdir()) == ["a.ipynb"]
    assert {"mlflow.db", "mlruns", "mlops-runs"} <= {p.name for p in above.b_top.iterdir()}
    # The server root's project (no git) is the server's default, with its UI at mlflow/;
    # the repositories' stores each have a UI of their own.
    config = get(lab, "jupyter-mlops/config")
    assert (config["tracking_uri"], config["runs_dir"]) == (store(root), "mlops-runs")
    assert config["mlflow_ui_url"] == "/mlflow"
    assert above.runs["c"]["mlflow"]["url"].startswith("/mlflow/#/experiments/")
    for name in ("a", "b"):
        url = above.runs[name]["mlflow"]["url"]
        assert url.startswith(f"/{store_path(store(above.tops[name]))}/#/experiments/"), url
    # Without a notebook: the runs of every project the server knows.
    assert sorted(listed(lab)) == sorted(run["id"] for run in above.runs.values())


def test_a_run_from_a_terminal_is_in_the_servers_history_and_store(above: Above):
    """`jupyter-mlops run` in repo A's notebook folder: the server's run's outputs are
    reused (one store, one run history), and the server lists it, with its MLflow link."""
    lab = above.lab
    done = cli("run", "a.ipynb", cwd=above.a_top / "analysis")
    assert done.returncode == 0, done.stderr
    assert store(above.a_top) in done.stdout
    assert done.stderr.count("cached (outputs of MLflow run") == 2
    runs = get(lab, f"jupyter-mlops/runs?path={above.paths['a']}")["runs"]
    assert len(runs) == 2 and runs[1]["id"] == above.runs["a"]["id"]
    terminal = runs[0]
    assert terminal["status"] == "succeeded" and terminal["path"] == above.paths["a"]
    assert terminal["mlflow"]["tracking_uri"] == store(above.a_top)
    assert terminal["mlflow"]["run_id"] and terminal["mlflow"]["url"]
    MlflowClient(store(above.a_top)).get_run(terminal["mlflow"]["run_id"])
    assert get(lab, f"jupyter-mlops/runs/{terminal['id']}")["id"] == terminal["id"]


def test_a_runs_mlflow_link_opens_the_ui_of_its_own_store(above: Above):
    """Repo B's run, through the Jupyter server (its token): the UI its link names answers
    that run, and knows nothing of repo A's (another store, another UI)."""
    lab, run = above.lab, above.runs["b"]
    ui = run["mlflow"]["url"].split("#")[0]  # /mlflow-<hash>/
    api = f"{ui}ajax-api/2.0/mlflow/runs/get?run_id="
    found = get(lab, api + run["mlflow"]["run_id"], timeout=UI_TIMEOUT)
    assert found["run"]["info"]["run_id"] == run["mlflow"]["run_id"]
    assert found["run"]["data"]["params"] == [{"key": "n", "value": "2"}]
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(lab, api + above.runs["a"]["mlflow"]["run_id"])
    assert missing.value.code == 404
    [model] = run["models"]
    assert model["name"] == MODEL and model["url"].startswith(ui + "#/models/")


def test_promotion_checks_the_version_in_its_notebooks_store(above: Above):
    """The sidebar sends the run's notebook: repo B's model is found in repo B's store; the
    server root project's store has no such model."""
    lab = above.lab
    version = above.runs["b"]["models"][0]["version"]
    promote = f"jupyter-mlops/models/{MODEL}/versions/{version}/promote"
    body = {"dry_run": True, "path": above.paths["b"]}
    answer = lab.api("POST", promote, body)
    assert answer["version"] == version and answer["dry_run"] and not answer["moved"]
    assert {check["name"] for check in answer["checks"]} >= {"smoke test"}
    with pytest.raises(urllib.error.HTTPError) as missing:
        lab.api("POST", promote, {"dry_run": True})
    assert missing.value.code == 404


# --- JupyterLab started in a repository's subfolder -----------------------------------------


class Inside:
    """JupyterLab started in notebooks/ of a repository: its runs go to the repository's top
    level, outside the server's root."""

    def __init__(self, top: Path, lab: JupyterLab) -> None:
        self.top, self.lab = top, lab
        self.run = wait_run(lab, run_now(lab, "inside.ipynb"))


@pytest.fixture(scope="module")
def inside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inside]:
    top = tmp_path_factory.mktemp("project")
    tally(top / "notebooks" / "inside.ipynb", "inside")
    git_repository(top)
    with jupyter_lab(root=top / "notebooks") as lab:
        yield Inside(top, lab)


def test_jupyterlab_in_a_subfolder_uses_the_repositorys_store_as_the_command_line(
    inside: Inside,
):
    lab, top, run = inside.lab, inside.top, inside.run
    assert project_root(top / "notebooks", top / "notebooks") == top
    config = get(lab, "jupyter-mlops/config")
    assert config["tracking_uri"] == store(top)
    assert config["runs_dir"] == str(top / "mlops-runs")  # outside the root: absolute
    assert run["mlflow"]["tracking_uri"] == store(top)
    assert run["folder"] is None  # outside the root: not a Contents API path
    assert run["run_dir"] == str(top / "mlops-runs" / "inside" / run["id"])
    assert run["mlflow"]["url"] == (
        f"/mlflow/#/experiments/{run['mlflow']['experiment_id']}/runs/"
        f"{run['mlflow']['run_id']}?workflowType=machine_learning"
    )
    assert sorted(p.name for p in (top / "notebooks").iterdir()) == ["inside.ipynb"]
    # From a terminal in the same folder: the same store and history.
    done = cli("run", "inside.ipynb", cwd=top / "notebooks")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cached (outputs of MLflow run") == 2
    assert len(listed(lab, "inside.ipynb")) == 2


def test_the_sidebar_and_the_runs_panel_say_where_runs_outside_the_root_are(
    inside: Inside, page: Any
):
    from test_runs_panel import row, wait_for_panel
    from test_ui import open_sidebar

    errors = collect_page_errors(page)
    lab, top, run = inside.lab, inside.top, inside.run
    open_notebook(page, lab, "inside.ipynb", workspace="places")
    sidebar = open_sidebar(page)
    runs_dir = sidebar.locator('[data-testid="mlops-runs-dir"]')
    runs_dir.wait_for(timeout=60_000)
    assert runs_dir.inner_text().replace("\u200b", "") == str(top / "mlops-runs")
    assert store(top) in sidebar.locator(".jp-mlops-footer").inner_text().replace("\u200b", "")

    run_command(page, "jupyter-mlops:open-runs", {"path": "inside.ipynb"})
    panel = wait_for_panel(page, "inside.ipynb")
    row(panel, run["id"]).locator(".jp-mlops-runs-started").click()
    files = panel.locator('[data-testid="mlops-runs-notebook-file"]')
    files.first.wait_for(timeout=60_000)
    assert files.all_inner_texts() == [
        f"{run['run_dir']}/{stage['notebook']}" for stage in run["stages"]
    ]
    assert panel.locator('[data-testid="mlops-runs-open-notebook"]').count() == 0
    assert run["run_dir"] in panel.locator('[data-testid="mlops-runs-outside"]').inner_text()
    assert errors == []


# --- explicit settings: one store and one runs folder for everything ---------------------


@pytest.fixture
def explicit(jp_server_config, tmp_path):
    settings = {
        "tracking_uri": f"sqlite:///{tmp_path / 'team.db'}",
        "runs_dir": str(tmp_path / "team-runs"),
    }
    jp_server_config["MlopsExtension"] = settings
    return settings


async def test_explicit_settings_give_one_store_and_runs_folder_for_every_notebook(
    explicit, api, jp_root_dir, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    top = jp_root_dir / "repo"
    tally(top / "r.ipynb", "r")
    git_repository(top)
    for query in ({}, {"path": "repo/r.ipynb"}):
        config = await api("GET", "config", params=query)
        assert config["tracking_uri"] == explicit["tracking_uri"]
        assert config["runs_dir"] == explicit["runs_dir"]
    started = await api("POST", "runs", body={"path": "repo/r.ipynb"}, expect=202)
    run = await wait_for(api, started["id"])
    assert run["status"] == "succeeded", run["log_tail"]
    assert run["mlflow"]["tracking_uri"] == explicit["tracking_uri"]
    assert run["run_dir"].startswith(explicit["runs_dir"] + "/r/")
    assert not (top / "mlflow.db").exists() and not (top / "mlops-runs").exists()
    assert (await api("GET", "runs", params={"path": "repo/r.ipynb"}))["runs"][0]["id"] == run["id"]
