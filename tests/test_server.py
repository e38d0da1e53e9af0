"""The REST API inside a real Jupyter server (pytest-jupyter), runs as real child processes."""

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import alive, code, divergent_cells, notebook, wait_for, write
from mlflow_helpers import client_for, pipeline_runs
from tornado.httpclient import HTTPClientError

from jupyter_mlops.run.scheduling import default_jobs


def small(root: Path, name="small.ipynb", failing=False) -> Path:
    return write(
        notebook(
            code("rows: int = 3  # rows", "parameters"),
            code("values = list(range(rows))", "stage:make"),
            code(
                "total = sum(values)\n" + ("raise RuntimeError('nope')\n" if failing else ""),
                "stage:add",
                "metrics",
            ),
        ),
        root / "work" / name,
    )


async def test_config(api, jp_root_dir, jp_base_url):
    config = await api("GET", "config")
    assert config["tracking_uri"] == f"sqlite:///{jp_root_dir / 'mlflow.db'}"
    assert config["runs_dir"] == "mlops-runs"
    assert config["mlflow_ui_url"] == f"{jp_base_url}mlflow"  # behind jupyter-server-proxy
    assert config["version"]


async def test_analyze_the_browsers_notebook_or_a_path(api, jp_root_dir):
    path = small(jp_root_dir)
    unsaved = json.loads(path.read_text())
    unsaved["cells"][2]["metadata"]["tags"] = ["stage:sum", "metrics"]
    result = await api("POST", "analyze", body={"notebook": unsaved, "path": "work/small.ipynb"})
    assert [s["name"] for s in result["stages"]] == ["make", "sum"]
    assert result["ok"] and result["settings"]["pipeline"] == "small"
    saved = await api("POST", "analyze", body={"path": "work/small.ipynb"})
    assert [s["name"] for s in saved["stages"]] == ["make", "add"]
    assert saved["parameters"][0] == {
        "name": "rows",
        "type": "int",
        "default": 3,
        "help": "rows",
        "cell": 0,
        "line": 1,
        "optional": False,
    }


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ("not json", 400, "not JSON"),
        ({}, 400, "send the notebook JSON"),
        ({"path": "work/small.ipynb", "extra": 1}, 400, "extra"),
        ({"notebook": {"cells": []}}, 400, "not a Jupyter notebook"),
        ({"notebook": 5}, 400, "notebook"),
        ({"path": "../outside.ipynb"}, 403, "not a path inside"),
        ({"path": "/etc/passwd"}, 403, "not a path inside"),
        ({"path": "work/missing.ipynb"}, 404, "no notebook"),
    ],
)
async def test_analyze_rejects_bad_bodies(api, jp_root_dir, body, status, fragment):
    small(jp_root_dir)
    error = await api("POST", "analyze", body=body, expect=status)
    assert fragment in error["message"]


async def test_symlinks_out_of_the_root_are_rejected(api, jp_root_dir, tmp_path):
    outside = small(tmp_path / "elsewhere")
    (jp_root_dir / "link.ipynb").symlink_to(outside)
    error = await api("POST", "analyze", body={"path": "link.ipynb"}, expect=403)
    assert "outside" in error["message"]


async def test_unauthenticated_requests_are_rejected(jp_fetch):
    for method, path, body in (
        ("GET", "config", None),
        ("POST", "analyze", "{}"),
        ("GET", "runs", None),
        ("DELETE", "runs/x", None),
        ("POST", "verifications", '{"path": "x.ipynb"}'),
        ("GET", "verifications/20990101-000000-abcdef", None),
    ):
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch(
                "jupyter-mlops",
                *path.split("/"),
                method=method,
                body=body,
                headers={"Authorization": ""},
                allow_nonstandard_methods=True,
            )
        assert raised.value.code == 403


async def test_convert_writes_a_bundle_inside_the_root(api, jp_root_dir):
    small(jp_root_dir)
    result = await api("POST", "convert", body={"path": "work/small.ipynb"})
    assert result["output"] == "work/small_pipeline"
    assert (jp_root_dir / "work" / "small_pipeline" / "pipeline.yaml").is_file()
    assert "stages/01_make.ipynb" in result["files"]
    await api("POST", "convert", body={"path": "work/small.ipynb", "output": "../x"}, expect=403)
    broken = write(notebook(code("print(nope)", "stage:a")), jp_root_dir / "broken.ipynb")
    error = await api("POST", "convert", body={"path": broken.name}, expect=400)
    assert "nope" in error["message"]


