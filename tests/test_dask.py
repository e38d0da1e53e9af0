"""`--executor dask`: stages as tasks on a real Dask cluster (a `dask scheduler` and two
`dask worker` processes on 127.0.0.1, each in its own folder), the artifact store on moto's
S3 server and a real `mlflow server`: nothing shared but those two."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import alive, cli, code, notebook, start_cli, write
from dask_cluster import DaskCluster
from mlflow import MlflowClient
from mlflow_helpers import MlflowServer
from s3_server import moto_s3

from jupyter_mlops.run.history import load_run
from jupyter_mlops.sweeps.record import SweepState

pytest.importorskip("distributed")


@dataclass
class Cluster:
    env: dict[str, str]  # what a command needs to use them (the workers got the S3 keys)
    dask: DaskCluster
    folder: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """moto's S3 server with a bucket, an `mlflow server`, and a Dask cluster of two
    workers, shared by the module's tests."""
    folder = tmp_path_factory.mktemp("cluster")
    with moto_s3("pipelines") as s3:
        env = dict(s3)
        server = MlflowServer(folder / "mlflow")
        dask = DaskCluster(folder, 2, env)
        try:
            env["MLFLOW_TRACKING_URI"] = server.start()
            dask.start()
            env["DASK_SCHEDULER_ADDRESS"] = dask.address
            yield Cluster(env, dask, folder)
        finally:
            dask.stop()
            server.stop()


def fanout(folder: Path, name: str = "fan") -> Path:
    """Data, three branches (each says where it ran, `slow` waits while a file `hold` is
    named by the run's parameter), and a combining stage with a metric."""
    return write(
        notebook(
            code("import os\nimport time\nimport numpy as np", "setup"),
            code("hold = ''\nfail = False", "parameters"),
            code("data = np.arange(10.0)", "stage:load"),
            code(
                "where_a = os.getcwd()\n"
                "pid_a = os.getpid()\n"
                "if hold:\n"
                "    open(hold + '.pid', 'w').write(f'{os.getpid()} {os.getppid()}')\n"
                "    while os.path.exists(hold):\n"
                "        time.sleep(0.1)\n"
                "a = data.sum()",
                "stage:slow",
            ),
            code("time.sleep(1)\nwhere_b = os.getcwd()\nb = data.mean()", "stage:branch_b"),
            code(
                "time.sleep(1)\nwhere_c = os.getcwd()\n"
                "if fail:\n    raise ValueError('branch c refuses')\nc = data.max()",
                "stage:branch_c",
            ),
            code(
                "total = float(a + b + c)\nworkers = len({where_a, where_b, where_c})\n"
                "print(total)\nprint(workers)",
                "stage:combine",
                "metrics",
            ),
            pipeline=name,
        ),
        folder / f"{name}.ipynb",
    )


def _store(name: str) -> str:
    return f"s3://pipelines/{name}"


