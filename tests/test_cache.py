"""The stage cache: what invalidates a stage, and concurrent runs sharing it safely."""

import json
from pathlib import Path

import pytest
from conftest import cli, code, notebook, run_at_once, write
from mlflow_helpers import client_for, pipeline_runs

from jupyter_mlops.artifacts import open_store
from jupyter_mlops.run.runstate import read_run

pytestmark = pytest.mark.slow


def cached_notebook(folder: Path, setup: str = "import json", total: str = "sum(doubled)"):
    return write(
        notebook(
            code(setup, "setup"),
            code("scale: int = 2\nlabel = 'x'", "parameters"),
            code("rows = open('data.txt').read().split()", "stage:load"),
            code("doubled = [int(r) * scale for r in rows]", "stage:double"),
            code(f"total = {total}", "stage:total", "metrics"),
            code("tagged = label.upper()", "stage:tag"),
        ),
        folder / "cached.ipynb",
    )


def statuses(folder: Path, *args: str) -> dict[str, str]:
    result = cli("run", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    state = read_run(sorted((folder / "mlops-runs" / "cached").iterdir())[-1])
    return {stage.name: stage.status for stage in state.stages}


def test_an_unchanged_rerun_comes_from_the_cache(workdir):
    cached_notebook(workdir)
    (workdir / "data.txt").write_text("1 2 3")
    assert set(statuses(workdir, "cached.ipynb").values()) == {"done"}
    first = read_run(sorted((workdir / "mlops-runs" / "cached").iterdir())[-1])
    assert set(statuses(workdir, "cached.ipynb").values()) == {"cached"}
    second = read_run(sorted((workdir / "mlops-runs" / "cached").iterdir())[-1])
    assert second.stage("total").cached_from == first.stage("total").mlflow_run_id
    _, children = pipeline_runs(client_for(workdir), "cached")
    total = children["total"]
    assert total.data.tags["jupyter_mlops.cached_from"] == first.stage("total").mlflow_run_id
    assert total.data.metrics["total"] == 12.0
    assert first.stage("total").metrics == second.stage("total").metrics == {"total": 12.0}
    assert open_store(second.artifact_store).load("double", ["doubled"]) == {"doubled": [2, 4, 6]}


def test_each_input_invalidates_what_depends_on_it(workdir):
    source = cached_notebook(workdir)
    data = workdir / "data.txt"
    data.write_text("1 2 3")
    statuses(workdir, "cached.ipynb")
    everything = {"load": "done", "double": "done", "total": "done", "tag": "done"}
    # A parameter: the stages reading it, and what their changed outputs feed.
    assert statuses(workdir, "cached.ipynb", "-p", "scale", "3") == {
        "load": "cached",
        "double": "done",
        "total": "done",
        "tag": "cached",
    }
    assert statuses(workdir, "cached.ipynb", "-p", "scale", "3", "-p", "label", "y") == {
        "load": "cached",
        "double": "cached",
        "total": "cached",
        "tag": "done",
    }
    # A stage's own code.
    cached_notebook(workdir, total="sum(doubled) + 0")
    assert statuses(workdir, "cached.ipynb") == {
        "load": "cached",
        "double": "cached",
        "total": "done",
        "tag": "cached",
    }
    # A file the code names: same content, new mtime, reruns the stage reading it only...
    data.write_text("1 2 3")
    assert statuses(workdir, "cached.ipynb") == {
        "load": "done",
        "double": "cached",
        "total": "cached",
        "tag": "cached",
    }
    # ...and new content flows on through the value digests.
    data.write_text("1 2 3 4")
    assert statuses(workdir, "cached.ipynb") == {
        "load": "done",
        "double": "done",
        "total": "done",
        "tag": "cached",
    }
    # Setup cells run in every stage.
    cached_notebook(workdir, setup="import json\nimport math", total="sum(doubled) + 0")
    assert statuses(workdir, "cached.ipynb") == everything
    assert statuses(workdir, "cached.ipynb", "--no-cache") == everything
    # The environment: the pinned requirements of a converted bundle.
    assert cli("convert", str(source), "-o", "bundle", cwd=workdir).returncode == 0
    statuses(workdir, "bundle/pipeline.yaml")
    requirements = workdir / "bundle" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "example-package==1.0\n")
    assert statuses(workdir, "bundle/pipeline.yaml") == everything


def test_concurrent_runs_share_the_cache_safely(workdir):
    cached_notebook(workdir)
    (workdir / "data.txt").write_text("4 5 6")
    run_at_once([["run", "cached.ipynb"]] * 4, workdir, timeout=600)
    cache = workdir / "mlops-runs" / ".cache"
    entries = list((cache / "entries").glob("*.json"))
    assert len(entries) == 4  # one per stage, whichever run wrote it last
    for entry in entries:
        record = json.loads(json.loads(entry.read_text())["record"])
        if record["object"]:
            folder = cache / "objects" / record["object"]
            assert {p.name for p in folder.iterdir()} == {
                "values.pkl",
                "buffers.bin",
                "buffers.json",
            }
    assert not list((cache / "objects").glob(".tmp-*"))
    assert set(statuses(workdir, "cached.ipynb").values()) == {"cached"}
    state = read_run(sorted((workdir / "mlops-runs" / "cached").iterdir())[-1])
    assert open_store(state.artifact_store).load("double", ["doubled"]) == {"doubled": [8, 10, 12]}