async def test_a_run_from_start_to_finish(api, jp_root_dir, jp_base_url):
    source = small(jp_root_dir)
    before = source.read_bytes()
    error = await api(
        "POST",
        "runs",
        body={"path": "work/small.ipynb", "parameters": {"rows": "many"}},
        expect=400,
    )
    assert "`rows` must be an integer" in error["message"]
    error = await api(
        "POST", "runs", body={"path": "work/small.ipynb", "only": ["nope"]}, expect=400
    )
    assert "no stage `nope`" in error["message"]
    assert not (jp_root_dir / "mlops-runs").exists()

    started = await api(
        "POST", "runs", body={"path": "work/small.ipynb", "parameters": {"rows": 5}}, expect=202
    )
    assert started["status"] == "running" and started["path"] == "work/small.ipynb"
    run = await wait_for(api, started["id"])
    assert run["status"] == "succeeded", run["log_tail"]
    assert [(s["name"], s["status"], s["cells"]) for s in run["stages"]] == [
        ("make", "done", [1]),
        ("add", "done", [2]),
    ]
    assert run["parameters"] == {"rows": 5}
    experiment, parent_id = run["mlflow"]["experiment_id"], run["mlflow"]["run_id"]
    assert (
        run["mlflow"]["url"] == f"{jp_base_url}mlflow/#/experiments/{experiment}/runs/{parent_id}"
        "?workflowType=machine_learning"
    )
    assert "succeeded" in run["log_tail"]
    parent, children = pipeline_runs(client_for(jp_root_dir), "small")
    assert parent.info.run_id == run["mlflow"]["run_id"]
    assert children["add"].data.metrics["total"] == 10
    assert [s["metrics"] for s in run["stages"]] == [{}, {"total": 10}]
    listing = await api("GET", "runs")
    assert [r["id"] for r in listing["runs"]] == [started["id"]]
    assert "log_tail" not in listing["runs"][0]
    assert (await api("GET", "runs", params={"path": "other.ipynb"}))["runs"] == []
    assert source.read_bytes() == before


async def test_a_failing_run_reports_the_cell(api, jp_root_dir):
    small(jp_root_dir, "fails.ipynb", failing=True)
    started = await api("POST", "runs", body={"path": "work/fails.ipynb"}, expect=202)
    run = await wait_for(api, started["id"])
    assert run["status"] == "failed"
    assert run["error"]["cell"] == 2 and run["error"]["line"] == 2
    assert "RuntimeError: nope" in run["error"]["message"]
    add = run["stages"][1]
    assert add["status"] == "failed" and "RuntimeError" in add["error"]["traceback"]


def side_by_side(root: Path) -> Path:
    """A fan-out whose two branches each wait for the other to start: it succeeds only when
    they run at once (one at a time, the first gives up after two minutes and fails)."""
    meet = (
        f"import pathlib, time\nHERE = pathlib.Path({str(root)!r})\n\n"
        "def meet(me, other):\n"
        "    (HERE / f'{me}.started').touch()\n"
        "    for _ in range(1200):\n"
        "        if (HERE / f'{other}.started').exists():\n"
        "            return\n"
        "        time.sleep(0.1)\n"
        "    raise RuntimeError(f'{other} never ran beside {me}')\n"
    )
    return write(
        notebook(
            code(meet, "setup"),
            code("x = 1", "stage:source"),
            code("meet('left', 'right')\nleft = x + 1", "stage:left"),
            code("meet('right', 'left')\nright = x + 2", "stage:right"),
        ),
        root / "fanout.ipynb",
    )


