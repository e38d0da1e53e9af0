"""Sweeps through the REST API (`POST sweeps`, `GET sweeps[/{id}]`, `DELETE sweeps/{id}`,
`POST sweeps/{id}/resume`): the command in a child process of a real server, checked first,
stopped and resumed; every answer is its model. Bad requests are in test_rest_contract."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import code, notebook, wait_for, write
from mlflow import MlflowClient
from test_rest_contract import _answer, _is

from jupyter_mlops.server.schemas import Sweep, SweepList
from jupyter_mlops.sweeps.record import SweepState, Trial, write_sweep

pytestmark = pytest.mark.slow


def ridge(path: Path, alpha: str = "alpha", model: str = "ridge") -> Path:
    """Three stages, numpy only: data made once, a model per `alpha` (alpha 1 waits while a
    file `hold` exists in the server's root), its `score` logged."""
    return write(
        notebook(
            code("import os\nimport time\nimport numpy as np", "setup"),
            code(f"{alpha}: float = 1.0  # how much to shrink\nrows: int = 40", "parameters"),
            code(
                "rng = np.random.default_rng(0)\nX = rng.normal(size=(rows, 3))\n"
                "y = X @ [1.0, -2.0, 0.5]",
                "stage:load",
            ),
            code(
                "class Ridge:\n    def __init__(self, w):\n        self.w = w\n"
                "    def predict(self, data):\n        return np.asarray(data) @ self.w\n"
                f"while {alpha} == 1 and os.path.exists('hold'):\n    time.sleep(0.1)\n"
                f"model = Ridge(np.linalg.solve(X.T @ X + {alpha} * np.eye(3), X.T @ y))",
                "stage:train",
                "model:model",
            ),
            code(
                "score = float(1 - ((model.predict(X) - y) ** 2).mean() / y.var())",
                "stage:evaluate",
                "metrics",
            ),
            model_name=model,
            fit_data={"model": "X"},
        ),
        path,
    )


class _Api:
    def __init__(self, jp_fetch):
        self.jp_fetch = jp_fetch

    async def __call__(self, method, *path):
        return json.loads(await _answer(self.jp_fetch, method, *path))


async def _listed(jp_fetch, path):
    response = await jp_fetch("jupyter-mlops", "sweeps", params={"path": path})
    return _is(SweepList, response.body.decode())


async def _until(jp_fetch, sweep_id, done, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        view = json.loads(await _answer(jp_fetch, "GET", "sweeps", sweep_id))
        if done(view):
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.3)


async def test_a_sweep_is_started_stopped_and_resumed(jp_fetch, jp_root_dir):
    ridge(jp_root_dir / "work" / "ridge.ipynb")
    (jp_root_dir / "hold").write_text("")  # the second trial waits while it exists
    body = {"path": "work/ridge.ipynb", "values": {"alpha": "0.1,1,10"}}
    started = _is(Sweep, await _answer(jp_fetch, "POST", "sweeps", body=body, expect=202))
    sweep_id = started["id"]
    assert started["status"] in ("queued", "running")
    assert [t["parameters"] for t in started["trials"]] == [
        {"alpha": 0.1},
        {"alpha": 1.0},
        {"alpha": 10.0},
    ]  # planned before the command wrote its record
    assert started["metric"] == "score" and started["maximize"] is True
    assert started["path"] == "work/ridge.ipynb"

    view = await _until(jp_fetch, sweep_id, lambda v: v["trials"][1]["status"] == "running")
    assert view["trials"][0]["status"] == "succeeded" and view["trials"][0]["metric"] > 0.9
    assert [s["id"] for s in (await _listed(jp_fetch, "work/ridge.ipynb"))["sweeps"]] == [sweep_id]
    stopping = _is(Sweep, await _answer(jp_fetch, "DELETE", "sweeps", sweep_id, expect=202))
    assert stopping["id"] == sweep_id
    stopped = await wait_for(_Api(jp_fetch), sweep_id, collection="sweeps")
    assert stopped["status"] == "stopped", stopped
    assert [t["status"] for t in stopped["trials"]] == ["succeeded", "cancelled", "pending"]
    again = await _answer(jp_fetch, "DELETE", "sweeps", sweep_id, expect=409)
    assert "not running (stopped)" in again

    (jp_root_dir / "hold").unlink()
    resumed = _is(Sweep, await _answer(jp_fetch, "POST", "sweeps", sweep_id, "resume", expect=202))
    assert resumed["status"] in ("queued", "running"), resumed
    done = await wait_for(_Api(jp_fetch), sweep_id, collection="sweeps")
    assert done["status"] == "succeeded", done
    assert [t["status"] for t in done["trials"]] == ["succeeded"] * 3
    assert done["trials"][0]["run_id"] == view["trials"][0]["run_id"]  # not run again
    assert done["best"] == 1  # the least regularized fits best
    [model] = done["models"]
    assert model["name"] == "ridge" and model["url"] and done["mlflow"]["url"]
    assert all(t["mlflow_url"] for t in done["trials"])
    finished = await _answer(jp_fetch, "POST", "sweeps", sweep_id, "resume", expect=409)
    assert "no trial left to run: it succeeded" in finished

    listing = await _listed(jp_fetch, "work/ridge.ipynb")
    assert [s["id"] for s in listing["sweeps"]] == [sweep_id]
    assert listing["sweeps"][0]["status"] == "succeeded"
    assert (await _listed(jp_fetch, "work/other.ipynb"))["sweeps"] == []
    record = jp_root_dir / done["folder"] / "sweep.json"
    assert json.loads(record.read_text())["best"] == 1
    client = MlflowClient(tracking_uri=done["mlflow"]["tracking_uri"])
    version = client.get_model_version_by_alias("ridge", "candidate")
    assert str(version.version) == model["version"]
    assert version.run_id == done["trials"][0]["mlflow_run_id"]


async def test_a_sweep_whose_process_died_shows_stopped(jp_fetch, jp_root_dir):
    """A record left `running` by a process that is gone (killed, or the machine stopped):
    shown stopped, its running trial cancelled, so that it can resume."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sweep_id = "20261203-120000-abcdef"
    state = SweepState(
        sweep_id,
        "ridge",
        str(ridge(jp_root_dir / "work" / "ridge.ipynb")),
        "score",
        True,
        {"alpha": "0.1,1"},
        {},
        [Trial(1, {"alpha": 0.1}, "succeeded", metric=0.9), Trial(2, {"alpha": 1.0}, "running")],
    )
    folder = jp_root_dir / "mlops-runs" / "ridge" / "sweeps" / sweep_id
    write_sweep(state, folder)
    (folder / "launch.json").write_text(json.dumps({"pid": dead.pid}))
    view = _is(Sweep, await _answer(jp_fetch, "GET", "sweeps", sweep_id))
    assert view["status"] == "stopped" and "resume" in view["error"]
    assert [t["status"] for t in view["trials"]] == ["succeeded", "cancelled"]
    assert view["path"] == "work/ridge.ipynb"
    await _answer(jp_fetch, "DELETE", "sweeps", sweep_id, expect=409)
    (folder / "launch.json").write_text(json.dumps({"pid": os.getpid()}))  # not a sweep's
    assert json.loads(await _answer(jp_fetch, "GET", "sweeps", sweep_id))["status"] == "stopped"
