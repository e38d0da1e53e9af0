"""Faults, each really done: the runner killed, the tracking server stopped mid-run or never
there, a full disk, ten runs at once. Nothing may be lost or left corrupt, and every fault
gets one clear message."""

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive, cli, code, notebook, run_at_once, start_cli, write
from mlflow import MlflowClient
from mlflow_helpers import MlflowServer, client_for, pipeline_runs
from s3_server import free_port

from jupyter_mlops.artifacts import open_store
from jupyter_mlops.run.runstate import RunState, read_run

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own, so that what a run leaves in it is exactly its own.

    Short, under /tmp: kernels' Unix socket paths inside it must stay under 108 bytes.
    """
    folder = Path(tempfile.mkdtemp(prefix="jm-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def left_in(tmp: Path) -> list[str]:
    """The runner's temporary folders left in `tmp` (kernel sockets, stage gates)."""
    return sorted(p.name for p in tmp.glob("mlops-*"))


def assert_nothing_left(pids: list[int], run_dir: Path, status: str, tmp: Path) -> RunState:
    """A run whose runner could not end it itself: its processes, kernels and children,
    are gone, its MLflow runs FAILED, its temporary folders removed, run.json says `status`.

    Waits, since who cleans up (the runner's owner watch, or its reaper) works on its own.
    """
    _wait_for(lambda: not any(alive(pid) for pid in pids), 60, f"processes {pids} to end")
    _wait_for(lambda: read_run(run_dir).status != "running", 60, "the run to be ended")
    state = read_run(run_dir)
    assert state.status == status, state.error
    client = MlflowClient(state.tracking_uri)
    parent = client.get_run(state.parent_run_id)
    ran = [s.mlflow_run_id for s in state.stages if s.status != "done" and s.mlflow_run_id]
    _wait_for(
        lambda: {client.get_run(r).info.status for r in [parent.info.run_id, *ran]} == {"FAILED"},
        60,
        "its MLflow runs to be FAILED",
    )
    _wait_for(lambda: not left_in(tmp), 30, f"its temporary folders to go: {left_in(tmp)}")
    _wait_for(lambda: not zygotes_under(tmp), 30, "the zygote that forked its kernels to end")
    return state


def zygotes_under(folder: Path) -> list[int]:
    """The zygote processes (run/zygote.py) whose socket lies in `folder`, a run's TMPDIR."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            if "jupyter_mlops.run.zygote" in command and str(folder) in command:
                found.append(int(entry.name))
    return found


def waiting_notebook(folder: Path, name: str) -> Path:
    """Stage `work` records its kernel's pid and its `sleep` child's in `kernel.pid`, then
    waits for a `go` file (or 300 s)."""
    return write(
        notebook(
            code("import os, time\nfrom sklearn.linear_model import LogisticRegression", "setup"),
            code(
                "X = [[0.0], [1.0], [2.0], [3.0]]\ny = [0, 0, 1, 1]\n"
                "clf = LogisticRegression().fit(X, y)",
                "stage:train",
                "model:clf",
            ),
            code(
                "import subprocess\n"
                "child = subprocess.Popen(['sleep', '300'])\n"
                "open('kernel.pid', 'w').write(f'{os.getpid()} {child.pid}')\n"
                "deadline = time.time() + 300\n"
                "while not os.path.exists('go') and time.time() < deadline:\n"
                "    time.sleep(0.1)",
                "stage:work",
            ),
            code("score = float(clf.score(X, y))", "metrics"),
        ),
        folder / name,
    )


def test_kill_9_of_the_runner_leaves_nothing_behind(workdir, private_tmp):
    waiting_notebook(workdir, "killed.ipynb")
    env = {"TMPDIR": str(private_tmp)}
    runner = start_cli("run", "killed.ipynb", "--jobs", "1", cwd=workdir, env=env)
    _wait_for(
        lambda: (workdir / "kernel.pid").is_file() and (workdir / "kernel.pid").read_text(),
        180,
        "the stage to start",
    )
    kernel, child = map(int, (workdir / "kernel.pid").read_text().split())
    assert left_in(private_tmp)  # the stage's kernel sockets, at least
    runner.kill()  # SIGKILL: the runner can't clean up anything itself
    runner.communicate(timeout=30)
    # Its reaper, a process of its own, kills the kernel's process group (the `sleep` too),
    # removes the runner's temporary folders and marks the run failed, in MLflow too.
    dead = next((workdir / "mlops-runs" / "killed").iterdir())
    state = assert_nothing_left([kernel, child], dead, "failed", private_tmp)
    assert "killed or the machine stopped" in state.error.message
    assert [s.status for s in state.stages] == ["done", "cancelled"]
    client = client_for(workdir)
    assert client.get_run(state.stage("work").mlflow_run_id).info.status == "FAILED"

    (workdir / "go").write_text("")
    result = cli("run", "killed.ipynb", cwd=workdir, env=env)  # no lock or half-written file
    assert result.returncode == 0, result.stderr
    assert not left_in(private_tmp)  # a run that ends normally cleans up after itself
    _, stray = map(int, (workdir / "kernel.pid").read_text().split())
    assert not alive(stray)  # nor does what a stage started outlive the stage
    assert read_run(dead).error.message == state.error.message  # settled once
    cache = workdir / "mlops-runs" / ".cache"
    for entry in (cache / "entries").glob("*.json"):
        record = json.loads(json.loads(entry.read_text())["record"])
        if record["object"]:
            assert (cache / "objects" / record["object"] / "buffers.json").is_file()
    newest = read_run(sorted((workdir / "mlops-runs" / "killed").iterdir())[-1])
    assert [s.status for s in newest.stages] == ["cached", "done"]  # train's outputs survived


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 that a test can stop and start again."""
    server = MlflowServer(tmp_path / "server")
    uri = server.start()
    yield uri, server
    server.stop()


