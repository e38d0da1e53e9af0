"""Both example notebooks, end to end, checked through MlflowClient as an ML engineer would."""

import shutil

import mlflow
import numpy as np
import pytest
from conftest import EXAMPLES, cli
from mlflow_helpers import artifact_paths, client_for, pipeline_runs
from sklearn.datasets import load_digits, load_wine
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

pytestmark = pytest.mark.slow


def run_example(workdir, name, *args):
    """Run an example as from a clone's top level: its copy in `workdir` (run from the
    repository's own folder, the store would be the repository's, by the places rule)."""
    source = workdir / name
    if not source.exists():
        shutil.copy(EXAMPLES / name, source)
    before = source.read_bytes()
    result = cli("run", name, *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert source.read_bytes() == before  # the user's notebook is never modified
    return result


def check_candidate(workdir, model_name):
    client = client_for(workdir)
    version = client.get_model_version_by_alias(model_name, "candidate")
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"models:/{model_name}@candidate")
        predictions = np.asarray(model.predict(model.input_example))
    finally:
        mlflow.set_tracking_uri(None)
    assert len(predictions) == len(model.input_example) == 5
    assert model.metadata.signature is not None
    return version


def served_on_raw_rows(workdir, model_uri, rows, labels):
    """The registered model as serving loads it: its accuracy on raw rows, and the estimator.

    The model must carry its own preprocessing (a scikit-learn Pipeline), so rows exactly as
    the data set gives them are what it is served.
    """
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    try:
        predictions = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(rows))
        estimator = mlflow.sklearn.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(None)
    return float(np.mean(predictions == np.asarray(labels))), estimator


def test_wine_classifier(workdir):
    result = run_example(workdir, "wine_classifier.ipynb", "-p", "n_estimators", "50")
    assert "models:/wine-classifier/1 (now @candidate)" in result.stdout
    client = client_for(workdir)
    parent, children = pipeline_runs(client, "wine-classifier")
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {
        "test_size": "0.3",
        "n_components": "2",
        "n_estimators": "50",
        "max_depth": "None",
        "random_state": "42",
    }
    assert set(children) == {"report", "evaluate", "train", "split", "load"}
    assert all(run.info.status == "FINISHED" for run in children.values())
    assert children["train"].data.params == {
        "max_depth": "None",
        "n_components": "2",
        "n_estimators": "50",
        "random_state": "42",
    }
    metrics = children["evaluate"].data.metrics
    assert 0.8 < metrics["accuracy"] < 1.0 and 0.8 < metrics["f1_macro"] < 1.0
    assert "predictions" not in metrics  # arrays assigned in a metrics cell are not metrics
    # ...and the summary shows her the same values, without opening MLflow
    logged = f"accuracy {metrics['accuracy']:.4g}, f1_macro {metrics['f1_macro']:.4g}"
    assert f"  metrics:    {logged}\n" in result.stdout
    assert "feature_importance.png" in artifact_paths(client, children["report"].info.run_id)
    assert {d.dataset.name for d in children["train"].inputs.dataset_inputs} == {
        "X_train",
        "y_train",
    }
    version = check_candidate(workdir, "wine-classifier")
    assert version.tags["jupyter_mlops.stage_run"] == children["train"].info.run_id
    card = version.description.replace("&emsp;", "")  # the card pads its table cells
    assert "wine_classifier.ipynb" in card and "| accuracy | evaluate |" in card
    assert "| n_estimators | `50` (default `200`) |" in card
    assert "mlflow models serve" in card
    wine = load_wine(as_frame=True)
    accuracy, estimator = served_on_raw_rows(
        workdir, f"models:/wine-classifier/{version.version}", wine.data, wine.target
    )
    assert isinstance(estimator, Pipeline) and isinstance(estimator[0], StandardScaler)
    assert accuracy > 0.9  # raw measurements, scaled by the model itself
    # Versions can be told apart: other parameters, other metrics (none of them perfect).
    run_example(workdir, "wine_classifier.ipynb", "-p", "n_estimators", "5")
    _, fewer_trees = pipeline_runs(client, "wine-classifier")
    other = fewer_trees["evaluate"].data.metrics["accuracy"]
    assert 0.8 < other < 1.0 and other != metrics["accuracy"]


def test_kale_digits_fanout(workdir):
    run_example(workdir, "kale_digits_fanout.ipynb", "--jobs", "2")
    client = client_for(workdir)
    parent, children = pipeline_runs(client, "kale-digits-fanout")
    assert parent.info.status == "FINISHED"
    assert set(children) == {
        "load_data",
        "features",
        "train_logreg",
        "train_forest",
        "train_svm",
        "compare",
    }
    compare = children["compare"].data.metrics
    best = max(compare["logreg_accuracy"], compare["forest_accuracy"], compare["svm_accuracy"])
    assert compare["best_accuracy"] == best > 0.9
    version = check_candidate(workdir, "kale-digits-fanout")
    assert version.tags["jupyter_mlops.stage_run"] == children["compare"].info.run_id
    pixels, digits = load_digits(return_X_y=True)
    accuracy, best_model = served_on_raw_rows(
        workdir, f"models:/kale-digits-fanout/{version.version}", pixels.astype(float), digits
    )
    assert isinstance(best_model, Pipeline) and isinstance(best_model[0], StandardScaler)
    assert accuracy > 0.95  # raw pixels: the scaler travels inside the model
