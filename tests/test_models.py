"""`model:VAR` for each supported flavor: logged, registered, loadable, predicting."""

import mlflow
import numpy as np
import pytest
from conftest import cli, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

pytestmark = pytest.mark.slow

TRAINING = """
rng = np.random.default_rng(0)
X_train = rng.random((80, 4)).astype(np.float32)
y_train = (X_train[:, 0] + X_train[:, 1] > 1).astype(np.int64)
"""


def flavors_notebook():
    return notebook(
        code("import numpy as np", "setup"),
        code(TRAINING, "stage:data"),
        code(
            "from sklearn.linear_model import LogisticRegression\n"
            "sk = LogisticRegression().fit(X_train, y_train)",
            "stage:sklearn",
            "model:sk",
        ),
        code(
            "import xgboost\nxgb = xgboost.XGBClassifier(n_estimators=5, max_depth=2)\n"
            "xgb.fit(X_train, y_train)",
            "stage:xgb",
            "model:xgb",
        ),
        code(
            "import lightgbm\nlgbm = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1)\n"
            "lgbm.fit(X_train, y_train)",
            "stage:lgbm",
            "model:lgbm",
        ),
        code(
            "import torch\n"
            "torch.manual_seed(0)\n"
            "net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), "
            "torch.nn.Linear(8, 2))\n"
            "optimizer = torch.optim.SGD(net.parameters(), lr=0.1)\n"
            "features, labels = torch.from_numpy(X_train), torch.from_numpy(y_train)\n"
            "for _ in range(20):\n"
            "    optimizer.zero_grad()\n"
            "    torch.nn.functional.cross_entropy(net(features), labels).backward()\n"
            "    optimizer.step()",
            "stage:torch",
            "model:net",
        ),
        code(
            "class Threshold:\n    def predict(self, data):\n"
            "        return (np.asarray(data)[:, 0] > 0.5).astype(int)\n"
            "rule = Threshold()",
            "stage:custom",
            "model:rule",
        ),
        model_name="flavors",
        fit_data={"net": "X_train", "rule": "X_train"},
    )


def test_each_flavor_is_logged_registered_and_serves_predictions(workdir):
    write(flavors_notebook(), workdir / "flavors.ipynb")
    result = cli("run", "flavors.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    client = client_for(workdir)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    parent, children = pipeline_runs(client, "flavors")
    expected = {
        "sk": "sklearn",
        "xgb": "xgboost",
        "lgbm": "lightgbm",
        "net": "pytorch",
        "rule": "python_function",
    }
    for variable, flavor in expected.items():
        name = f"flavors-{variable}"
        version = client.get_model_version_by_alias(name, "candidate")
        assert version.tags["jupyter_mlops.variable"] == variable
        # The version's run is the pipeline's; the model's source run is its stage's.
        assert version.run_id == parent.info.run_id
        stage_run = children[version.tags["jupyter_mlops.stage"]].info.run_id
        assert version.tags["jupyter_mlops.stage_run"] == stage_run
        logged = client.get_logged_model(version.source.removeprefix("models:/"))
        assert logged.source_run_id == stage_run
        assert f"models:/{name}/{version.version}" in version.description
        model = mlflow.pyfunc.load_model(f"models:/{name}@candidate")
        assert flavor in model.metadata.flavors
        assert model.metadata.signature is not None
        example = model.input_example
        assert example is not None and len(example) == 5
        predictions = np.asarray(model.predict(example))
        assert len(predictions) == 5
    mlflow.set_tracking_uri(None)


def test_a_stage_that_logs_a_model_opens_its_store_while_waiting_and_never_fails_there(
    tmp_path, monkeypatch
):
    """A pre-started stage kernel that will log a model opens the tracking store while it
    waits for its gate (a second off the end of the stage); a store it can't open is left
    for the model's logging to report, in the stage's own cell."""
    from jupyter_mlops import runtime

    gate = tmp_path / "gate"
    gate.write_text(runtime.GATE_GO)
    monkeypatch.setenv(runtime.GATE_ENV, str(gate))
    monkeypatch.setenv(runtime.WARM_UP_ENV, runtime.WARM_UP_MODELS)
    database = tmp_path / "waiting.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    runtime._wait_for_gate()
    assert database.is_file()  # opened: its tables exist before the stage's cells run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "no-such-scheme://anywhere")
    runtime._wait_for_gate()  # no error here: the gate's answer still decides
    gate.write_text(runtime.GATE_STOP)
    with pytest.raises(runtime.StageStopped):
        runtime._wait_for_gate()
