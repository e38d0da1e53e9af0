"""Parallel stages and pre-started kernels: the same results and records as a serial run,
and a stage never runs before the stages it depends on."""

import sys

import pytest
from conftest import ROOT, cli, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

from jupyter_mlops.run.runstate import read_run

sys.path.insert(0, str(ROOT / "benchmarks"))
from notebooks import fan_out_notebook

pytestmark = pytest.mark.slow


def records(folder):
    client = client_for(folder)
    parent, children = pipeline_runs(client, "fan-out")
    state = read_run(next((folder / "mlops-runs" / "fan-out").iterdir()))
    return {
        "statuses": {s.name: s.status for s in state.stages},
        "parent": (parent.info.status, parent.data.metrics),
        "children": {
            name: (
                run.info.status,
                {k: v for k, v in run.data.metrics.items() if k != "duration_s"},
                sorted(d.dataset.digest for d in run.inputs.dataset_inputs),
            )
            for name, run in children.items()
        },
    }


def test_parallel_runs_match_serial_runs(tmp_path):
    results = {}
    for jobs in ("1", "2"):
        folder = tmp_path / f"jobs-{jobs}"
        write(fan_out_notebook(branches=3, work_seconds=0.2), folder / "fan-out.ipynb")
        result = cli("run", "fan-out.ipynb", "--jobs", jobs, "--no-cache", cwd=folder)
        assert result.returncode == 0, result.stderr
        results[jobs] = records(folder)
    assert results["1"] == results["2"]
    assert set(results["2"]["children"]) == {
        "load",
        "features",
        "train_0",
        "train_1",
        "train_2",
        "compare",
    }
    assert set(results["2"]["statuses"].values()) == {"done"}


def test_a_pre_started_stage_waits_for_its_upstream_stages(workdir):
    write(
        notebook(
            code("import os, time", "setup"),
            code("time.sleep(3)\nopen('marker', 'w').write('done')", "stage:slow"),
            code(
                "assert os.path.exists('marker'), 'ran before its upstream stage'\nok = 1",
                "stage:after_slow",
                "after:slow",
            ),
            code("late = ok", "stage:last"),
        ),
        workdir / "ordered.ipynb",
    )
    result = cli("run", "ordered.ipynb", "--jobs", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    state = read_run(next((workdir / "mlops-runs" / "ordered").iterdir()))
    slow, after_slow = state.stage("slow"), state.stage("after_slow")
    assert after_slow.started >= slow.finished


def test_a_failure_stops_pre_started_stages_cleanly(workdir):
    write(
        notebook(
            code("import time", "setup"),
            code("time.sleep(2)\nraise ValueError('upstream broke')", "stage:broken"),
            code("x = 1", "stage:next", "after:broken"),
            code("y = x", "stage:later"),
        ),
        workdir / "broken.ipynb",
    )
    result = cli("run", "broken.ipynb", "--jobs", "2", cwd=workdir)
    assert result.returncode == 1 and "upstream broke" in result.stderr
    state = read_run(next((workdir / "mlops-runs" / "broken").iterdir()))
    assert [s.status for s in state.stages] == ["failed", "skipped", "skipped"]
    parent, children = pipeline_runs(client_for(workdir), "broken")
    assert parent.info.status == "FAILED"
    assert set(children) == {"broken"}  # nothing logged for stages that never ran
