"""A stage's inputs as MLflow datasets: which data frames and arrays it consumed (lineage).

Built from the records the producing stages wrote (a digest, the columns or the shape), so
nothing is loaded to describe it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis import Stage
    from ..artifacts import StageRecord, VariableInfo

_NUMPY_TO_MLFLOW = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
    "object": "string",
    "str": "string",
    "string": "string",
}


def dataset_inputs(stage: Stage, records: dict[str, StageRecord]) -> list[Any]:
    """The `DatasetInput`s of the stage's summarised inputs; [] when it has none."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    datasets = []
    for variable, producer in stage.inputs.items():
        record = records.get(producer)
        info = record.variables.get(variable) if record else None
        if record is None or info is None or not info.summary:
            continue
        datasets.append(
            DatasetInput(
                Dataset(
                    name=variable,
                    digest=info.digest[:16],
                    source_type="jupyter_mlops",
                    source=json.dumps(
                        {"stage": producer, "variable": variable, "object": record.object}
                    ),
                    schema=json.dumps(_schema(info)),
                    profile=json.dumps(_profile(info)),
                ),
                tags=[
                    InputTag("mlflow.data.context", f"from stage {producer}"),
                ],
            )
        )
    return datasets


def _schema(info: VariableInfo) -> dict[str, Any]:
    summary = info.summary
    if summary.get("kind") == "dataframe":
        return {
            "mlflow_colspec": [
                {"name": name, "type": _NUMPY_TO_MLFLOW.get(dtype, "string")}
                for name, dtype in summary["columns"].items()
            ]
        }
    shape = summary.get("shape") or [summary.get("rows", -1)]
    return {
        "mlflow_tensorspec": {
            "features": json.dumps(
                [
                    {
                        "type": "tensor",
                        "tensor-spec": {"dtype": summary["dtype"], "shape": [-1, *shape[1:]]},
                    }
                ]
            ),
            "targets": None,
        }
    }


def _profile(info: VariableInfo) -> dict[str, Any]:
    summary = info.summary
    rows = summary.get("rows") or (summary.get("shape") or [None])[0]
    profile: dict[str, Any] = {"num_rows": rows}
    if summary.get("kind") == "ndarray":
        profile["shape"] = summary["shape"]
    return profile
