"""The server against files it did not write, requests that would freeze it, and more runs
than the machine has cores; each against a real Jupyter server (pytest-jupyter).

A run folder is written by whoever can write in the runs folder: Jupyter's own Contents API
is enough, so the planted files here go through it, as an attacker's would (the symlinks
need a shell, or a checkout of someone's repository).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import code, notebook, wait_for, write

PLANTED = "20261201-101500-abcdef"
SECRET_FILE = "top secret: the outside file"


async def _put(jp_fetch, path: str, model: dict) -> None:
    await jp_fetch("api", "contents", *path.split("/"), method="PUT", body=json.dumps(model))


async def _plant(jp_fetch, folder: str, files: dict[str, str]) -> None:
    """Create `folder` (and its parents) and text files in it through the Contents API."""
    parts = folder.split("/")
    for depth in range(1, len(parts) + 1):
        await _put(jp_fetch, "/".join(parts[:depth]), {"type": "directory"})
    for name, text in files.items():
        await _put(
            jp_fetch, f"{folder}/{name}", {"type": "file", "format": "text", "content": text}
        )


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A web server that remembers every request (and its Authorization header)."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def _answer(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def mlops(jp_server_config, request):
    """The extension's settings for this test (parametrize it indirectly); before `api`."""
    jp_server_config["MlopsExtension"] = request.param
    return request.param


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("outside-the-root")
    (folder / "secret.txt").write_text(SECRET_FILE)
    return folder


def _hostile_state(outside: Path, tracking_uri: str) -> dict:
    return {
        "id": PLANTED,
        "pipeline": "p",
        "run_dir": str(outside / "made-by-the-server"),
        "status": "running",
        "pid": 2**22 + 12345,  # no such process
        "tracking_uri": tracking_uri,
        "experiment_id": "1",
        "parent_run_id": "0" * 32,
        "stages": [
            {"name": "a", "status": "running", "log": str(outside / "secret.txt")},
            {"name": "b", "status": "done", "log": "../../../../../../../../../" + str(outside)},
            {"name": "c", "status": "done", "log": "logs/c.log", "notebook": "/etc/passwd"},
        ],
    }


async def test_a_planted_run_json_is_data_from_a_stranger(
    api, jp_fetch, jp_root_dir, outside, recorder, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "bearer-token-of-the-server")
    stranger = f"http://127.0.0.1:{recorder.server_address[1]}"
    state = _hostile_state(outside, stranger)
    await _plant(jp_fetch, f"mlops-runs/p/{PLANTED}", {"run.json": json.dumps(state)})
    # A log that is a symlink out of the run folder, and a runs folder entry that is one.
    logs = jp_root_dir / "mlops-runs" / "p" / PLANTED / "logs"
    logs.mkdir()
    (logs / "c.log").symlink_to(outside / "secret.txt")
    other = outside / "p2" / "20261201-101500-000000"
    other.mkdir(parents=True)
    (other / "run.json").write_text(json.dumps({**state, "id": other.name, "status": "done"}))
    (jp_root_dir / "mlops-runs" / "p2").symlink_to(outside / "p2")

    listed = (await api("GET", "runs"))["runs"]
    assert [run["id"] for run in listed] == [PLANTED]  # not the one behind the symlink
    await api("GET", "runs", other.name, expect=404)
    view = await api("GET", "runs", PLANTED)
    assert SECRET_FILE not in json.dumps(view) and SECRET_FILE not in json.dumps(listed)
    assert [stage["log_tail"] for stage in view["stages"]] == ["", "", ""]
    # Its runner is gone: marked failed where it lies, and nothing written outside.
    assert view["status"] == "failed"
    assert sorted(p.name for p in outside.iterdir()) == ["p2", "secret.txt"]
    assert json.loads((logs.parent / "run.json").read_text())["status"] == "failed"
    # The tracking server it names is not this server's: never called, no links into it.
    await api("DELETE", "runs", PLANTED, expect=409)
    await asyncio.sleep(1)
    assert recorder.RequestHandlerClass.seen == []
    assert view["mlflow"]["url"] is None and view["mlflow"]["run_id"] is None


@pytest.mark.parametrize("mlops", [{"tracking_uri": "http://127.0.0.1:9"}], indirect=True)
async def test_a_run_whose_runner_is_gone_never_waits_for_an_unreachable_tracking_server(
    mlops, jp_fetch, api, jp_root_dir
):
    """The server's own store is down: listing marks the run failed at once and tells
    MLflow in the background (where it fails fast)."""
    down = "http://127.0.0.1:9"  # the discard port: nothing listens
    state = {**_hostile_state(jp_root_dir, down), "stages": [{"name": "a", "status": "running"}]}
    await _plant(jp_fetch, f"mlops-runs/p/{PLANTED}", {"run.json": json.dumps(state)})
    listed = await api("GET", "runs", request_timeout=30)
    assert [run["status"] for run in listed["runs"]] == ["failed"]
    assert (await api("GET", "config", request_timeout=5))["tracking_uri"] == down


