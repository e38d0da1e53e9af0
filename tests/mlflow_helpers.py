"""Reading back what a run logged, through MlflowClient, as an ML engineer would; and a real
`mlflow server` on 127.0.0.1 for the tests that need one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run
from s3_server import free_port


def client_for(folder: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def pipeline_runs(client: MlflowClient, experiment: str) -> tuple[Run, dict[str, Run]]:
    """The most recent parent run of the experiment and its child runs by stage name."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    parent = parents[0]
    children = {
        r.data.tags["jupyter_mlops.stage"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    return parent, children


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found |= artifact_paths(client, run_id, item.path)
        else:
            found.add(item.path)
    return found


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over HTTP, with its own sqlite store and
    `--artifacts-destination` under `folder`, as an engineer would run one for her team.

    Use it as a context manager (`with MlflowServer(folder) as uri:`), or call `start()` and
    `stop()` to take it down and bring it back in the middle of a test. It runs in its own
    process group, so stopping it also stops the workers it forked.
    """

    def __init__(self, folder: Path, start_timeout: float = 180.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.log = folder / "mlflow-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'x.db'}",
            "--artifacts-destination",
            str(self.folder / "art"),
        ]

    def start(self) -> str:
        """Start the server and wait until it answers /health; returns its URI."""
        # No background job runner: nothing here uses it, and it would outlive a stop().
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + self.start_timeout
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"mlflow server did not come up on {self.uri}: see {self.log}\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        return self.uri

    def stop(self) -> None:
        """Stop the server and every process it started."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
