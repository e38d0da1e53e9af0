"""Where the store and the run folders go by default: the project's root (the top level of the
notebook's git repository, else the working folder), the same from any folder of the project,
for the command line and the widget; nothing lands beside the notebook (issue 15)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import cli, code, notebook, write

from jupyter_mlops.places import Places, PlacesRule, local_artifacts, project_root
from jupyter_mlops.tracking import resolve_tracking_uri


def project(tmp_path: Path) -> tuple[Path, Path]:
    """A git repository with a notebook in a subfolder: (its top level, the notebook)."""
    top = tmp_path / "churn"
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    nb = write(
        notebook(
            code("rows: int = 3", "parameters"),
            code("data = list(range(rows))", "stage:load"),
            code("total = sum(data)", "stage:sum", "metrics"),
        ),
        top / "analysis" / "churn.ipynb",
    )
    return top, nb


def test_the_project_root_is_the_git_top_level_else_the_fallback(tmp_path):
    top, nb = project(tmp_path)
    assert project_root(nb, tmp_path) == top
    assert project_root(nb.parent, tmp_path) == top
    outside = tmp_path / "scratch"
    outside.mkdir()
    assert project_root(outside / "x.ipynb", outside) == outside


def test_the_default_store_is_the_projects_and_an_explicit_one_wins(tmp_path, monkeypatch):
    top, nb = project(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(nb.parent)
    assert resolve_tracking_uri(None, near=nb) == f"sqlite:///{top / 'mlflow.db'}"
    assert resolve_tracking_uri("sqlite:///team.db", near=nb) == (
        f"sqlite:///{nb.parent / 'team.db'}"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri(None, near=nb) == "http://127.0.0.1:5000"
    assert local_artifacts("http://127.0.0.1:5000", "churn") is None
    assert local_artifacts(f"sqlite:///{top / 'mlflow.db'}", "a b") == str(top / "mlruns" / "a_b")


@pytest.mark.slow
def test_runs_from_anywhere_in_the_project_share_one_store_and_history(tmp_path):
    """From the notebook's folder, then from the top level: one mlflow.db, one mlops-runs/
    and one mlruns/ at the top (the second run reuses the first's outputs), and nothing
    but the notebook in its folder."""
    top, nb = project(tmp_path)
    first = cli("run", "churn.ipynb", cwd=nb.parent)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in nb.parent.iterdir()) == ["churn.ipynb"]
    assert {"mlflow.db", "mlops-runs", "mlruns"} <= {p.name for p in top.iterdir()}
    assert f"sqlite:///{top / 'mlflow.db'}" in first.stdout

    again = cli("run", "analysis/churn.ipynb", cwd=top)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("cached (outputs of MLflow run") == 2
    assert len(list((top / "mlops-runs" / "churn").glob("2*"))) == 2
    assert sorted(p.name for p in nb.parent.iterdir()) == ["churn.ipynb"]


def test_the_widget_uses_the_same_places_as_the_command_line(tmp_path, monkeypatch):
    from jupyter_mlops.widgets import PipelinePanel

    top, nb = project(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(nb.parent)  # a kernel's working folder: the notebook's
    panel = PipelinePanel(nb)
    assert panel.runs_dir == top / "mlops-runs"
    assert panel.tracking_uri == f"sqlite:///{top / 'mlflow.db'}"


def test_a_folder_not_made_yet_belongs_to_the_project_it_will_be_in(tmp_path):
    top, _ = project(tmp_path)
    assert project_root(top / "mlops-runs" / "churn" / "20261203-1" / "bundle", tmp_path) == top


def test_a_read_only_repository_or_the_home_folder_is_not_the_project(tmp_path, monkeypatch):
    """A read-only clone (a course's, a synced DAGs folder) or a home folder kept in git (its
    dotfiles) falls back to the working folder."""
    top, nb = project(tmp_path)
    elsewhere = tmp_path / "here"
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(top))
    assert project_root(nb, elsewhere) == elsewhere
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    assert project_root(nb, elsewhere) == top
    top.chmod(0o555)
    try:
        if not os.access(top, os.W_OK):  # (root may write anywhere: nothing to check then)
            assert project_root(nb, elsewhere) == elsewhere
    finally:
        top.chmod(0o755)


def test_a_linked_notebook_belongs_to_its_real_project(tmp_path):
    top, nb = project(tmp_path)
    outside = tmp_path / "links"
    outside.mkdir()
    (outside / "churn.ipynb").symlink_to(nb)
    assert project_root(outside / "churn.ipynb", outside) == top


def test_a_server_places_each_notebook_by_its_project_and_remembers_it_briefly(tmp_path):
    """`PlacesRule`, the server's: a notebook in a repository goes to its top level, any
    other to the server's root; a folder's answer is remembered (a repository made since is
    seen once it is asked afresh, as for a run about to start, or a while later)."""
    top, nb = project(tmp_path)
    root = tmp_path / "root"
    (root / "later").mkdir(parents=True)
    rule = PlacesRule(tmp_path, remember=60)
    places = rule.of(nb)
    assert places == Places(top, f"sqlite:///{top / 'mlflow.db'}", top / "mlops-runs")
    assert rule.of(tmp_path / "loose.ipynb").runs_dir == tmp_path / "mlops-runs"

    later = root / "later" / "x.ipynb"
    assert rule.of(later).root == tmp_path
    subprocess.run(["git", "init", "-q", str(root / "later")], check=True)
    assert rule.of(later).root == tmp_path  # remembered
    assert rule.of(later, fresh=True).root == root / "later"
    assert PlacesRule(tmp_path, remember=0).of(later).root == root / "later"


def test_explicit_server_settings_hold_for_every_notebook(tmp_path):
    top, nb = project(tmp_path)
    rule = PlacesRule(tmp_path, store="http://127.0.0.1:5000")
    assert rule.of(nb) == Places(top, "http://127.0.0.1:5000", top / "mlops-runs")
    rule = PlacesRule(tmp_path, runs_dir=tmp_path / "all-runs")
    assert rule.of(nb).runs_dir == tmp_path / "all-runs"
    assert rule.of(nb).store == f"sqlite:///{top / 'mlflow.db'}"
    both = PlacesRule(tmp_path, store="http://127.0.0.1:5000", runs_dir=tmp_path / "all-runs")
    assert both.of(nb) == Places(tmp_path, "http://127.0.0.1:5000", tmp_path / "all-runs")
