"""Logging a `model:VAR` variable to MLflow with the right flavor, inside the stage's kernel.

Runs in the kernel because that is where the model object and the data it was fit on live,
and where the libraries its flavor needs are imported. The flavor is detected from the
object's type, checking only modules the kernel has already imported, so logging an sklearn
model never imports torch. Anything else with a ``predict`` method (or a callable) is logged
as a generic pyfunc model.

Requirements are passed explicitly (the notebook's pinned imports when the runner gives them,
else the flavor's defaults): MLflow's own inference reloads the model in a subprocess and
costs seconds per model.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import cloudpickle

EXAMPLE_ROWS = 5
REQUIREMENTS_ENV = "JUPYTER_MLOPS_REQUIREMENTS"
SOURCE_ENV = "JUPYTER_MLOPS_SOURCE"  # the notebook the pipeline was made from
NAMES_ENV = "JUPYTER_MLOPS_MODEL_NAMES"  # JSON: variable -> the registered model's name


def warm_up_requirements() -> None:
    """Build MLflow's map of every installed distribution's modules ahead of time.

    Logging a model checks its requirements against what is installed through this map:
    0.7 s to build, in every stage that logs one. The zygote calls this once so every kernel
    it forks inherits the map."""
    from mlflow.utils import requirements_utils

    requirements_utils._init_modules_to_packages_map()


def warm_up_logging() -> None:
    """Import MLflow and open the stage's tracking store (MLFLOW_TRACKING_URI), while the
    stage's kernel waits for its inputs: opening a SQL store (its modules, the schema check)
    costs about a second that would otherwise follow the stage's cells.

    Only the store is opened: the stage's run is left alone until the model is logged, as a
    stage the runner then stops (cached, or cancelled) must leave no trace in it."""
    from mlflow.tracking import MlflowClient

    MlflowClient()  # MLflow keeps the store it opens, per URI, for the log_model that follows


def detect_flavor(model: Any) -> str:
    """`xgboost`, `lightgbm`, `pytorch`, `sklearn` or `pyfunc`."""
    modules = sys.modules
    if "xgboost" in modules:
        xgboost = modules["xgboost"]
        if isinstance(model, xgboost.XGBModel | xgboost.Booster):
            return "xgboost"
    if "lightgbm" in modules:
        lightgbm = modules["lightgbm"]
        if isinstance(model, lightgbm.LGBMModel | lightgbm.Booster):
            return "lightgbm"
    if "torch" in modules and isinstance(model, modules["torch"].nn.Module):
        return "pytorch"
    if "sklearn" in modules and isinstance(model, modules["sklearn"].base.BaseEstimator):
        return "sklearn"
    return "pyfunc"


def input_example(fit_data: Any) -> Any:
    """The first rows of the training data, as MLflow takes them (no tensors)."""
    if fit_data is None:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(fit_data, torch.Tensor):
        fit_data = fit_data.detach().cpu().numpy()
    if hasattr(fit_data, "iloc"):
        return fit_data.iloc[:EXAMPLE_ROWS]
    if hasattr(fit_data, "shape") and hasattr(fit_data, "__getitem__"):
        return fit_data[:EXAMPLE_ROWS]
    if isinstance(fit_data, list):
        return fit_data[:EXAMPLE_ROWS]
    return None


def predict(model: Any, flavor: str, example: Any) -> Any:
    """The model's output on the example, to infer the output half of the signature."""
    if flavor == "pytorch":
        torch = sys.modules["torch"]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(torch.as_tensor(example)).detach().cpu().numpy()
        finally:
            model.train(was_training)
    if flavor == "xgboost" and isinstance(model, sys.modules["xgboost"].Booster):
        return model.predict(sys.modules["xgboost"].DMatrix(example))
    if hasattr(model, "predict"):
        return model.predict(example)
    return model(example)


def log_model(model: Any, name: str, fit_data: Any, stage: str = "") -> dict[str, Any]:
    """Log `model` into the stage's MLflow run (MLFLOW_RUN_ID); describe what was logged.

    The stage's run is made the active run first, as the user's own `mlflow.log_*` calls
    would: MLflow takes a logged model's source run (and its parameters) from the active
    run, and without one the model's page says "No runs".
    """
    import mlflow
    from mlflow.models import infer_signature

    run = mlflow.active_run() or mlflow.start_run()  # resumes MLFLOW_RUN_ID

    flavor = detect_flavor(model)
    example = input_example(fit_data)
    signature = None
    if example is not None:
        try:
            signature = infer_signature(example, predict(model, flavor, example))
        except Exception as error:  # a model that can't predict on its own data yet
            print(f"jupyter-mlops: no signature for `{name}`: {error}", file=sys.stderr)
            example = None
    common = {
        "name": json.loads(os.environ.get(NAMES_ENV) or "{}").get(name, name),
        "signature": signature,
        "input_example": example,
        "pip_requirements": requirements(flavor),
        "tags": _model_tags(stage),
    }
    if flavor == "pyfunc":
        info = mlflow.pyfunc.log_model(python_model=_pyfunc(model), **common)
    elif flavor == "sklearn":
        # skops, MLflow's default, refuses common estimators (random forests) as untrusted.
        info = mlflow.sklearn.log_model(model, serialization_format="cloudpickle", **common)
    else:
        module = getattr(mlflow, flavor)
        info = module.log_model(model, **common)
    return {
        "flavor": flavor,
        "model_uri": info.model_uri,
        "model_id": getattr(info, "model_id", None),
        "run_id": run.info.run_id,
        "signature": signature is not None,
        "type": f"{type(model).__module__}.{type(model).__qualname__}",
    }


def _model_tags(stage: str) -> dict[str, str]:
    """Where the model was logged from: the notebook, not the kernel's launcher script."""
    tags = {"jupyter_mlops.stage": stage} if stage else {}
    source = os.environ.get(SOURCE_ENV)
    if source:
        tags.update({"mlflow.source.name": source, "mlflow.source.type": "NOTEBOOK"})
    return tags


def requirements(flavor: str) -> list[str]:
    """The notebook's pinned requirements (from the runner) plus the flavor's own defaults."""
    import mlflow

    defaults = (
        [f"cloudpickle=={cloudpickle.__version__}"]
        if flavor == "pyfunc"
        else list(getattr(mlflow, flavor).get_default_pip_requirements())
    )
    path = os.environ.get(REQUIREMENTS_ENV)
    if not path or not Path(path).is_file():
        return defaults
    pinned = [
        line.strip()
        for line in Path(path).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pinned = [line for line in pinned if _name(line) != "jupyter-mlops"]  # not needed to load
    names = {_name(line) for line in pinned}
    return pinned + [line for line in defaults if _name(line) not in names]


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name)


def _pyfunc(model: Any) -> Any:
    """Wrap any object with `predict` (or any callable) as an MLflow pyfunc model.

    The class is made here, not at module level, so cloudpickle stores it by value and the
    logged model loads without jupyter-mlops installed.
    """
    from mlflow.pyfunc import PythonModel

    class PredictWrapper(PythonModel):
        def __init__(self, wrapped: Any) -> None:
            self.wrapped = wrapped

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            if hasattr(self.wrapped, "predict"):
                return self.wrapped.predict(model_input)
            return self.wrapped(model_input)

    return PredictWrapper(model)