@pytest.mark.skipif(default_jobs() < 2, reason="one core: the default runs one stage at a time")
async def test_a_run_without_jobs_runs_the_commands_default(api, jp_root_dir, jp_serverapp):
    side_by_side(jp_root_dir)
    started = await api("POST", "runs", body={"path": "fanout.ipynb"}, expect=202)
    extension = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))
    command = extension.run_manager.launches[started["id"]].prepared.command
    assert command[command.index("--jobs") + 1] == str(default_jobs())
    run = await wait_for(api, started["id"])
    assert run["status"] == "succeeded", run["log_tail"]
    assert {s["name"]: s["status"] for s in run["stages"]} == dict.fromkeys(
        ("source", "left", "right"), "done"
    )


def sleepy(root: Path) -> Path:
    return write(
        notebook(
            code(
                "import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))\n"
                "time.sleep(300)\nx = 1",
                "stage:wait",
            ),
            code("y = x", "stage:after"),
        ),
        root / "sleepy.ipynb",
    )


async def _wait_for_file(path: Path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists() or not path.read_text():
        assert time.time() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.3)


async def test_cancel_a_run(api, jp_root_dir):
    sleepy(jp_root_dir)
    await api("GET", "runs", "not-a-run-id", expect=400)
    await api("DELETE", "runs", "20990101-000000-abcdef", expect=404)
    started = await api("POST", "runs", body={"path": "sleepy.ipynb"}, expect=202)
    await _wait_for_file(jp_root_dir / "kernel.pid")
    kernel = int((jp_root_dir / "kernel.pid").read_text())
    await api("DELETE", "runs", started["id"], expect=202)
    run = await wait_for(api, started["id"], timeout=60)
    assert run["status"] == "cancelled"
    assert [s["status"] for s in run["stages"]] == ["cancelled", "cancelled"]
    await asyncio.sleep(0.5)
    assert not alive(kernel)
    parent, children = pipeline_runs(client_for(jp_root_dir), "sleepy")
    assert parent.info.status == "FAILED" and children["wait"].info.status == "FAILED"
    await api("DELETE", "runs", started["id"], expect=409)


async def test_history_and_cancel_survive_a_server_restart(api, jp_root_dir, jp_serverapp):
    small(jp_root_dir)
    sleepy(jp_root_dir)
    finished = await api("POST", "runs", body={"path": "work/small.ipynb"}, expect=202)
    await wait_for(api, finished["id"])
    running = await api("POST", "runs", body={"path": "sleepy.ipynb"}, expect=202)
    await _wait_for_file(jp_root_dir / "kernel.pid")

    extension = jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]
    extension = next(iter(extension))
    extension.initialize_settings()  # what a restarted server has: no memory, only the disk

    listing = await api("GET", "runs")
    assert {r["id"]: r["status"] for r in listing["runs"]} == {
        finished["id"]: "succeeded",
        running["id"]: "running",
    }
    await api("DELETE", "runs", running["id"], expect=202)
    run = await wait_for(api, running["id"], timeout=60)
    assert run["status"] == "cancelled"


@pytest.fixture
def with_proxy(jp_server_config, jp_root_dir):
    jp_server_config["ServerApp"]["jpserver_extensions"]["jupyter_server_proxy"] = True
    yield jp_server_config
    # An in-process test server gets no SIGTERM, so the proxy can't stop what it started.
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if str(jp_root_dir).encode() in (process / "cmdline").read_bytes():
                os.kill(int(process.name), signal.SIGTERM)
        except (OSError, ValueError):
            pass