def test_tracking_server_stopped_mid_run_then_log_uploads_the_results(workdir, mlflow_server):
    uri, server = mlflow_server
    waiting_notebook(workdir, "lost.ipynb")
    runner = start_cli(
        "run",
        "lost.ipynb",
        "--tracking-uri",
        uri,
        cwd=workdir,
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"},
    )
    _wait_for(lambda: (workdir / "kernel.pid").is_file(), 180, "the last stage to start")
    server.stop()
    stopped = time.time()
    (workdir / "go").write_text("")
    _, stderr = runner.communicate(timeout=300)
    assert time.time() - stopped < 90  # seconds, not minutes of retries
    assert runner.returncode == 1
    assert "lost the MLflow tracking server" in stderr and "jupyter-mlops log" in stderr
    assert "Traceback" not in stderr
    run_dir = next((workdir / "mlops-runs" / "lost").iterdir())
    state = read_run(run_dir)
    assert state.status == "failed"
    assert [s.status for s in state.stages] == ["done", "done"]  # the work itself is kept
    assert (run_dir / state.stage("work").notebook).is_file()
    assert open_store(state.artifact_store).read_record("work").metrics == {"score": 1.0}

    server.start()
    result = cli("log", str(run_dir), cwd=workdir)
    assert result.returncode == 0, result.stderr
    client = MlflowClient(uri)
    parent = client.get_run(read_run(run_dir).parent_run_id)
    assert parent.info.status == "FINISHED"
    children = {
        r.data.tags["jupyter_mlops.stage"]: r
        for r in client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
    }
    assert {k: v.info.status for k, v in children.items()} == {
        "train": "FINISHED",
        "work": "FINISHED",
    }
    assert children["work"].data.metrics["score"] == 1.0
    assert "notebook/02_work.ipynb" in {
        a.path for a in client.list_artifacts(children["work"].info.run_id, "notebook")
    }
    version = client.get_model_version_by_alias("lost", "candidate")
    assert version.tags["jupyter_mlops.stage_run"] == children["train"].info.run_id


def test_an_unreachable_tracking_server_is_a_clear_error_at_once(workdir):
    write(notebook(code("x = 1", "stage:one")), workdir / "nowhere.ipynb")
    started = time.time()
    result = cli(
        "run", "nowhere.ipynb", "--tracking-uri", f"http://127.0.0.1:{free_port()}", cwd=workdir
    )
    assert time.time() - started < 30
    assert result.returncode == 2
    assert "can't reach the MLflow tracking server" in result.stderr
    assert "nothing was run" in result.stderr and "Traceback" not in result.stderr
    assert not (workdir / "mlops-runs").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB filesystem (tmpfs) to fill up."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        message = f"mounting a small tmpfs needs root: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clear_stage_failure(workdir, small_disk):
    write(
        notebook(
            code("import numpy as np", "setup"),
            code("big = np.ones(40 * 2**20 // 8)  # 40 MB: more than the disk holds", "stage:make"),
            code("total = float(big.sum())", "stage:use"),
        ),
        workdir / "full.ipynb",
    )
    result = cli("run", "full.ipynb", "--runs-dir", str(small_disk / "runs"), cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert "stage `make` failed while handing over its outputs" in result.stderr
    assert "No space left on device" in result.stderr and "the disk is full" in result.stderr
    assert "Traceback" not in result.stderr
    state = read_run(next((small_disk / "runs" / "full").iterdir()))
    assert [s.status for s in state.stages] == ["failed", "skipped"]
    objects = Path(state.artifact_store) / "objects"
    assert not list(objects.glob(".tmp-*"))  # the half-written object was cleaned away
    parent, children = pipeline_runs(client_for(workdir), "full")
    assert parent.info.status == "FAILED" and children["make"].info.status == "FAILED"


def test_ten_concurrent_runs_are_isolated(workdir):
    write(
        notebook(
            code("seed: int = 0", "parameters"),
            code("values = list(range(seed, seed + 5))", "stage:make"),
            code("total = sum(values)", "stage:add", "metrics"),
        ),
        workdir / "many.ipynb",
    )
    commands = [["run", "many.ipynb", "-p", "seed", str(seed), "--jobs", "1"] for seed in range(10)]
    run_at_once(commands, workdir, timeout=900)
    folders = sorted((workdir / "mlops-runs" / "many").iterdir())
    assert len(folders) == 10
    totals = set()
    for folder in folders:
        state = read_run(folder)
        assert state.status == "succeeded"
        store = open_store(state.artifact_store)
        seed = state.parameters["seed"]
        assert store.load("make", ["values"]) == {"values": list(range(seed, seed + 5))}
        totals.add(store.read_record("add").metrics["total"])
    assert totals == {float(sum(range(s, s + 5))) for s in range(10)}
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("many")
    parents = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" not in r.data.tags
    ]
    assert len(parents) == 10 and {p.info.status for p in parents} == {"FINISHED"}
    entries = list((workdir / "mlops-runs" / ".cache" / "entries").glob("*.json"))
    assert len(entries) == 20  # every seed's two stages, none lost to a race
    again = cli("run", "many.ipynb", "-p", "seed", "3", cwd=workdir)
    assert again.returncode == 0 and "cached" in again.stderr
