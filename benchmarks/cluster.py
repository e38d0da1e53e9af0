"""A fan-out pipeline on a Dask cluster of one worker against two, and plain papermill on the
same notebook (the baseline, measured in the same run).

Everything runs on this machine, as separate processes: moto's S3 server for the artifact
store, a real `mlflow server`, a `dask scheduler` and `dask worker` processes (one thread
each), each worker in its own folder. The notebook: load, features, four independent
branches of 2 s of work each, and a fan-in; with two workers the branches run two at a time.

    pip install 'jupyter-mlops[dask]' 'moto[server]' s3fs
    python benchmarks/cluster.py
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import nbformat
from common import BIN, command_env, table, timed_command
from notebooks import fan_out_notebook, untagged


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _process(command: list[str], cwd: Path, env: dict[str, str]) -> Iterator[None]:
    cwd.mkdir(parents=True, exist_ok=True)
    with (cwd / "log.txt").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _wait_until(ready: object, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ready():  # type: ignore[operator]
        if time.time() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _workers(address: str) -> int:
    from distributed import Client

    try:
        with Client(address, timeout=5) as client:
            return len(client.scheduler_info()["workers"])
    except OSError:
        return 0


def main(arguments: Sequence[str] = ()) -> str:
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        work = Path(folder)
        s3, mlflow, dask = _port(), _port(), _port()
        env = {
            **command_env(),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3}",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        stack.enter_context(
            _process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3)], work / "s3", env)
        )
        stack.enter_context(
            _process(
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{work / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(work / "artifacts"),
                ],
                work / "mlflow",
                env,
            )
        )
        address = f"tcp://127.0.0.1:{dask}"
        stack.enter_context(
            _process(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(dask),
                    "--no-dashboard",
                ],
                work / "scheduler",
                env,
            )
        )
        _wait_until(lambda: _answers(f"http://127.0.0.1:{s3}"), "moto_server")
        _wait_until(lambda: _answers(f"http://127.0.0.1:{mlflow}/health"), "mlflow server")
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})  # boto3, s3fs
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
        notebook = work / "fan.ipynb"
        nbformat.write(fan_out_notebook(branches=4, work_seconds=2.0), notebook)
        plain = work / "plain.ipynb"
        nbformat.write(untagged(nbformat.read(notebook, as_version=4)), plain)
        run = [
            str(BIN / "jupyter-mlops"), "run", notebook.name, "--executor", "dask",
            "--scheduler", address, "--artifact-store", "s3://bench/runs",
            "--tracking-uri", f"http://127.0.0.1:{mlflow}",
        ]  # fmt: skip
        papermill = timed_command([str(BIN / "papermill"), plain.name, "out.ipynb"], work)
        seconds = {}
        for count in (1, 2):
            stack.enter_context(
                _process(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--no-nanny",
                    ],
                    work / f"worker{count}",
                    env,
                )
            )
            _wait_until(lambda n=count: _workers(address) >= n, f"dask worker {count}")
            timed_command(run, work)  # the worker's first stage imports everything once
            seconds[count] = timed_command(run, work)
    rows = [
        ["plain papermill (the baseline)", f"{papermill:.1f}", "1.00x"],
        ["`run --executor dask`, 1 worker", f"{seconds[1]:.1f}", f"{seconds[1] / papermill:.2f}x"],
        ["`run --executor dask`, 2 workers", f"{seconds[2]:.1f}", f"{seconds[2] / papermill:.2f}x"],
    ]
    note = f"\n\nTwo workers took {seconds[2] / seconds[1]:.0%} of one worker's time."
    return (
        table(["fan-out of 4 (2 s of work each), 7 stages", "wall time (s)", "ratio"], rows) + note
    )


if __name__ == "__main__":
    print(main(sys.argv[1:]))
