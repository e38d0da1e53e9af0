# ruff: noqa: F811 (the private_tmp fixture is imported, then named as an argument)
"""`jupyter-mlops sweep`: the trials a sweep plans (pure), and sweeps run as a user runs them:
real kernels, a real sqlite store given with --tracking-uri (not the default one), Ctrl-C
and --resume."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from conftest import cli, code, notebook, start_cli, write
from mlflow import MlflowClient
from test_faults import private_tmp, zygotes_under  # noqa: F401

from jupyter_mlops.errors import BadInput
from jupyter_mlops.parameters import Parameter
from jupyter_mlops.run.history import load_run
from jupyter_mlops.sweeps.record import SweepState, Trial, trials_table
from jupyter_mlops.sweeps.space import choose_objective, parse_space

DECLARED = [
    Parameter("n_estimators", "int", 100),
    Parameter("max_depth", "int", None, optional=True),
    Parameter("lr", "float", 0.1),
    Parameter("name", "str", "a"),
    Parameter("layers", "list", [64]),
]


# --- the space (pure) ---------------------------------------------------------------------


def test_a_grid_tries_every_combination_the_last_parameter_fastest():
    space = parse_space(
        DECLARED, [("n_estimators", "100,200"), ("max_depth", "4,None"), ("lr", "0.5")], False
    )
    assert space.grid() == [
        {"n_estimators": 100, "max_depth": 4},
        {"n_estimators": 100, "max_depth": None},
        {"n_estimators": 200, "max_depth": 4},
        {"n_estimators": 200, "max_depth": None},
    ]
    assert space.fixed == {"lr": 0.5}  # one value: the same in every trial
    assert space.describe() == {"n_estimators": "100,200", "max_depth": "4,None"}


def test_values_are_checked_as_run_checks_them():
    with pytest.raises(BadInput, match="n_estimators"):
        parse_space(DECLARED, [("n_estimators", "100,many")], False)
    with pytest.raises(BadInput, match="did you mean `max_depth`"):
        parse_space(DECLARED, [("max_dept", "1,2")], False)
    with pytest.raises(BadInput, match="nothing to sweep"):
        parse_space(DECLARED, [("lr", "0.5")], False)


def test_a_range_needs_random_draws():
    with pytest.raises(BadInput, match="--random N"):
        parse_space(DECLARED, [("lr", "0.001:0.1")], False).grid()
    with pytest.raises(BadInput, match="LOW below HIGH"):
        parse_space(DECLARED, [("lr", "0.1:0.001")], True)
    with pytest.raises(BadInput, match="above 0"):
        parse_space(DECLARED, [("lr", "0:1:log")], True)


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_seed():
    pairs = [("n_estimators", "10:20"), ("lr", "0.0001:0.1:log"), ("max_depth", "2,None")]
    space = parse_space(DECLARED, pairs, True)
    trials = space.sample(200, seed=7)
    assert trials == space.sample(200, seed=7) != space.sample(200, seed=8)
    assert {t["n_estimators"] for t in trials} == set(range(10, 21))  # whole, ends included
    assert all(0.0001 <= t["lr"] <= 0.1 for t in trials)
    assert sum(t["lr"] < 0.001 for t in trials) > 40  # log-uniform: a third below 1e-3
    assert {t["max_depth"] for t in trials} == {2, None}


def test_strings_and_lists_take_their_own_separators():
    space = parse_space(DECLARED, [("name", r"a\,b,c"), ("layers", "[[64, 32], [128]]")], False)
    assert space.grid() == [
        {"name": "a,b", "layers": [64, 32]},
        {"name": "a,b", "layers": [128]},
        {"name": "c", "layers": [64, 32]},
        {"name": "c", "layers": [128]},
    ]
    with pytest.raises(BadInput, match="YAML list"):
        parse_space(DECLARED, [("layers", "64")], False)


def test_the_objective_comes_from_the_metrics_the_notebook_logs():
    assert choose_objective(["auc"], None, None).maximize
    assert not choose_objective(["accuracy", "val_loss"], "val_loss", None).maximize
    assert choose_objective(["rmse"], None, True).maximize  # said explicitly
    with pytest.raises(BadInput, match="--metric"):
        choose_objective(["accuracy", "f1"], None, None)
    with pytest.raises(BadInput, match="no stage logs the metric `auc`"):
        choose_objective(["accuracy"], "auc", None)
    with pytest.raises(BadInput, match="--maximize or --minimize"):
        choose_objective(["total"], None, None)
    with pytest.raises(BadInput, match="--maximize or --minimize"):  # higher is better there
        choose_objective(["neg_mean_squared_error"], None, None)


def test_the_best_trial_is_the_best_succeeded_one_and_is_bold_in_the_table():
    trials = [
        Trial(1, {"lr": 0.1}, "succeeded", metric=0.5),
        Trial(2, {"lr": 0.2}, "failed"),
        Trial(3, {"lr": 0.3}, "succeeded", metric=0.2),
    ]
    state = SweepState("s", "p", None, "loss", False, {"lr": "0.1,0.2,0.3"}, {}, trials)
    assert state.best_trial() is trials[2]
    trials[0].metric = float("nan")  # a diverged trial wins no comparison
    assert state.best_trial() is trials[2]
    state.best = 3
    assert "| **3** | **0.3** | **0.2** | **succeeded** |" in trials_table(state)


# --- sweeps as a user runs them -----------------------------------------------------------


def sweep_notebook(folder: Path) -> Path:
    """Data made once (reads no swept parameter), a model trained per `alpha` and `depth`
    (depth 0 fails; alpha 1 waits while a file `hold` exists), its score logged."""
    return write(
        notebook(
            code("import os\nimport time\nimport numpy as np", "setup"),
            code("size = 50\nalpha: float = 1.0\ndepth: int | None = None", "parameters"),
            code(
                "rng = np.random.default_rng(0)\nX = rng.normal(size=(size, 3))\n"
                "y = X @ [1.0, -2.0, 0.5]",
                "stage:load",
            ),
            code(
                "class Ridge:\n    def __init__(self, w):\n        self.w = w\n"
                "    def predict(self, data):\n        return np.asarray(data) @ self.w\n"
                "if depth == 0:\n    raise ValueError('depth 0 grows no tree')\n"
                "while alpha == 1 and os.path.exists('hold'):\n    time.sleep(0.1)\n"
                "w = np.linalg.solve(X.T @ X + alpha * np.eye(3), X.T @ y)\n"
                "if depth is not None:\n    w = w * (1 - 1 / (depth + 1))\n"
                "model = Ridge(w)",
                "stage:train",
                "model:model",
            ),
            code(
                "score = float(1 - ((model.predict(X) - y) ** 2).mean() / y.var())\nprint(score)",
                "stage:evaluate",
                "metrics",
            ),
            model_name="ridge",
            fit_data={"model": "X"},
        ),
        folder / "ridge.ipynb",
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One grid sweep of 2 x 3 trials (two fail), logged to a store elsewhere than the
    default, shared by the tests that read what it left."""
    folder = tmp_path_factory.mktemp("sweep")
    sweep_notebook(folder)
    store = folder / "elsewhere" / "tracking.db"
    store.parent.mkdir()
    uri = f"sqlite:///{store}"
    result = cli(
        "sweep", "ridge.ipynb", "-p", "alpha", "0.1,1000", "-p", "depth", "0,2,None",
        "--tracking-uri", uri, cwd=folder,
    )  # fmt: skip
    (sweep,) = (folder / "mlops-runs" / "ridge" / "sweeps").iterdir()
    state = SweepState.from_dict(json.loads((sweep / "sweep.json").read_text()))
    return folder, result, state, MlflowClient(tracking_uri=uri)


