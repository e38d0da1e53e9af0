"""What lands in MLflow links each model to its runs, data and metrics, and never lies.

The engineer's questions, asked of real runs through MlflowClient: where does this model
come from (its source run, notebook, parameters), how good is it (metrics logged against it,
with the dataset), which version is it, and was it trained by the run that claims it. Every
test uses tracking stores other than ./mlflow.db: MLflow resolves some registry calls
through the process-wide tracking URI, which once broke every `--tracking-uri` run at
registration ("Logged model with ID 'm-...' not found").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli, code, notebook, write
from mlflow import MlflowClient
from mlflow_helpers import MlflowServer

pytestmark = pytest.mark.slow


def model_notebook():
    return notebook(
        code("import numpy as np", "setup"),
        code("n_estimators = 20\nnoise = 0.3", "parameters"),
        code(
            "rng = np.random.default_rng(0)\n"
            "X = rng.random((120, 3))\n"
            "y = ((X[:, 0] + noise * rng.random(120)) > 0.6).astype(int)",
            "stage:load",
        ),
        code("X_train, X_test, y_train, y_test = X[:80], X[80:], y[:80], y[80:]", "stage:data"),
        code(
            "from sklearn.ensemble import RandomForestClassifier\n"
            "clf = RandomForestClassifier(n_estimators=n_estimators, random_state=0)\n"
            "clf.fit(X_train, y_train)",
            "stage:train",
            "model:clf",
        ),
        code("accuracy = float(clf.score(X_test, y_test))", "stage:evaluate", "metrics"),
        model_name="lineage",
    )


def client(store: str) -> MlflowClient:
    return MlflowClient(tracking_uri=store, registry_uri=store)


def versions(store: str) -> list[str]:
    found = client(store).search_model_versions("name='lineage'")
    return sorted(str(v.version) for v in found)


def candidate(store: str) -> str:
    return str(client(store).get_model_version_by_alias("lineage", "candidate").version)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A notebook, two tracking stores that aren't ./mlflow.db, and one full run in the first."""
    folder = tmp_path_factory.mktemp("lineage")
    write(model_notebook(), folder / "nb.ipynb")
    (folder / "stores").mkdir()
    first, second = (f"sqlite:///{folder / 'stores' / name}" for name in ("a.db", "b.db"))
    result = cli("run", "nb.ipynb", "--tracking-uri", first, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, first, second


def test_the_model_knows_its_run_notebook_parameters_metrics_and_version(project):
    folder, first, _ = project
    mlflow_client = client(first)
    experiment = mlflow_client.get_experiment_by_name("nb")
    assert experiment is not None
    (model,) = mlflow_client.search_logged_models([experiment.experiment_id])
    runs = {
        r.data.tags.get("jupyter_mlops.stage", "parent"): r
        for r in mlflow_client.search_runs([experiment.experiment_id])
    }
    parent, train, evaluate = runs["parent"], runs["train"], runs["evaluate"]

    # Logged inside the train stage's run, from the notebook (not ipykernel_launcher.py).
    assert model.source_run_id == train.info.run_id
    assert model.name == "lineage"  # named like the registered model, not `clf`
    assert "registered as [lineage v1]" in model.tags["mlflow.note.content"]  # its description
    assert model.tags["mlflow.source.name"].endswith("nb.ipynb")
    assert model.params["n_estimators"] == "20"
    assert model.params["noise"] == "0.3"  # read upstream, by the load stage
    # The evaluation metric is logged against the model, with the data it was computed on.
    (metric,) = [m for m in model.metrics if m.key == "accuracy"]
    assert metric.run_id == evaluate.info.run_id
    assert metric.dataset_name == "X_test" and metric.dataset_digest
    assert metric.value == evaluate.data.metrics["accuracy"]
    evaluated = mlflow_client.get_run(evaluate.info.run_id).inputs.model_inputs
    assert [m.model_id for m in evaluated] == [model.model_id]

    # Registered by model id; the version's run is the pipeline's parent run (its metrics
    # are what *Compare versions* shows), and the parent run lists the model it produced.
    (version,) = mlflow_client.search_model_versions("name='lineage'")
    assert version.source == f"models:/{model.model_id}"
    assert version.run_id == parent.info.run_id
    assert json.loads(model.tags["mlflow.modelVersions"]) == [{"name": "lineage", "version": "1"}]
    produced = mlflow_client.get_run(parent.info.run_id).outputs.model_outputs
    assert [o.model_id for o in produced] == [model.model_id]
    assert parent.data.tags["jupyter_mlops.registered_models"] == "lineage/1"
    assert parent.data.tags["mlflow.runName"] == "nb #1"
    # Stage runs read in stage order in MLflow's newest-first list; durations are rounded.
    assert sorted(r.info.run_name for r in (runs["data"], train, evaluate)) == [
        "02 · data",
        "03 · train",
        "04 · evaluate",
    ]
    assert all(
        r.data.metrics["duration_s"] == round(r.data.metrics["duration_s"], 2)
        for r in (runs["data"], train, evaluate)
    )
    assert not (folder / "mlflow.db").exists()  # nothing went to the default store


def test_partial_and_cached_reruns_register_nothing_and_refuse_other_parameters(project):
    folder, first, _ = project
    assert (versions(first), candidate(first)) == (["1"], "1")

    # Every stage cached: the run links to the version its model already has.
    result = cli("run", "nb.ipynb", "--tracking-uri", first, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "✓ train" not in result.stderr
    assert (versions(first), candidate(first)) == (["1"], "1")
    state = json.loads(sorted((folder / "mlops-runs" / "nb").glob("*/run.json"))[-1].read_text())
    assert [(m["version"], m["new"]) for m in state["models"]] == [("1", False)]

    # Only evaluate: the model comes from a run with the same code and parameters.
    result = cli("run", "nb.ipynb", "--only", "evaluate", "--tracking-uri", first, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (versions(first), candidate(first)) == (["1"], "1")

    # Other parameters: no earlier run trained that model, so it is refused, saying why.
    runs_before = sorted((folder / "mlops-runs" / "nb").iterdir())
    result = cli(
        "run", "nb.ipynb", "--only", "evaluate", "-p", "n_estimators", "5",
        "--tracking-uri", first, cwd=folder,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "n_estimators=20 (this run: 5)" in result.stderr
    assert "noise" not in result.stderr  # only what differs is named
    assert sorted((folder / "mlops-runs" / "nb").iterdir()) == runs_before  # no trace left
    assert versions(first) == ["1"]

    # Trained anew with other parameters: a new version, the candidate moves.
    result = cli("run", "nb.ipynb", "-p", "n_estimators", "5", "--tracking-uri", first, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (versions(first), candidate(first)) == (["1", "2"], "2")

    # Partial runs chain: one that retrained from `train` on (taking `data`'s outputs, which
    # depend on `load`'s) is a valid source for the next.
    args = ("-p", "n_estimators", "7", "--tracking-uri", first)
    result = cli("run", "nb.ipynb", "--from", "train", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    result = cli("run", "nb.ipynb", "--only", "evaluate", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (versions(first), candidate(first)) == (["1", "2", "3"], "3")


def test_a_second_store_sharing_the_stage_cache_trains_its_own_model(project):
    folder, _, second = project
    # Same runs folder, so the same stage cache: the data stage is reused, but the stage
    # whose model lives in the first store runs again for the second.
    result = cli("run", "nb.ipynb", "--tracking-uri", second, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "= data" in result.stderr and "cached" in result.stderr
    assert "✓ train" in result.stderr
    assert versions(second) == ["1"]
    (version,) = client(second).search_model_versions("name='lineage'")
    model_id = version.source.removeprefix("models:/")
    model = client(second).get_logged_model(model_id)
    assert model.source_run_id  # in the second store
    # Its evaluation ran again there too (the first store's was cached): metrics on the model.
    assert [m.key for m in model.metrics] == ["accuracy"]


IN_PROCESS_RUN = """
import json, os, sys
import mlflow
from jupyter_mlops.pipeline import prepare
from jupyter_mlops.run.runner import RunOptions

uris = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
def process_wide():
    return [mlflow.get_tracking_uri(), {name: os.environ.get(name) for name in uris}]

before = process_wide()
options = RunOptions(runs_root=Path("mlops-runs"), tracking_uri=sys.argv[1])
state = prepare(Path("nb.ipynb"), options).run()
print(json.dumps({"versions": [m["version"] for m in state.models], "before": before,
                  "after": process_wide()}))
""".replace("import json, os, sys", "import json, os, sys\nfrom pathlib import Path")


def test_registering_in_process_leaves_mlflow_and_the_environment_as_they_were(tmp_path):
    """The pytest plugin, the widget and verify run pipelines inside a user's process: the
    run's store must not stay MLflow's process-wide one, nor leak into the environment.
    (That process is a child here: its kernels' clients must not outlive it in pytest's.)"""
    write(model_notebook(), tmp_path / "nb.ipynb")
    users = f"sqlite:///{tmp_path / 'users.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = users
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    result = subprocess.run(
        [sys.executable, "-c", IN_PROCESS_RUN, store],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["versions"] == ["1"]
    assert (
        seen["after"]
        == seen["before"]
        == [
            users,
            {"MLFLOW_TRACKING_URI": users, "MLFLOW_REGISTRY_URI": None},
        ]
    )
    assert not (tmp_path / "users.db").exists()


def test_a_tracking_server_gets_the_same_links(tmp_path):
    """Over HTTP, with the server holding the artifacts (`--artifacts-destination`), as a
    team's MLflow would: the server's registry records the version on the logged model
    itself, once."""
    write(model_notebook(), tmp_path / "nb.ipynb")
    with MlflowServer(tmp_path / "server") as uri:
        for _ in range(2):  # the second run: every stage cached, nothing new registered
            result = cli("run", "nb.ipynb", "--tracking-uri", uri, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
        remote = client(uri)
        (version,) = remote.search_model_versions("name='lineage'")
        model = remote.get_logged_model(version.source.removeprefix("models:/"))
        entries = json.loads(model.tags["mlflow.modelVersions"])
        assert [(e["name"], str(e["version"])) for e in entries] == [("lineage", "1")]
        assert model.source_run_id == version.tags["jupyter_mlops.stage_run"]
        assert [m.key for m in model.metrics] == ["accuracy"]
        parents = remote.search_runs(
            [model.experiment_id], "tags.`jupyter_mlops.pipeline` = 'nb'", order_by=["start_time"]
        )
        assert [p.info.run_name for p in parents] == ["nb #1", "nb #2"]
        assert [p.data.tags["jupyter_mlops.registered_models"] for p in parents] == [
            "lineage/1"
        ] * 2
        local = remote.download_artifacts(parents[0].info.run_id, "pipeline.yaml", str(tmp_path))
        assert "lineage" in Path(local).read_text()  # artifacts went through the server
    assert not (tmp_path / "mlflow.db").exists()
