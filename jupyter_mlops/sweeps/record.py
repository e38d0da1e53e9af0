"""A sweep's own record: ``<runs dir>/<pipeline>/sweeps/<sweep id>/sweep.json``.

It lists every trial with its parameters, status, pipeline run and metric, so that an
interrupted sweep resumes where it stopped (`jupyter-mlops sweep NB --resume ID`) and the
sidebar shows a live table. Written atomically after every change, like a run's run.json.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..files import atomic_write
from ..parameters import standard_json
from ..run.history import RUN_ID
from .space import Objective

SWEEPS_FOLDER = "sweeps"
SWEEP_FILE = "sweep.json"
# A trial's status.
PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
# A sweep's status.
SWEEP_RUNNING, SWEEP_SUCCEEDED, SWEEP_FAILED, SWEEP_STOPPED = (
    "running",
    "succeeded",
    "failed",
    "stopped",
)
TO_RUN = (PENDING, RUNNING, CANCELLED)  # a resumed sweep runs these (again)


@dataclass
class Trial:
    number: int  # from 1, in the order the trials run
    parameters: dict[str, Any]  # the swept parameters' values (the fixed ones are the sweep's)
    status: str = PENDING
    run_id: str | None = None  # its pipeline run (run folder)
    run_dir: str | None = None
    mlflow_run_id: str | None = None  # its pipeline run's parent MLflow run
    metric: float | None = None  # the objective's value, once it succeeded
    metrics: dict[str, float] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)  # stages served from the cache
    error: str | None = None
    duration: float | None = None


@dataclass
class SweepState:
    id: str
    pipeline: str
    source: str | None
    metric: str
    maximize: bool
    space: dict[str, str]  # each swept parameter as given: `100,200,400`, `0.001:0.1:log`
    fixed: dict[str, Any]  # the values every trial shares
    trials: list[Trial]
    seed: int | None = None  # a random sweep's
    status: str = SWEEP_RUNNING
    created: float = field(default_factory=time.time)
    finished: float | None = None
    tracking_uri: str | None = None
    experiment_id: str | None = None
    mlflow_run_id: str | None = None  # the sweep's own MLflow run, the trials' parent
    best: int | None = None  # the best trial's number
    models: list[dict[str, Any]] = field(default_factory=list)  # registered from the best

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.maximize)

    def trial(self, number: int) -> Trial:
        return self.trials[number - 1]

    def best_trial(self) -> Trial | None:
        """The succeeded trial with the best value of the metric (the first, on a tie)."""
        best: Trial | None = None
        for trial in self.trials:
            if trial.status != SUCCEEDED or trial.metric is None or not math.isfinite(trial.metric):
                continue  # a diverged trial's NaN would win every comparison
            if best is None or self.objective.better(trial.metric, best.metric):  # type: ignore[arg-type]
                best = trial
        return best

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((SUCCEEDED, FAILED, CANCELLED, PENDING, RUNNING), 0)
        for trial in self.trials:
            counts[trial.status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepState:
        data = dict(data)
        trials = [Trial(**entry) for entry in data.pop("trials")]
        return cls(**data, trials=trials)


def sweep_folder(runs_root: Path, pipeline: str, sweep_id: str) -> Path:
    """A sweep's folder. Raises BadInput for an id that isn't one (it would name a folder
    elsewhere: `../..`)."""
    if not RUN_ID.fullmatch(sweep_id):
        raise BadInput(f"`{sweep_id}` is not a sweep id (they look like 20261203-141500-a1b2c3)")
    return runs_root / pipeline / SWEEPS_FOLDER / sweep_id


def write_sweep(state: SweepState, folder: Path) -> None:
    atomic_write(folder / SWEEP_FILE, standard_json(state.to_dict(), indent=1))


def read_sweep(folder: Path) -> SweepState:
    """A sweep's record. Raises BadInput when there is none (a mistyped id, say)."""
    try:
        return SweepState.from_dict(json.loads((folder / SWEEP_FILE).read_text("utf-8")))
    except FileNotFoundError:
        raise BadInput(f"no sweep `{folder.name}` in {folder.parent}") from None
    except (OSError, ValueError, TypeError) as error:
        raise BadInput(f"{folder / SWEEP_FILE} can't be read: {error}") from None


def trials_table(state: SweepState, label: Callable[[Trial], str] | None = None) -> str:
    """The trials as a markdown table (the best one in bold): for the best model's card and
    the sweep's MLflow run. `label`: a trial's first cell (a link to its run, say)."""
    names = list(state.space)
    header = ["trial", *names, state.metric, "status"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for trial in state.trials:
        cells = [
            label(trial) if label else str(trial.number),
            *(value_text(trial.parameters.get(name)) for name in names),
            "" if trial.metric is None else f"{trial.metric:.6g}",
            trial.status,
        ]
        if trial.number == state.best:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def value_text(value: Any) -> str:
    """A parameter's value in a table: `0.001`, `None`, `[64, 32]`."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "None" if value is None else str(value)
