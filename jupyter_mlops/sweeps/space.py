"""What a sweep tries: the parameter sets (trials) and how the best one is chosen.

Pure: no kernels, no files, no MLflow, so every rule is unit-tested (tests/test_sweep.py).

- ``-p NAME 100,200,400``: the values NAME takes; a grid tries every combination, in the
  order the parameters were given (the last one varies fastest, as nested loops would).
- ``--random N`` draws N trials instead: from the listed values, or from a range
  ``LOW:HIGH`` (integers inclusive, numbers uniform) or ``LOW:HIGH:log`` (log-uniform), with
  a seed so that the same command draws the same trials.
- A parameter given one value is fixed for every trial. A list or dict parameter takes its
  candidates as one YAML list: ``-p layers '[[64, 32], [128]]'``.

Every value is checked as `run` checks it (`parameters.resolve`) before any trial runs.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput
from ..parameters import Parameter, load_yaml, resolve

LOG = "log"
_RANGE = re.compile(r"^\s*([^:]+):([^:]+)(?::(\w+))?\s*$")
# Words in a metric's name that say which way is better, when --maximize/--minimize is not given.
LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mse", "rmse", "mae", "mape", "logloss", "perplexity", "brier"}
)
HIGHER_IS_BETTER = frozenset(
    {"accuracy", "acc", "auc", "roc", "f1", "precision", "recall", "r2", "score", "ap", "ndcg"}
)


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its candidate values, or (random sweeps only) a range."""

    name: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False  # a range of whole numbers

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def describe(self) -> str:
        """As the user gave it: `100,200,400`, `0.001:0.1:log`."""
        if self.is_range:
            return f"{_number(self.low)}:{_number(self.high)}" + (":log" if self.log else "")
        return ",".join(_text(v) for v in self.values)

    def draw(self, rng: random.Random) -> Any:
        if not self.is_range:
            return rng.choice(self.values)
        assert self.low is not None and self.high is not None
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return min(max(round(value), int(self.low)), int(self.high)) if self.integer else value
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class Space:
    axes: tuple[Axis, ...]
    fixed: dict[str, Any]  # parameters given one value: the same in every trial

    @property
    def swept(self) -> list[str]:
        return [axis.name for axis in self.axes]

    def grid(self) -> list[dict[str, Any]]:
        """Every combination; the last parameter given varies fastest."""
        if any(axis.is_range for axis in self.axes):
            ranged = next(axis.name for axis in self.axes if axis.is_range)
            raise BadInput(
                f"`{ranged}` is a range: a grid needs the values listed (100,200,400); "
                "draw from a range with --random N"
            )
        combos = itertools.product(*(axis.values for axis in self.axes))
        return [dict(zip(self.swept, combo, strict=True)) for combo in combos]

    def sample(self, count: int, seed: int) -> list[dict[str, Any]]:
        """`count` trials drawn with `seed`: the same command draws the same trials."""
        rng = random.Random(seed)
        return [{axis.name: axis.draw(rng) for axis in self.axes} for _ in range(count)]

    def describe(self) -> dict[str, str]:
        return {axis.name: axis.describe() for axis in self.axes}


def parse_space(declared: list[Parameter], given: Sequence[tuple[str, str]], drawn: bool) -> Space:
    """The space `-p NAME VALUES` pairs describe, each value checked against its parameter.

    `drawn`: a random sweep (ranges allowed). Raises BadInput naming the parameter.
    """
    by_name = {p.name: p for p in declared}
    texts: dict[str, list[str]] = {}
    for name, text in given:
        if name not in by_name:
            resolve(declared, None, [(name, text)])  # raises: unknown, with a suggestion
        texts.setdefault(name, []).append(text)
    axes: list[Axis] = []
    fixed: dict[str, Any] = {}
    for name, pieces in texts.items():
        axis = _axis(declared, by_name[name], pieces, drawn)
        if not axis.is_range and len(axis.values) == 1:
            fixed[name] = axis.values[0]
        else:
            axes.append(axis)
    if not axes:
        raise BadInput(
            "nothing to sweep: give a parameter several values (-p n_estimators 100,200,400)"
            + (" or a range (-p lr 0.001:0.1:log)" if drawn else "")
        )
    return Space(tuple(axes), fixed)