def _big_notebook(lines: int):
    return notebook(*[code(f"x{i} = {i}\n" * 1000, f"stage:s{i}") for i in range(lines // 1000)])


@pytest.mark.parametrize("mlops", [{"work_timeout": 0.3}], indirect=True)
async def test_a_slow_analysis_runs_in_a_worker_and_stops_at_its_budget(
    mlops, jp_fetch, api, jp_root_dir
):
    big = asyncio.ensure_future(
        api("POST", "analyze", body={"notebook": _big_notebook(400_000)}, expect=413)
    )
    # The event loop is free while it runs: JupyterLab's own requests and ours answer.
    await api("GET", "config")
    await jp_fetch("api", "contents")
    error = await big
    assert "took longer than 0.3 s" in error["message"]
    assert "work_timeout" in error["message"]
    # The stuck worker was replaced: the next analysis is served.
    small = write(notebook(code("x = 1", "stage:a")), jp_root_dir / "small.ipynb")
    assert (await api("POST", "analyze", body={"path": small.name}))["stages"][0]["name"] == "a"


@pytest.mark.parametrize("mlops", [{"max_notebook_mb": 0.05}], indirect=True)
async def test_oversized_notebooks_get_413(mlops, api, jp_root_dir):
    nb = _big_notebook(20_000)
    write(nb, jp_root_dir / "big.ipynb")
    for request in (
        ("POST", "analyze", {"notebook": nb}),
        ("POST", "analyze", {"path": "big.ipynb"}),
        ("POST", "convert", {"path": "big.ipynb"}),
        ("POST", "runs", {"path": "big.ipynb"}),
        ("POST", "verifications", {"path": "big.ipynb"}),
    ):
        method, path, body = request
        error = await api(method, path, body=body, expect=413)
        assert "max_notebook_mb" in error["message"], request
    assert not (jp_root_dir / "mlops-runs").exists()


@pytest.mark.parametrize(
    "path",
    [
        "nb.ipynb\x00",
        "\ud800.ipynb",
        "a/" * 2100 + "nb.ipynb",
        "nb\n.ipynb",
    ],
    ids=["nul", "lone-surrogate", "over-4-kb", "newline"],
)
async def test_paths_that_cant_name_a_file_are_400(api, jp_root_dir, path):
    write(notebook(code("x = 1", "stage:a")), jp_root_dir / "nb.ipynb")
    for endpoint in ("analyze", "convert", "runs", "verifications"):
        error = await api("POST", endpoint, body=json.dumps({"path": path}), expect=400)
        assert "path" in error["message"]


async def test_deeply_nested_parameters_are_400(api, jp_root_dir):
    write(notebook(code("x = 1", "stage:a")), jp_root_dir / "nb.ipynb")
    deep = '{"path": "nb.ipynb", "parameters": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
    error = await api("POST", "runs", body=deep, expect=400)
    assert "nested too deeply" in error["message"]


@pytest.mark.parametrize("text", ["ascii", "multibyte"])
async def test_a_secret_cut_by_the_log_tail_is_still_masked(api, jp_fetch, monkeypatch, text):
    secret = "krit-123-very-secret-value"
    monkeypatch.setenv("MY_API_KEY", secret)
    state = {
        "id": PLANTED,
        "pipeline": "p",
        "run_dir": "",
        "status": "failed",
        "stages": [{"name": "a", "status": "failed", "log": "a.log"}],
    }
    if text == "ascii":  # the 4,000-character tail starts in the middle of the secret
        log = secret + "x" * (4000 - len(secret) // 2)
    else:  # a progress bar's 3-byte characters: the read starts in the middle of it
        log = "x" * 5000 + secret + "\u2588" * 1364
    await _plant(jp_fetch, f"mlops-runs/p/{PLANTED}", {"run.json": json.dumps(state), "a.log": log})
    tail = (await api("GET", "runs", PLANTED))["stages"][0]["log_tail"]
    assert "krit" not in tail and "secret-value" not in tail and "value" not in tail[:40]


# --- a queue of runs ------------------------------------------------------------------------


def _sleepy(root: Path, seconds: float) -> Path:
    return write(
        notebook(code(f"import time\ntime.sleep({seconds})\nx = 1", "stage:wait")),
        root / "sleepy.ipynb",
    )


@pytest.mark.parametrize("mlops", [{"max_concurrent_runs": 1}], indirect=True)
async def test_runs_beyond_the_limit_wait_in_a_queue_and_can_be_cancelled(mlops, api, jp_root_dir):
    _sleepy(jp_root_dir, 3)
    first, second, third = [
        (await api("POST", "runs", body={"path": "sleepy.ipynb"}, expect=202))["id"]
        for _ in range(3)
    ]
    statuses = {run["id"]: run["status"] for run in (await api("GET", "runs"))["runs"]}
    assert statuses == {first: "running", second: "queued", third: "queued"}
    cancelled = await api("DELETE", "runs", third, expect=202)
    assert cancelled["status"] == "cancelled"
    assert (await api("GET", "runs", third))["status"] == "cancelled"
    assert (await wait_for(api, first))["status"] == "succeeded"
    assert (await wait_for(api, second))["status"] == "succeeded"
    assert (await api("GET", "runs", third))["status"] == "cancelled"
    # One at a time: the second runner started after the first one ended.
    states = {
        run_id: json.loads(
            next((jp_root_dir / "mlops-runs").glob(f"*/{run_id}/run.json")).read_text()
        )
        for run_id in (first, second)
    }
    assert states[second]["created"] >= states[first]["finished"]
    assert not list((jp_root_dir / "mlops-runs").glob(f"*/{third}/run.json"))  # never started


async def test_a_run_cancelled_in_its_first_moments_is_cancelled_not_failed(api, jp_root_dir):
    _sleepy(jp_root_dir, 30)
    run_id = (await api("POST", "runs", body={"path": "sleepy.ipynb"}, expect=202))["id"]
    await api("DELETE", "runs", run_id, expect=202)
    view = await wait_for(api, run_id, timeout=120)
    assert view["status"] == "cancelled", view


async def test_broken_run_files_are_skipped_not_a_500(api, jp_fetch):
    """A run.json of the wrong shape or nested 100,000 deep: the listing still answers."""
    good = {"id": PLANTED, "pipeline": "p", "run_dir": "", "status": "succeeded", "stages": []}
    broken = {
        "20261201-101500-000001": {**good, "stages": [1, 2]},
        "20261201-101500-000002": {**good, "status": ["running"]},
        "20261201-101500-000003": {**good, "created": "yesterday"},
        "20261201-101500-000004": "[" * 100_000 + "]" * 100_000,
        "20261201-101500-000005": {**good, "source": 5},
        "20261201-101500-000006": {**good, "models": ["x"]},
        "20261201-101500-000007": {**good, "parameters": {"x": json.loads("[" * 500 + "]" * 500)}},
    }
    await _plant(jp_fetch, f"mlops-runs/p/{PLANTED}", {"run.json": json.dumps(good)})
    for run_id, state in broken.items():
        text = state if isinstance(state, str) else json.dumps({**state, "id": run_id})
        await _plant(jp_fetch, f"mlops-runs/p/{run_id}", {"run.json": text})
    # A bundle that isn't UTF-8, and a stage it doesn't know: the run shows, without cells.
    odd = "20261201-101500-000008"
    await _plant(
        jp_fetch,
        f"mlops-runs/p/{odd}",
        {
            "run.json": json.dumps(
                {**good, "id": odd, "stages": [{"name": "zzz", "status": "done"}]}
            )
        },
    )
    await _plant(
        jp_fetch, f"mlops-runs/p/{odd}/bundle", {"pipeline.yaml": "name: p\nstages: [1]\n"}
    )
    assert [run["id"] for run in (await api("GET", "runs"))["runs"]] == [PLANTED, odd]
    assert (await api("GET", "runs", odd))["stages"][0]["cells"] == []
    for run_id in broken:
        await api("GET", "runs", run_id, expect=404)


async def test_infinite_defaults_are_answered_as_strict_json(jp_fetch, jp_root_dir):
    write(
        notebook(
            code("limit = 1e999\nfloor = -1e999", "parameters"),
            code("x = limit", "stage:a"),
        ),
        jp_root_dir / "nan.ipynb",
    )
    response = await jp_fetch(
        "jupyter-mlops", "analyze", method="POST", body=json.dumps({"path": "nan.ipynb"})
    )

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    analysis = json.loads(response.body, parse_constant=refuse)
    assert analysis["ok"], analysis["diagnostics"]
    assert "Infinity" in response.body.decode() and "-Infinity" in response.body.decode()
