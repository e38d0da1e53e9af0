"""What the generated cells of a stage notebook call, inside the stage's kernel.

Kept small and cheap to import (no MLflow unless the stage logs a model), because every
stage's kernel imports it. When the runner starts a stage it sets ``MLFLOW_RUN_ID`` to the
stage's MLflow run, so the user's own ``mlflow.log_*`` and ``mlflow.autolog()`` calls land
there and models are logged there; under plain papermill nothing is logged to MLflow and the
stage simply hands its values over.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from dataclasses import asdict
from typing import Any

from .artifacts import UNHANDABLE_MIME, StageRecord, Unhandable, is_metric_value, open_store
from .state import RANDOM_STATE

GATE_ENV = "JUPYTER_MLOPS_GATE"
WARM_UP_ENV = "JUPYTER_MLOPS_WARM_UP"
WARM_UP_MODELS = "models"  # the stage logs a model: open MLflow while waiting for the gate
GATE_POLL_SECONDS = 0.02
GATE_GO, GATE_STOP = "go", "stop"  # what the runner writes (atomically) into the gate file


def load_inputs(store: str, inputs: dict[str, str]) -> tuple[Any, ...]:
    """The values of `inputs` (variable -> producing stage), in the mapping's order.

    Under the runner, a stage's kernel may be started (and its setup cells run) while its
    upstream stages still run; it then waits here until the runner opens its gate.
    """
    _wait_for_gate()
    artifacts = open_store(store)
    by_stage: dict[str, list[str]] = {}
    for name, producer in inputs.items():
        by_stage.setdefault(producer, []).append(name)
    values: dict[str, Any] = {}
    for producer, names in by_stage.items():
        values.update(artifacts.load(producer, names))
    if RANDOM_STATE in values:
        restore_random_state(values.pop(RANDOM_STATE))
    return tuple(values[name] for name in inputs if name != RANDOM_STATE)


def capture_random_state() -> dict[str, Any]:
    """The state of the global random generators this process has: where draws go on."""
    import random

    state: dict[str, Any] = {"random": random.getstate()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        state["numpy"] = numpy.random.get_state()
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Set the global generators to where an earlier stage left them."""
    import random

    random.setstate(state["random"])
    if "numpy" in state:
        importlib.import_module("numpy").random.set_state(state["numpy"])
    if "torch" in state:
        importlib.import_module("torch").set_rng_state(state["torch"])


def _wait_for_gate() -> None:
    """Wait for the runner's go (a file); first import what the stage will need anyway."""
    gate = os.environ.get(GATE_ENV)
    if not gate:
        return  # plain papermill: inputs are there already
    if os.environ.get(WARM_UP_ENV) == WARM_UP_MODELS:
        _warm_up_models()
    while not os.path.exists(gate):
        time.sleep(GATE_POLL_SECONDS)
    with open(gate, encoding="utf-8") as stream:
        if stream.read() != GATE_GO:
            raise StageStopped("the runner stopped this stage before it ran (cached or skipped)")


def _warm_up_models() -> None:
    """Ready MLflow for the model this stage logs; an error here is met again, and reported,
    when the model is logged."""
    from .tracking.models import warm_up_logging

    with contextlib.suppress(Exception):
        warm_up_logging()


class StageStopped(RuntimeError):
    """The runner decided a pre-started stage won't run; its kernel stops here."""


def save_outputs(
    store: str,
    stage: str,
    namespace: dict[str, Any],
    outputs: list[str] | None = None,
    metrics: list[str] | None = None,
    models: dict[str, str | None] | None = None,
) -> None:
    """Write the values later stages read; record metrics, and log models to MLflow."""
    artifacts = open_store(store)
    missing = [n for n in outputs or [] if n not in namespace and n != RANDOM_STATE]
    if missing:
        raise NameError(
            f"stage `{stage}` was expected to set {', '.join(missing)} for later stages, but "
            "didn't (is the assignment inside a branch that did not run?)"
        )
    values = {name: namespace[name] for name in outputs or [] if name != RANDOM_STATE}
    if RANDOM_STATE in (outputs or []):
        values[RANDOM_STATE] = capture_random_state()
    digest, variables = (
        artifacts.write_values(stage, values, _show_refusal) if values else (None, {})
    )
    record = StageRecord(
        stage=stage,
        object=digest,
        variables=variables,
        metrics=_metrics(namespace, metrics or []),
        models=_log_models(namespace, models or {}, stage),
    )
    artifacts.write_record(record)


def _show_refusal(refused: Unhandable) -> None:
    """Show the facts of a value that can't be handed on as an output of the cell about to
    fail, where the runner reads them back as data (run/failures.py) to name the user's cell
    that made the value. Empty as text: the error just after says it all to a reader."""
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is not None:  # not in a kernel, there is no cell to show it in
        display({UNHANDABLE_MIME: asdict(refused), "text/plain": ""}, raw=True)


def _metrics(namespace: dict[str, Any], names: list[str]) -> dict[str, float]:
    """The numeric scalars among the names a `metrics` cell assigns (arrays etc. are not)."""
    return {n: float(namespace[n]) for n in names if is_metric_value(namespace.get(n))}


def _log_models(
    namespace: dict[str, Any], models: dict[str, str | None], stage: str
) -> dict[str, dict[str, Any]]:
    if not models:
        return {}
    if not os.environ.get("MLFLOW_RUN_ID"):
        print("jupyter-mlops: no MLflow run (plain papermill), so models are not logged")
        return {}
    from .tracking.models import log_model

    logged = {}
    for variable, fit_data in models.items():
        if variable not in namespace:
            raise NameError(f"`model:{variable}`: stage `{stage}` ended without `{variable}`")
        example = _fit_data(namespace, fit_data)
        logged[variable] = log_model(namespace[variable], variable, example, stage)
    return logged


def _fit_data(namespace: dict[str, Any], expression: str | None) -> Any:
    if not expression:
        return None
    try:
        return eval(expression, namespace)  # the user's own expression from her `.fit(...)`
    except Exception as error:
        print(
            f"jupyter-mlops: can't evaluate the model's training data `{expression}` ({error}); "
            "logging the model without an input example",
            file=sys.stderr,
        )
        return None
