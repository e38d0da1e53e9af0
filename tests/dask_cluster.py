"""A real Dask cluster on 127.0.0.1 for the cluster executor's tests: `dask scheduler` and
workers as separate processes, each worker in a working folder of its own (they share
nothing with the test but the artifact store and the tracking server)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from s3_server import free_port

DASK = str(Path(sys.executable).parent / "dask")


class DaskCluster:
    def __init__(self, folder: Path, workers: int, env: dict[str, str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.count = workers

    def _start(self, command: list[str], cwd: Path, log: str) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        with (self.folder / log).open("ab") as out:
            return subprocess.Popen(
                command, cwd=cwd, env=self.env, stdout=out, stderr=out, start_new_session=True
            )

    def start(self) -> DaskCluster:
        self.scheduler = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"],
            self.folder / "scheduler", "scheduler.log",
        )  # fmt: skip
        for index in range(self.count):
            self.add_worker(index)
        self.wait_for_workers(self.count)
        return self

    def add_worker(self, index: int) -> None:
        self.workers.append(self._worker(index, f"w{index}"))

    def _worker(self, index: int, name: str) -> subprocess.Popen[bytes]:
        return self._start(
            [DASK, "worker", self.address, "--nthreads", "1", "--no-dashboard",
             "--no-nanny", "--name", name],
            self.folder / f"worker{index}", f"worker{index}.log",
        )  # fmt: skip

    def replace_dead_workers(self) -> None:
        """Start a new worker for each one that died (a test killed it)."""
        for index, process in enumerate(self.workers):
            if process.poll() is not None:
                self.workers[index] = self._worker(index, f"w{index}-{time.time():.0f}")
        self.wait_for_workers(self.count)

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        deadline = time.time() + timeout
        while True:
            try:
                with Client(self.address, timeout=10) as client:
                    client.wait_for_workers(count, timeout=max(1, deadline - time.time()))
                    return
            except (OSError, TimeoutError):
                if time.time() > deadline:
                    raise RuntimeError(self.logs()) from None
                time.sleep(0.5)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in sorted(self.folder.glob("*.log"))
        )

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers, self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
