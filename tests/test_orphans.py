# ruff: noqa: F811 (the private_tmp fixture is imported, then named as an argument)
"""A run never outlives what started it: the Jupyter server, or the kernel of a widget.

The hard case is a server stopped once the MLflow UI proxy was used: jupyter-server-proxy's
SIGTERM handler calls `sys.exit`, the extension's shutdown hook never runs, and nothing
tells the runner. So the runner watches its owner (`JUPYTER_MLOPS_STOP_WITH_PID`) and stops
as a cancel does: kernels and what they started killed, the run cancelled, its MLflow runs
FAILED, its temporary folders gone. (A runner killed outright is `test_faults.py`'s.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from browser import _descendants, _signal, jupyter_lab
from test_faults import (  # noqa: F401
    _wait_for,
    assert_nothing_left,
    private_tmp,
    waiting_notebook,
)

pytestmark = pytest.mark.slow

OWNER_ENDED = "the process that started this run"


def stage_pids(folder: Path) -> list[int]:
    """The pids of stage `work`'s kernel and of the `sleep` it started."""
    path = folder / "kernel.pid"
    _wait_for(lambda: path.is_file() and path.read_text(), 180, "the stage to start")
    return [int(pid) for pid in path.read_text().split()]


def test_a_server_stopped_after_using_the_mlflow_proxy_stops_its_runs(private_tmp):
    """A run from the REST API of a real `jupyter lab`, whose RunManager names the server as
    the runner's owner, then the server stopped as the issue found it stopped."""
    proxy = importlib.util.find_spec("jupyter_server_proxy") is not None
    with jupyter_lab(env={"TMPDIR": str(private_tmp)}) as lab:
        waiting_notebook(lab.root, "sleepy.ipynb")
        if proxy:  # the proxy starts `mlflow ui`, and installs its signal handlers
            request = urllib.request.Request(
                f"{lab.url}mlflow/", headers={"Authorization": f"token {lab.token}"}
            )
            with urllib.request.urlopen(request, timeout=180) as response:
                assert response.status == 200
        started = lab.api("POST", "jupyter-mlops/runs", {"path": "sleepy.ipynb"})
        pids = stage_pids(lab.root)
        run_dir = Path(lab.root, "mlops-runs", "sleepy", started["id"])
        family = _descendants(lab.process.pid)
        try:
            # With the proxy, SIGTERM is `sys.exit` in the proxy's handler; without it,
            # SIGKILL is the same for the runner: a dead parent that said nothing.
            lab.process.send_signal(signal.SIGTERM if proxy else signal.SIGKILL)
            lab.process.wait(60)
            state = assert_nothing_left(pids, run_dir, "cancelled", private_tmp)
        finally:
            for pid in family:  # the MLflow UI the proxy started, whatever else is left
                _signal(pid, signal.SIGKILL)
    # The runner stopped itself because its owner ended: the server's shutdown hook, which
    # would have cancelled it without a message, never ran.
    assert OWNER_ENDED in state.error.message, state.error
    assert [s.status for s in state.stages] == ["done", "cancelled"]


PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from jupyter_mlops.run.child import prepare_run
    from jupyter_mlops.widgets.watch import RunProcess

    prepared = prepare_run(Path("sleepy.ipynb"), {}, Path("mlops-runs").resolve(), sys.argv[1])
    run = RunProcess(prepared, Path.cwd(), lambda state: None, lambda end: None)
    print(prepared.folder, flush=True)
    time.sleep(600)
    """
)


def test_a_widget_kernel_killed_stops_its_run(workdir, private_tmp):
    """A process that starts a run as the widget panel does, in a kernel, then is killed."""
    waiting_notebook(workdir, "sleepy.ipynb")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, f"sqlite:///{workdir / 'mlflow.db'}"],
        cwd=workdir,
        env={**os.environ, "TMPDIR": str(private_tmp)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_dir = Path(parent.stdout.readline().strip())
        pids = stage_pids(workdir)
        parent.kill()
        parent.wait(30)
        state = assert_nothing_left(pids, run_dir, "cancelled", private_tmp)
    finally:
        with contextlib.suppress(ProcessLookupError):
            parent.kill()
        parent.stdout.close()
    assert OWNER_ENDED in state.error.message, state.error
    assert [s.status for s in state.stages] == ["done", "cancelled"]