async def test_the_mlflow_ui_is_served_behind_jupyter_server_proxy(
    with_proxy, jp_fetch, jp_root_dir
):
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{jp_root_dir / 'mlflow.db'}").create_experiment("seen-in-the-ui")
    response = await jp_fetch(
        "mlflow",
        "ajax-api",
        "2.0",
        "mlflow",
        "experiments",
        "search",
        method="POST",
        body=json.dumps({"max_results": 10}),
        headers={"Content-Type": "application/json"},
        request_timeout=120,
    )
    names = [e["name"] for e in json.loads(response.body)["experiments"]]
    assert "seen-in-the-ui" in names
    page = await jp_fetch("mlflow/", request_timeout=60)
    assert b"<title>MLflow</title>" in page.body

    # Straight to the UI's own port, a page on another name (DNS rebinding) is refused;
    # only the Host the proxy sends is let in.
    port, prefix = _mlflow_ui_address()
    search = f"http://127.0.0.1:{port}{prefix}/ajax-api/2.0/mlflow/experiments/search"

    def post(host: str) -> int:
        request = urllib.request.Request(
            search,
            data=b'{"max_results": 1}',
            headers={"Host": host, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert post("evil.example") == 403
    assert post(f"evil.example:{port}") == 403
    assert post(f"127.0.0.1:{port}") == 200


def _mlflow_ui_address() -> tuple[int, str]:
    """The port and path prefix of the `mlflow ui` the proxy started (its command line)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode().split("\0")
        except OSError:
            continue
        if "ui" in words and "--static-prefix" in words and "--port" in words:
            prefix = words[words.index("--static-prefix") + 1]
            return int(words[words.index("--port") + 1]), urllib.parse.quote(prefix)
    raise AssertionError("no `mlflow ui` process")


# --- verifications ------------------------------------------------------------------------


def divergent(root: Path) -> Path:
    return write(notebook(*divergent_cells()), root / "work" / "divergent.ipynb")


def identical(root: Path) -> Path:
    return write(
        notebook(
            code("x = [1]", "stage:a"),
            code("n = len(x)", "stage:b"),
            code("m = n * 2", "stage:c"),
        ),
        root / "identical.ipynb",
    )


async def test_verify_an_identical_and_a_divergent_notebook(api, jp_root_dir, jp_serverapp):
    """Both at once, in child processes: the server answers while they run, and remembers
    their verdicts after a restart."""
    before = divergent(jp_root_dir).read_bytes()
    identical(jp_root_dir)
    bad = await api("POST", "verifications", body={"path": "work/divergent.ipynb"}, expect=202)
    good = await api("POST", "verifications", body={"path": "identical.ipynb"}, expect=202)
    assert set(bad) == {"id"} and bad["id"] != good["id"]
    running = await api("GET", "verifications", bad["id"])
    assert running == {
        "id": bad["id"],
        "path": "work/divergent.ipynb",
        "status": "running",
        "report": None,
        "error": None,
    }

    view = await wait_for(api, bad["id"], collection="verifications")
    assert view["status"] == "divergent", view
    report = view["report"]
    assert report["identical"] is False and report["stages"] == 3 and report["values"] == 2
    [difference] = report["differences"]
    assert (difference["stage"], difference["variable"], difference["cell"]) == ("b", "n", 2)
    assert difference["readers"] == ["c"] and not difference["unseeded"]
    assert difference["detail"] == "the notebook has 2, the pipeline 1"
    assert report["folder"].startswith("mlops-runs/divergent/")  # kept, inside the root
    assert (jp_root_dir / report["folder"]).is_dir()
    assert (jp_root_dir / "divergent.ipynb").exists() is False  # nothing beside the notebook
    assert divergent(jp_root_dir).read_bytes() == before

    view = await wait_for(api, good["id"], collection="verifications")
    assert view["status"] == "identical", view
    assert view["report"]["differences"] == [] and view["report"]["folder"] == ""
    assert view["report"]["values"] == 2 and view["error"] is None
    folder = jp_root_dir / "mlops-runs" / ".verifications" / good["id"]
    assert {p.name for p in folder.iterdir()} >= {"report.json", "stderr.log"}
    assert (await api("GET", "runs"))["runs"] == []  # verifications are not pipeline runs

    extension = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))
    extension.initialize_settings()  # what a restarted server has: no memory, only the disk
    assert await api("GET", "verifications", good["id"]) == view
    assert (await api("GET", "verifications", bad["id"]))["status"] == "divergent"


async def test_a_verification_that_fails_reports_the_error(api, jp_root_dir):
    write(
        notebook(code("x = 1", "stage:a"), code("raise ValueError('boom')", "stage:b")),
        jp_root_dir / "raises.ipynb",
    )
    started = await api("POST", "verifications", body={"path": "raises.ipynb"}, expect=202)
    view = await wait_for(api, started["id"], collection="verifications")
    assert view["status"] == "failed" and view["report"] is None
    assert "ValueError: boom" in view["error"] and "cell 1" in view["error"]
    assert not view["error"].lower().startswith("error:")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"path": "../outside.ipynb"}, 403, "not a path inside"),
        ({"path": "/etc/passwd"}, 403, "not a path inside"),
        ({"path": "work/missing.ipynb"}, 404, "no notebook"),
        ({"path": "notes.txt"}, 400, "not a notebook"),
        ({"path": "broken.ipynb"}, 400, "nope"),
        ({}, 400, "path"),
        ({"path": "x.ipynb", "jobs": 2}, 400, "jobs: Extra inputs"),
    ],
)
async def test_verify_rejects_bad_paths(api, jp_root_dir, body, status, fragment):
    (jp_root_dir / "notes.txt").write_text("not a notebook")
    write(notebook(code("print(nope)", "stage:a")), jp_root_dir / "broken.ipynb")
    error = await api("POST", "verifications", body=body, expect=status)
    assert fragment in error["message"]
    assert not (jp_root_dir / "mlops-runs").exists()  # nothing started


async def test_unknown_verifications_are_404(api, jp_root_dir):
    for verification_id in ("20990101-000000-abcdef", "not-an-id", ".verifications"):
        error = await api("GET", "verifications", verification_id, expect=404)
        assert "no verification" in error["message"]


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _is_zygote(pid: int) -> bool:
    try:
        return b"jupyter_mlops.run.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _spares_of(owner: int, root: Path) -> list[int]:
    """Runners started ahead (run/spare.py) for runs in `root` that stop with `owner`."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if b"jupyter_mlops.run.spare" not in (entry / "cmdline").read_bytes():
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        owned = f"JUPYTER_MLOPS_STOP_WITH_PID={owner}".encode() in environ
        if owned and Path(cwd) == root.resolve():
            found.append(int(entry.name))
    return found


async def test_the_next_run_is_served_by_a_runner_started_ahead(api, jp_root_dir, jp_serverapp):
    """After a run, the server keeps one runner with MLflow imported for the next, and the
    zygote of the notebook just run: that run is the same command (same results, its own
    log), its kernels are forked from that zygote, and a cancel reaches it; the server's
    shutdown leaves none behind."""
    write(
        notebook(
            code("import os", "setup"),
            code("rows: int = 3  # rows", "parameters"),
            code("values = list(range(rows))", "stage:make"),
            code(
                "total = sum(values)\nopen('forked_by', 'w').write(str(os.getppid()))",
                "stage:add",
                "metrics",
            ),
        ),
        jp_root_dir / "work" / "small.ipynb",
    )
    first = await api("POST", "runs", body={"path": "work/small.ipynb"}, expect=202)
    assert (await wait_for(api, first["id"]))["status"] == "succeeded"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        spares = _spares_of(os.getpid(), jp_root_dir)
        zygotes = [z for s in spares for z in _children(s) if _is_zygote(z)]
        if spares and zygotes:
            break
        await asyncio.sleep(0.1)
    assert len(spares) == 1 and len(zygotes) == 1

    second = await api(
        "POST", "runs", body={"path": "work/small.ipynb", "parameters": {"rows": 5}}, expect=202
    )
    run = await wait_for(api, second["id"])
    assert run["status"] == "succeeded", run
    state = json.loads(
        next((jp_root_dir / "mlops-runs").glob(f"*/{second['id']}/run.json")).read_text()
    )
    assert state["pid"] == spares[0]  # the spare became this run's runner
    assert [s["metrics"] for s in state["stages"] if s["name"] == "add"] == [{"total": 10.0}]
    assert (jp_root_dir / "work" / "forked_by").read_text() == str(zygotes[0])
    log = next((jp_root_dir / "mlops-runs").glob(f"*/{second['id']}/runner.log")).read_text()
    assert "succeeded" in log

    sleepy(jp_root_dir)
    deadline = time.monotonic() + 30
    while not (spares := _spares_of(os.getpid(), jp_root_dir)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    running = await api("POST", "runs", body={"path": "sleepy.ipynb"}, expect=202)
    await _wait_for_file(jp_root_dir / "kernel.pid")
    await api("DELETE", "runs", running["id"], expect=202)
    assert (await wait_for(api, running["id"], timeout=60))["status"] == "cancelled"

    manager = next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))
    await manager.run_manager.stop_all()
    assert _spares_of(os.getpid(), jp_root_dir) == []
