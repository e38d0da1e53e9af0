"""How a real Jupyter server with the extension holds up: its latency while one request does
something slow, and how many runners and kernels a burst of runs starts.

    python benchmarks/server_under_load.py [--lines 200000] [--runs 20] [--source DIR]

Starts `jupyter server` in a temporary folder and measures, each against a baseline taken in
the same run:

1. latency of `GET /api/status` (JupyterLab's own kind of request) while `POST analyze`
   analyses a notebook of `--lines` lines of code, against its latency when idle;
2. latency of `GET runs` and of `GET /api/status` while a run whose runner died names the
   server's own tracking server, which is down;
3. the peak number of runner processes and kernels while `--runs` quick runs are posted at
   once (with the default limit: the number of cores).

`--source DIR` runs the server with another checkout's `jupyter_mlops` first on the Python
path (say, a `git worktree` of an older commit), to compare before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

TOKEN = "benchmark-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, root: Path, source: Path | None, *options: str) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--allow-root",
                "--no-browser",
                f"--port={self.port}",
                f"--ServerApp.token={TOKEN}",
                f"--ServerApp.root_dir={root}",
                *options,
            ],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while True:
            try:
                self.request("GET", "/api/status")
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the Jupyter server did not start") from None
                time.sleep(0.3)

    def request(
        self, method: str, path: str, body: object = None, timeout: float = 900
    ) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def latencies(server: Server, path: str, until: threading.Event, limit: float = 900) -> list[float]:
    """Seconds each `GET path` took, one after another, until `until` is set."""
    seen: list[float] = []
    deadline = time.time() + limit
    while not until.is_set() and time.time() < deadline:
        start = time.perf_counter()
        server.request("GET", path)
        seen.append(time.perf_counter() - start)
        time.sleep(0.05)
    return seen


def summary(values: list[float]) -> str:
    if not values:
        return "no request answered"
    return (
        f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
        f"({len(values)} requests)"
    )


def notebook(lines: int) -> dict:
    per_cell = 500
    cells = []
    for i in range(max(1, lines // per_cell)):
        body = "".join(
            f"v{i}_{j} = v{i}_{j - 1} + {j}\n" if j else f"v{i}_0 = {i}\n" for j in range(per_cell)
        )
        cells.append(
            {
                "cell_type": "code",
                "metadata": {"tags": [f"stage:s{i}"]},
                "source": body,
                "outputs": [],
                "execution_count": None,
            }
        )
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def slow_analysis(server: Server, lines: int) -> None:
    done = threading.Event()
    baseline_stop = threading.Event()
    timer = threading.Timer(3, baseline_stop.set)
    timer.start()
    baseline = latencies(server, "/api/status", baseline_stop)
    result: dict[str, object] = {}

    def analyse() -> None:
        start = time.perf_counter()
        status, _ = server.request("POST", "/jupyter-mlops/analyze", {"notebook": notebook(lines)})
        result.update(status=status, seconds=time.perf_counter() - start)
        done.set()

    worker = threading.Thread(target=analyse)
    worker.start()
    during = latencies(server, "/api/status", done)
    worker.join()
    print(
        f"1. POST analyze of {lines:,} lines: HTTP {result['status']} in {result['seconds']:.2f} s"
    )
    print(f"   GET /api/status idle:            {summary(baseline)}")
    print(f"   GET /api/status during analysis: {summary(during)}")


def tracking_down(root: Path, source: Path | None) -> None:
    down = "http://127.0.0.1:9"
    server = Server(root, source, f"--MlopsExtension.tracking_uri={down}")
    try:
        folder = root / "mlops-runs" / "p" / "20261201-101500-abcdef"
        folder.mkdir(parents=True)
        state = {
            "id": folder.name,
            "pipeline": "p",
            "run_dir": str(folder),
            "status": "running",
            "pid": 2**22 + 12345,
            "tracking_uri": down,
            "experiment_id": "1",
            "parent_run_id": "0" * 32,
            "stages": [{"name": "a", "status": "running", "mlflow_run_id": "1" * 32}],
        }
        (folder / "run.json").write_text(json.dumps(state))
        done = threading.Event()
        result: dict[str, object] = {}

        def listing() -> None:
            start = time.perf_counter()
            status, body = server.request("GET", "/jupyter-mlops/runs")
            result.update(status=status, seconds=time.perf_counter() - start, body=body)
            done.set()

        thread = threading.Thread(target=listing)
        thread.start()
        during = latencies(server, "/api/status", done)
        thread.join()
        statuses = [run["status"] for run in result["body"].get("runs", [])]  # type: ignore[attr-defined]
        print(
            f"2. GET runs with an abandoned run on a tracking server that is down: "
            f"HTTP {result['status']} in {result['seconds']:.2f} s, statuses {statuses}"
        )
        print(f"   GET /api/status meanwhile: {summary(during)}")
    finally:
        server.stop()


def processes(root: Path) -> tuple[int, int]:
    """Runners of notebooks under `root`, and the kernels they started (their children)."""
    runners: set[str] = set()
    kernel_parents: list[str] = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            words = (folder / "cmdline").read_bytes().split(b"\0")
            parent = (folder / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if b"jupyter_mlops" in words and b"run" in words and str(root).encode() in b" ".join(words):
            runners.add(folder.name)
        elif any(b"ipykernel_launcher" in word for word in words):
            kernel_parents.append(parent)
    return len(runners), sum(parent in runners for parent in kernel_parents)


def burst(server: Server, root: Path, runs: int) -> None:
    nb = notebook(1)
    nb["cells"] = [
        {
            "cell_type": "code",
            "metadata": {"tags": ["stage:a"]},
            "source": "x = 1",
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["stage:b"]},
            "source": "y = x + 1",
            "outputs": [],
            "execution_count": None,
        },
    ]
    (root / "quick.ipynb").write_text(json.dumps(nb))
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            runners, kernels = processes(root)
            peak[0] = max(peak[0], runners)
            peak[1] = max(peak[1], kernels)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    for _ in range(runs):
        server.request("POST", "/jupyter-mlops/runs", {"path": "quick.ipynb"})
    while True:
        _, body = server.request("GET", "/jupyter-mlops/runs")
        statuses = [run["status"] for run in body["runs"]]
        if all(s not in ("running", "queued") for s in statuses):
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(
        f"3. {runs} quick runs posted at once ({os.cpu_count()} cores): peak {peak[0]} runners "
        f"and {peak[1]} kernels; all ended in {seconds:.0f} s: {counts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument(
        "--skip", action="append", default=[], choices=["analysis", "tracking", "burst"]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as folder:
        root = Path(folder)
        if "analysis" not in args.skip or "burst" not in args.skip:
            (root / "a").mkdir()
            server = Server(root / "a", args.source)
            try:
                if "analysis" not in args.skip:
                    slow_analysis(server, args.lines)
                if "burst" not in args.skip:
                    burst(server, root / "a", args.runs)
            finally:
                server.stop()
        if "tracking" not in args.skip:
            (root / "b").mkdir()
            tracking_down(root / "b", args.source)


if __name__ == "__main__":
    main()