def test_a_sweep_runs_every_trial_and_a_failed_one_does_not_stop_it(swept):
    _, result, state, _ = swept
    assert result.returncode == 0, result.stderr
    assert [t.status for t in state.trials] == [
        "failed", "succeeded", "succeeded", "failed", "succeeded", "succeeded",
    ]  # fmt: skip
    assert "depth 0 grows no tree" in (state.trials[0].error or "")
    assert state.status == "succeeded" and state.best == 3  # alpha 0.1, depth None
    assert "trial 1/6 alpha=0.1 depth=0: failed" in result.stderr
    assert "best:       trial 3, highest score" in result.stdout


def test_stages_that_read_no_swept_parameter_run_once(swept):
    _, _, state, _ = swept
    statuses = [
        {s.name: s.status for s in load_run(Path(t.run_dir or "")).stages} for t in state.trials
    ]
    assert [s["load"] for s in statuses].count("done") == 1
    assert [s["load"] for s in statuses].count("cached") == 5
    assert all(s["train"] in ("done", "failed") for s in statuses)  # reads alpha and depth


def test_trials_are_nested_under_the_sweep_run(swept):
    _, _, state, client = swept
    sweep_run = client.get_run(state.mlflow_run_id)
    assert sweep_run.info.status == "FINISHED"
    assert sweep_run.data.params["sweep.alpha"] == "0.1,1000"
    assert sweep_run.data.metrics["best_score"] == state.trial(3).metric
    assert sweep_run.data.metrics["trials_failed"] == 2
    for trial in state.trials:
        run = client.get_run(trial.mlflow_run_id)
        assert run.data.tags["mlflow.parentRunId"] == state.mlflow_run_id
        assert run.info.status == ("FINISHED" if trial.status == "succeeded" else "FAILED")
        assert run.data.params["alpha"] == str(trial.parameters["alpha"])
    artifacts = {a.path for a in client.list_artifacts(state.mlflow_run_id)}
    assert {"sweep.json", "trials.md"} <= artifacts