def test_a_fan_out_runs_on_the_cluster_and_logs_to_the_tracking_server(cluster, tmp_path):
    fanout(tmp_path)
    result = cli(
        "run", "fan.ipynb", "--executor", "dask", "--artifact-store", _store("fanout"),
        cwd=tmp_path, env=cluster.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "total 58.5" in result.stdout and "View run" not in result.stdout
    (folder,) = (tmp_path / "mlops-runs" / "fan").iterdir()
    state = load_run(folder)
    assert state.status == "succeeded" and {s.status for s in state.stages} == {"done"}
    assert state.stages[-1].metrics == {"total": 58.5, "workers": 2.0}  # both workers ran some
    client = MlflowClient(cluster.env["MLFLOW_TRACKING_URI"])
    parent = client.get_run(state.parent_run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{state.parent_run_id}'"
    )
    assert sorted(r.data.tags["jupyter_mlops.stage"] for r in children) == [
        "branch_b", "branch_c", "combine", "load", "slow",
    ]  # fmt: skip
    assert {r.info.status for r in children} == {"FINISHED"}
    # Nothing of the run was written beside the notebook but its run folder, and each
    # worker kept its stages in its own folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fan.ipynb", "mlops-runs"]
    ran = {
        worker.name
        for worker in cluster.folder.glob("worker*")
        if (worker / "jupyter-mlops-bundles" / state.id).is_dir()
    }
    assert ran == {"worker0", "worker1"}


def test_a_failed_stage_fails_the_run_clearly_and_skips_what_follows(cluster, tmp_path):
    fanout(tmp_path)
    result = cli(
        "run", "fan.ipynb", "--executor", "dask", "--artifact-store", _store("failing"),
        "-p", "fail", "true", cwd=tmp_path, env=cluster.env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "branch c refuses" in result.stderr and "bug" not in result.stderr
    (folder,) = (tmp_path / "mlops-runs" / "fan").iterdir()
    state = load_run(folder)
    statuses = {s.name: s.status for s in state.stages}
    assert statuses["branch_c"] == "failed" and statuses["combine"] == "skipped"
    assert (
        MlflowClient(cluster.env["MLFLOW_TRACKING_URI"]).get_run(state.parent_run_id).info.status
        == "FAILED"
    )


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 180) -> str:
    deadline = time.time() + timeout
    while not path.exists() or not path.read_text():
        assert time.time() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    return path.read_text()


def _held_run(
    cluster: Cluster, folder: Path, store: str
) -> tuple[subprocess.Popen[str], Path, int]:
    """A cluster run started in the background, once its `slow` stage holds: the run's
    process, the file that holds the stage, and the stage kernel's pid."""
    fanout(folder)
    hold = folder / "hold"
    hold.write_text("")
    process = start_cli(
        "run", "fan.ipynb", "--executor", "dask", "--artifact-store", _store(store),
        "-p", "hold", str(hold), cwd=folder, env=cluster.env,
    )  # fmt: skip
    return process, hold, int(_wait_for(folder / "hold.pid", process).split()[0])


def test_a_cancel_stops_the_stages_running_on_the_workers(cluster, tmp_path):
    process, _, kernel = _held_run(cluster, tmp_path, "cancel")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    deadline = time.time() + 30
    while alive(kernel):  # the stage's kernel on the worker was stopped
        assert time.time() < deadline, "the stage's kernel outlived the cancel"
        time.sleep(0.2)
    (folder,) = (tmp_path / "mlops-runs" / "fan").iterdir()
    state = load_run(folder)
    assert state.status == "cancelled"
    assert {s.name: s.status for s in state.stages}["slow"] == "cancelled"
    client = MlflowClient(cluster.env["MLFLOW_TRACKING_URI"])
    assert client.get_run(state.parent_run_id).info.status == "FAILED"
    children = client.search_runs(
        [client.get_run(state.parent_run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{state.parent_run_id}'",
    )
    assert "RUNNING" not in {r.info.status for r in children}


def test_a_worker_killed_mid_stage_has_its_stage_run_again_elsewhere(cluster, tmp_path):
    process, hold, kernel = _held_run(cluster, tmp_path, "killed")
    worker = _worker_running(kernel)
    (tmp_path / "hold.pid").unlink()
    os.kill(worker, signal.SIGKILL)  # the worker dies mid-stage; its stage must not linger
    deadline = time.time() + 60
    while alive(kernel):
        assert time.time() < deadline, "the killed worker's stage kernel lingered"
        time.sleep(0.2)
    _wait_for(tmp_path / "hold.pid", process)  # the stage started again on the other worker
    hold.unlink()
    try:
        _, stderr = process.communicate(timeout=240)
    finally:
        process.kill()
        cluster.dask.replace_dead_workers()  # the next tests have two workers again
    assert process.returncode == 0, stderr
    (folder,) = (tmp_path / "mlops-runs" / "fan").iterdir()
    assert load_run(folder).status == "succeeded"


def _worker_running(kernel: int) -> int:
    """The `dask worker` process above the stage kernel `kernel`."""
    import psutil

    for parent in psutil.Process(kernel).parents():
        if "dask" in " ".join(parent.cmdline()) and "worker" in parent.cmdline():
            return parent.pid
    raise AssertionError(f"no dask worker above pid {kernel}")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--executor", "dask"], "--executor dask needs --scheduler"),
        (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], "--artifact-store"),
        (
            "--executor dask --scheduler tcp://127.0.0.1:9 --artifact-store s3://b/p".split(),
            "tracking server every worker reaches",
        ),
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler is for --executor dask"),
    ],
)
def test_a_cluster_run_asked_for_wrongly_is_refused_before_anything_is_written(workdir, args, said):
    fanout(workdir)
    result = cli("run", "fan.ipynb", *args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "bug" not in result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["fan.ipynb"]


def test_a_sweep_on_the_cluster_shares_what_no_swept_value_changes(cluster, tmp_path):
    fanout(tmp_path)
    result = cli(
        "sweep", "fan.ipynb", "-p", "fail", "false,true", "--metric", "total", "--maximize",
        "--executor", "dask", "--artifact-store", _store("sweep"), cwd=tmp_path, env=cluster.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trial 2/2 fail=True: failed" in result.stderr and "branch c refuses" in result.stderr
    (record,) = (tmp_path / "mlops-runs" / "fan" / "sweeps").glob("*/sweep.json")
    sweep = SweepState.from_dict(json.loads(record.read_text()))
    assert [t.status for t in sweep.trials] == ["succeeded", "failed"] and sweep.best == 1
    second = load_run(Path(sweep.trial(2).run_dir or ""))
    assert {s.name: s.status for s in second.stages} == {
        "load": "cached", "slow": "cached", "branch_b": "cached",  # taken from trial 1
        "branch_c": "failed", "combine": "skipped",
    }  # fmt: skip
    client = MlflowClient(cluster.env["MLFLOW_TRACKING_URI"])
    assert client.get_run(sweep.mlflow_run_id).info.status == "FINISHED"
    for trial in sweep.trials:
        run = client.get_run(trial.mlflow_run_id)
        assert run.data.tags["mlflow.parentRunId"] == sweep.mlflow_run_id
