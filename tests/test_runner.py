"""Running pipelines end to end on small notebooks: real kernels, real MLflow (sqlite)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import alive, cli, code, notebook, write
from mlflow_helpers import artifact_paths, client_for, pipeline_runs

from jupyter_mlops.run.runstate import read_run

pytestmark = pytest.mark.slow


def two_stage(folder: Path, **settings) -> Path:
    return write(
        notebook(
            code("import numpy as np\nimport pandas as pd", "setup"),
            code("rows: int = 6  # how many rows\nlabel = 'demo'", "parameters"),
            code(
                "frame = pd.DataFrame({'a': np.arange(rows), 'b': np.arange(rows) * 2.0})",
                "stage:load",
            ),
            code(
                "import mlflow\ntotal = float(frame['b'].sum())\nmean_a = frame['a'].mean()\n"
                "mlflow.log_metric('custom', 5)\nmlflow.set_tag('from_user', label)",
                "stage:summarise",
                "metrics",
            ),
            **settings,
        ),
        folder / "two_stage.ipynb",
    )


def test_a_run_logs_parent_and_child_runs(workdir):
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    source = two_stage(workdir)
    subprocess.run(["git", "add", "."], cwd=workdir, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "nb"],
        cwd=workdir,
        check=True,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=workdir, capture_output=True, text=True
    ).stdout.strip()
    before = source.read_bytes()
    result = cli("run", "two_stage.ipynb", "-p", "rows", "4", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout
    assert source.read_bytes() == before

    client = client_for(workdir)
    parent, children = pipeline_runs(client, "two-stage")
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"rows": "4", "label": "demo"}
    tags = parent.data.tags
    assert tags["mlflow.source.name"] == str(source.resolve())
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["jupyter_mlops.git_dirty"] == "false"
    import hashlib

    assert tags["jupyter_mlops.notebook_sha256"] == hashlib.sha256(before).hexdigest()
    assert {
        "pipeline.yaml",
        "requirements.txt",
        "params.yaml",
        "source/two_stage.ipynb",
    } <= artifact_paths(client, parent.info.run_id)
    assert parent.data.metrics["total"] == 12.0

    assert set(children) == {"load", "summarise"}
    load, summarise = children["load"], children["summarise"]
    assert load.data.params == {"rows": "4"} and summarise.data.params == {"label": "demo"}
    assert all(c.info.status == "FINISHED" for c in children.values())
    assert summarise.data.metrics["total"] == 12.0 and summarise.data.metrics["mean_a"] == 1.5
    assert summarise.data.metrics["custom"] == 5  # the user's own mlflow call
    assert summarise.data.tags["from_user"] == "demo"
    assert "duration_s" in load.data.metrics
    assert artifact_paths(client, load.info.run_id) == {
        "notebook/01_load.ipynb",
        "notebook/01_load.html",
    }
    datasets = summarise.inputs.dataset_inputs
    assert [d.dataset.name for d in datasets] == ["frame"]
    schema = json.loads(datasets[0].dataset.schema)
    assert schema["mlflow_colspec"] == [
        {"name": "a", "type": "long"},
        {"name": "b", "type": "double"},
    ]
    assert json.loads(datasets[0].dataset.source)["stage"] == "load"

    state = read_run(next((workdir / "mlops-runs" / "two-stage").iterdir()))
    assert state.status == "succeeded" and state.parent_run_id == parent.info.run_id
    assert [s.status for s in state.stages] == ["done", "done"]
    assert (Path(state.run_dir) / "notebooks" / "02_summarise.ipynb").is_file()
    experiment = client.get_experiment_by_name("two-stage")
    assert len(client.search_runs([experiment.experiment_id])) == 3  # nothing stray


def test_a_failing_stage_points_at_the_source_cell(workdir):
    source = write(
        notebook(
            code("x = 1", "stage:load"),
            code("# a comment\ny = x + 1\nraise ValueError('boom at ' + str(y))", "stage:train"),
            code("z = y", "stage:after"),
        ),
        workdir / "failing.ipynb",
    )
    before = source.read_bytes()
    result = cli("run", "failing.ipynb", cwd=workdir)
    assert result.returncode == 1
    assert "stage `train` failed in cell 1 of failing.ipynb, line 3: ValueError: boom at 2" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert source.read_bytes() == before
    client = client_for(workdir)
    parent, children = pipeline_runs(client, "failing")
    assert parent.info.status == "FAILED"
    assert children["load"].info.status == "FINISHED"
    assert children["train"].info.status == "FAILED"
    assert "after" not in children
    assert "notebook/02_train.ipynb" in artifact_paths(client, children["train"].info.run_id)
    state = read_run(next((workdir / "mlops-runs" / "failing").iterdir()))
    assert state.status == "failed"
    assert [s.status for s in state.stages] == ["done", "failed", "skipped"]
    assert state.error.cell == 1 and state.error.line == 3
    executed = Path(state.run_dir) / state.stage("train").notebook
    assert "boom at 2" in executed.read_text()


def test_bad_parameters_stop_before_anything_runs(workdir):
    two_stage(workdir)
    result = cli("run", "two_stage.ipynb", "-p", "rows", "abc", cwd=workdir)
    assert result.returncode == 2
    assert "parameter `rows` must be an integer, got 'abc'" in result.stderr
    assert not (workdir / "mlops-runs").exists() and not (workdir / "mlflow.db").exists()
    (workdir / "params.yaml").write_text("rows: 2.5\n")
    result = cli("run", "two_stage.ipynb", "-f", "params.yaml", cwd=workdir)
    assert result.returncode == 2 and "`rows` must be an integer" in result.stderr


def test_parameter_values_arrive_as_data(workdir):
    write(
        notebook(
            code("command = 'ls'", "parameters"),
            code("assert isinstance(command, str)\nechoed = command", "stage:one"),
            code("result = len(echoed)", "stage:two"),
        ),
        workdir / "inject.ipynb",
    )
    hostile = "__import__('os').system('touch pwned')"
    (workdir / "p.yaml").write_text(f'command: "{hostile}"\n')
    for args in (["-p", "command", hostile], ["-f", "p.yaml"]):
        result = cli("run", "inject.ipynb", *args, cwd=workdir)
        assert result.returncode == 0, result.stderr
    assert not (workdir / "pwned").exists()
    parent, _ = pipeline_runs(client_for(workdir), "inject")
    assert parent.data.params["command"] == hostile


def test_braces_in_folder_names_are_not_formatted_with_the_parameters(workdir):
    """papermill formats its paths with the parameters: `proj {n}` must stay itself."""
    project = workdir / "proj {n} {}"
    project.mkdir()
    write(
        notebook(code("n = 3", "parameters"), code("x = n", "stage:a"), code("y = x", "stage:b")),
        project / "braces {n}.ipynb",
    )
    result = cli("run", "braces {n}.ipynb", "-p", "n", "4", cwd=project)
    assert result.returncode == 0, result.stderr
    [run] = (project / "mlops-runs" / "braces-n").iterdir()
    assert read_run(run).status == "succeeded"
    assert sorted(p.name for p in (run / "notebooks").glob("*.ipynb")) == [
        "01_a.ipynb",
        "02_b.ipynb",
    ]


def test_kernels_start_in_the_notebook_folder(workdir):
    project = workdir / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_text("a,b\n1,2\n3,4\n")
    write(
        notebook(
            code("import pandas as pd", "setup"),
            code("df = pd.read_csv('data/train.csv')", "stage:load"),
            code("rows = len(df)", "stage:count", "metrics"),
        ),
        project / "relative.ipynb",
    )
    result = cli("run", "project/relative.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    _, children = pipeline_runs(client_for(workdir), "relative")
    assert children["count"].data.metrics["rows"] == 2


def test_a_missing_kernelspec_falls_back_to_python3(workdir):
    nb = notebook(code("x = 1", "stage:one"), code("y = x", "stage:two"))
    nb.metadata.kernelspec = {
        "name": "conda-env-gone-py",
        "display_name": "gone",
        "language": "python",
    }
    write(nb, workdir / "gone.ipynb")
    result = cli("run", "gone.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "`conda-env-gone-py` is not installed here; using" in result.stderr
    result = cli("run", "gone.ipynb", "--kernel", "nope", cwd=workdir)
    assert result.returncode == 2 and "kernel `nope` is not installed" in result.stderr


def test_from_and_only_reuse_earlier_outputs(workdir):
    write(
        notebook(
            code("import time\nstamp = time.time()", "stage:first"),
            code("seen = stamp", "stage:second"),
            code("final = seen", "stage:third"),
        ),
        workdir / "reuse.ipynb",
    )
    result = cli("run", "reuse.ipynb", "--from", "second", cwd=workdir)
    assert result.returncode == 2 and "run the whole pipeline once first" in result.stderr
    assert cli("run", "reuse.ipynb", cwd=workdir).returncode == 0
    result = cli("run", "reuse.ipynb", "--from", "second", cwd=workdir)
    assert result.returncode == 0, result.stderr
    runs = sorted((workdir / "mlops-runs" / "reuse").iterdir())
    first, second = read_run(runs[0]), read_run(runs[1])
    assert [s.status for s in second.stages] == ["cached", "done", "done"]
    assert second.stage("first").cached_from == first.stage("first").mlflow_run_id
    _, children = pipeline_runs(client_for(workdir), "reuse")
    assert children["first"].data.tags["jupyter_mlops.cached_from"] == (
        first.stage("first").mlflow_run_id
    )
    result = cli("run", "reuse.ipynb", "--only", "third", cwd=workdir)
    assert result.returncode == 0, result.stderr
    third = read_run(sorted((workdir / "mlops-runs" / "reuse").iterdir())[-1])
    assert [s.status for s in third.stages] == ["skipped", "cached", "done"]
    result = cli("run", "reuse.ipynb", "--only", "fourth", cwd=workdir)
    assert result.returncode == 2 and "no stage `fourth`" in result.stderr


def test_run_a_converted_bundle_and_warn_when_stale(workdir):
    source = two_stage(workdir)
    assert cli("convert", "two_stage.ipynb", "-o", "bundle", cwd=workdir).returncode == 0
    result = cli("run", "bundle/pipeline.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "changed since" not in result.stderr
    source.write_text(source.read_text().replace("'demo'", "'changed'"))
    result = cli("run", "bundle/pipeline.yaml", cwd=workdir)
    assert result.returncode == 0 and "changed since this bundle was converted" in result.stderr


def test_ctrl_c_stops_kernels_and_marks_runs_failed(workdir):
    write(
        notebook(
            code("x = 1", "stage:quick"),
            code(
                "import os, subprocess, time\n"
                "child = subprocess.Popen(['sleep', '300'])\n"
                "open('pids.txt', 'w').write(f'{os.getpid()} {child.pid}')\n"
                "time.sleep(300)\n"
                "y = x",
                "stage:slow",
            ),
            code("z = y", "stage:never"),
        ),
        workdir / "sleepy.ipynb",
    )
    command = [str(Path(sys.executable).parent / "jupyter-mlops"), "run", "sleepy.ipynb"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while not (workdir / "pids.txt").exists() or not (workdir / "pids.txt").read_text():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    kernel_pid, child_pid = map(int, (workdir / "pids.txt").read_text().split())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    time.sleep(0.5)
    assert not alive(kernel_pid) and not alive(child_pid)
    parent, children = pipeline_runs(client_for(workdir), "sleepy")
    assert parent.info.status == "FAILED"
    assert children["slow"].info.status == "FAILED"
    state = read_run(next((workdir / "mlops-runs" / "sleepy").iterdir()))
    assert state.status == "cancelled"
    assert [s.status for s in state.stages] == ["done", "cancelled", "cancelled"]


def test_autolog_inside_a_stage_lands_in_that_stage_run(workdir):
    write(
        notebook(
            code(
                "import numpy as np\nX = np.random.default_rng(1).random((40, 3))\n"
                "y = (X[:, 0] > 0.5).astype(int)",
                "stage:data",
            ),
            code(
                "import mlflow\nfrom sklearn.tree import DecisionTreeClassifier\n"
                "mlflow.sklearn.autolog(log_models=False)\n"
                "tree = DecisionTreeClassifier(max_depth=2).fit(X, y)",
                "stage:train",
            ),
        ),
        workdir / "autolog.ipynb",
    )
    result = cli("run", "autolog.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    client = client_for(workdir)
    _, children = pipeline_runs(client, "autolog")
    train = children["train"]
    assert train.data.params["max_depth"] == "2"  # logged by autolog
    assert "training_accuracy_score" in train.data.metrics
    assert train.info.status == "FINISHED"
    experiment = client.get_experiment_by_name("autolog")
    assert len(client.search_runs([experiment.experiment_id])) == 3