def test_only_the_best_trial_is_registered_with_the_sweep_in_its_card(swept):
    _, _, state, client = swept
    versions = client.search_model_versions("name = 'ridge'")
    assert len(versions) == 1  # trials register nothing themselves
    version = client.get_model_version_by_alias("ridge", "candidate")
    assert version.run_id == state.trial(3).mlflow_run_id
    assert "## Chosen by a sweep" in version.description
    assert f"| **[3](#/experiments/{state.experiment_id}/runs/{version.run_id}" in (
        version.description
    )  # the best trial bold, linked to its run
    assert "| **0.1** | **None** |" in version.description
    assert state.models[0]["version"] == str(version.version)
    best_run = load_run(Path(state.trial(3).run_dir or ""))
    assert best_run.models[0]["version"] == str(version.version)


def test_a_stopped_sweep_resumes_where_it_stopped(workdir, private_tmp):
    sweep_notebook(workdir)
    (workdir / "hold").write_text("")  # the second trial (alpha 1) waits while it exists
    tmp = {"TMPDIR": str(private_tmp)}  # the zygotes' sockets: what is left is this sweep's
    process = start_cli("sweep", "ridge.ipynb", "-p", "alpha", "0.1,1,10", cwd=workdir, env=tmp)
    sweeps = workdir / "mlops-runs" / "ridge" / "sweeps"
    deadline = time.time() + 180
    while True:  # stop it while its second trial sleeps
        assert time.time() < deadline and process.poll() is None, process.communicate()
        records = list(sweeps.glob("*/sweep.json"))
        if records:
            state = SweepState.from_dict(json.loads(records[0].read_text()))
            if state.trial(1).status == "succeeded" and state.trial(2).status == "running":
                break
        time.sleep(0.2)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    _no_zygote_left(private_tmp)  # nor the trial's, nor the one started for the next trial
    assert f"--resume {state.id}" in stderr and "Traceback" not in stderr
    stopped = SweepState.from_dict(json.loads(records[0].read_text()))
    assert stopped.status == "stopped"
    assert [t.status for t in stopped.trials] == ["succeeded", "cancelled", "pending"]
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")
    assert client.get_run(stopped.mlflow_run_id).info.status == "KILLED"
    assert not client.search_model_versions("name = 'ridge'")  # not before it ends

    usage = cli("sweep", "ridge.ipynb", "--resume", state.id, "-p", "alpha", "1", cwd=workdir)
    assert usage.returncode == 2 and "Usage:" in usage.stderr and "leave out -p" in usage.stderr
    (workdir / "hold").unlink()
    result = cli("sweep", "ridge.ipynb", "--resume", state.id, cwd=workdir, env=tmp)
    assert result.returncode == 0, result.stderr
    assert "2 of 3 trials to run" in result.stderr
    _no_zygote_left(private_tmp)
    resumed = SweepState.from_dict(json.loads(records[0].read_text()))
    assert resumed.trial(1).run_id == stopped.trial(1).run_id  # not run again
    assert [t.status for t in resumed.trials] == ["succeeded"] * 3
    assert client.get_run(resumed.mlflow_run_id).info.status == "FINISHED"
    assert client.get_model_version_by_alias("ridge", "candidate").run_id == (
        resumed.trial(resumed.best or 0).mlflow_run_id
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-p", "alpha", "0.001:1"], "--random N"),
        (["-p", "alpha", "0.1,1", "--metric", "auc"], "no stage logs the metric `auc`"),
        (["-p", "alpha", "0.1,x"], "alpha"),
        (["-p", "alpha", "0.1,1", "--resume", "nope"], "leave out -p"),
        (["--resume", "20260101-000000-abcdef"], "no sweep `20260101-000000-abcdef`"),
        (["--resume", "../../elsewhere"], "is not a sweep id"),
        (["-p", "alpha", "1"], "nothing to sweep"),
    ],
)
def test_a_sweep_asked_for_wrongly_is_refused_before_anything_runs(workdir, args, said):
    sweep_notebook(workdir)
    result = cli("sweep", "ridge.ipynb", *args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "bug" not in result.stderr
    assert not (workdir / "mlops-runs").exists() and not (workdir / "mlflow.db").exists()


def test_a_finished_sweep_is_not_resumed_and_a_sweep_resumes_only_in_its_own_store(swept):
    folder, _, state, _ = swept
    again = cli("sweep", "ridge.ipynb", "--resume", state.id, cwd=folder)
    assert again.returncode == 2 and "no trial left to run" in again.stderr
    elsewhere = cli(
        "sweep", "ridge.ipynb", "--resume", state.id, "--tracking-uri",
        f"sqlite:///{folder / 'other.db'}", cwd=folder,
    )  # fmt: skip
    assert elsewhere.returncode == 2 and "resume it there" in elsewhere.stderr
    assert not (folder / "other.db").exists() and not (folder / "mlflow.db").exists()


def _no_zygote_left(tmp: Path) -> None:
    deadline = time.time() + 30
    while zygotes_under(tmp):
        assert time.time() < deadline, "a zygote outlived the sweep"
        time.sleep(0.2)