def _axis(declared: list[Parameter], parameter: Parameter, pieces: list[str], drawn: bool) -> Axis:
    name = parameter.name
    if parameter.type in ("list", "dict", "any"):
        values = [_checked(declared, name, v) for piece in pieces for v in _yaml_list(piece, name)]
        return Axis(name, tuple(_unique(values)))
    if (
        len(pieces) == 1
        and (found := _RANGE.match(pieces[0]))
        and parameter.type in ("int", "float")
    ):
        if not drawn:
            raise BadInput(
                f"`{name} {pieces[0]}` is a range: a grid needs the values listed "
                "(100,200,400); draw from a range with --random N"
            )
        low, high, kind = found.groups()
        if kind not in (None, LOG):
            raise BadInput(f"`{name} {pieces[0]}`: a range is LOW:HIGH or LOW:HIGH:log")
        lo = _checked(declared, name, low.strip())
        hi = _checked(declared, name, high.strip())
        if lo is None or hi is None or lo >= hi:
            raise BadInput(f"`{name} {pieces[0]}`: a range needs LOW below HIGH")
        if kind == LOG and lo <= 0:
            raise BadInput(f"`{name} {pieces[0]}`: a log range needs LOW above 0")
        return Axis(name, low=lo, high=hi, log=kind == LOG, integer=parameter.type == "int")
    texts = [text for piece in pieces for text in _split(piece, parameter)]
    return Axis(name, tuple(_unique([_checked(declared, name, text) for text in texts])))


def _split(piece: str, parameter: Parameter) -> list[str]:
    """`100,200,400` as three values; a string parameter's commas may be escaped (`a\\,b`)."""
    if parameter.type != "str":
        return [part.strip() for part in piece.split(",")]
    parts = re.split(r"(?<!\\),", piece)
    return [part.replace("\\,", ",") for part in parts]


def _yaml_list(text: str, name: str) -> list[Any]:
    try:
        values = load_yaml(text)
    except Exception as error:
        raise BadInput(f"`{name}` takes its candidates as a YAML list: {error}") from None
    if not isinstance(values, list) or not values:
        raise BadInput(f"`{name}` takes its candidates as a YAML list, like '[[64, 32], [128]]'")
    return values


def _checked(declared: list[Parameter], name: str, value: Any) -> Any:
    """A value as `run` would accept it (text from the command line, else data)."""
    if isinstance(value, str):
        return resolve(declared, None, [(name, value)])[name]
    return resolve(declared, {name: value})[name]


def _unique(values: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return unique


def _text(value: Any) -> str:
    return "None" if value is None else _number(value) if isinstance(value, float) else str(value)


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Objective:
    metric: str
    maximize: bool

    def describe(self) -> str:
        return f"{'highest' if self.maximize else 'lowest'} {self.metric}"

    def better(self, value: float, than: float) -> bool:
        return value > than if self.maximize else value < than


def choose_objective(logged: list[str], metric: str | None, maximize: bool | None) -> Objective:
    """The metric the best trial is chosen by, and which way is better.

    `logged`: the metrics the notebook's `metrics` cells log. Without `metric`, the only one
    there is; without `maximize`, what the metric's name says (accuracy, auc... higher;
    loss, rmse... lower). Raises BadInput when it can't tell.
    """
    known = ", ".join(logged) or "none: tag a cell `metrics`"
    if metric is None:
        if len(logged) != 1:
            raise BadInput(f"say which metric picks the best trial with --metric (logged: {known})")
        metric = logged[0]
    elif metric not in logged:
        raise BadInput(f"no stage logs the metric `{metric}` (logged: {known})")
    if maximize is None:
        words = set(re.split(r"[^a-z0-9]+", metric.lower()))
        if "neg" in words:  # scikit-learn's neg_mean_squared_error: higher is better
            raise BadInput(f"say whether a higher `{metric}` is better: --maximize or --minimize")
        if words & LOWER_IS_BETTER and not words & HIGHER_IS_BETTER:
            maximize = False
        elif words & HIGHER_IS_BETTER and not words & LOWER_IS_BETTER:
            maximize = True
        else:
            raise BadInput(f"say whether a higher `{metric}` is better: --maximize or --minimize")
    return Objective(metric, maximize)
