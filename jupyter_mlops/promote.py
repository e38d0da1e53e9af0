"""The promotion gate's checks and results, as data (no MLflow here).

A notebook declares the checks a model must pass before it takes an alias such as
``champion`` in its metadata (``metadata.jupyter_mlops.promotion``); conversion writes them
into pipeline.yaml (``promotion:``), which the pipeline's parent run logs, so `promote` finds
the checks that belong to the version's own code. The command line lays its flags over
them. Checking them against the registry is `jupyter_mlops.tracking.promotion`'s job; this
module only says what the checks are and what came out, so the analysis, the bundle, the
CLI and the server share one reading of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from .errors import BadInput
from .markdown import cell, table

PROMOTION_KEYS = ("min", "max", "beats_champion", "signature", "smoke_test")
BEATS_CHAMPION_KEYS = ("metric", "margin", "greater_is_better")
EXAMPLE = (
    '{"min": {"accuracy": 0.9}, "max": {"rmse": 3.2}, '
    '"beats_champion": {"metric": "f1_macro", "margin": 0.01}, '
    '"signature": true, "smoke_test": true}'
)
# Metrics whose name says lower is better, when a check doesn't say (`greater_is_better`).
_LOWER_IS_BETTER = ("loss", "error", "rmse", "mse", "mae", "mape", "deviance", "perplexity")


@dataclass
class BeatsChampion:
    """The candidate must be at least `margin` better than the champion on `metric`."""

    metric: str
    margin: float = 0.0
    greater_is_better: bool | None = None  # None: from the metric's name

    @property
    def maximize(self) -> bool:
        if self.greater_is_better is not None:
            return self.greater_is_better
        lowered = self.metric.lower()
        return not any(word in lowered for word in _LOWER_IS_BETTER)

    @classmethod
    def parse(cls, text: str) -> BeatsChampion:
        """`f1_macro` or `f1_macro:0.01`, as the command line gives it."""
        metric, _, margin = text.partition(":")
        if not metric.strip():
            raise BadInput(f"--beats-champion {text!r} names no metric; give METRIC[:MARGIN]")
        return cls(metric.strip(), _margin(margin, f"the margin in --beats-champion {text!r}"))


@dataclass
class PromotionChecks:
    """What a version must pass to be promoted; None where the default applies.

    The signature check (on by default) compares with the champion's, so it only runs when
    there is one; the smoke test (on by default) loads the model and predicts on its saved
    input example.
    """

    min: dict[str, float] = field(default_factory=dict)  # metric -> lowest passing value
    max: dict[str, float] = field(default_factory=dict)  # metric -> highest passing value
    beats_champion: BeatsChampion | None = None
    signature: bool | None = None
    smoke_test: bool | None = None

    @property
    def check_signature(self) -> bool:
        return self.signature is not False

    @property
    def run_smoke_test(self) -> bool:
        return self.smoke_test is not False

    @classmethod
    def from_dict(cls, data: Any, where: str = "jupyter_mlops.promotion") -> PromotionChecks:
        """Checks from their JSON form (notebook metadata, pipeline.yaml); BadInput naming
        the first key that is wrong, with an example of the right form."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise BadInput(f"`{where}` must be a mapping, e.g. {EXAMPLE}")
        unknown = sorted(set(data) - set(PROMOTION_KEYS))
        if unknown:
            raise BadInput(
                f"unknown key `{where}.{unknown[0]}`; the keys are {', '.join(PROMOTION_KEYS)}, "
                f"e.g. {EXAMPLE}"
            )
        checks = cls(
            min=_thresholds(data.get("min"), f"{where}.min"),
            max=_thresholds(data.get("max"), f"{where}.max"),
        )
        for key in ("signature", "smoke_test"):
            value = data.get(key)
            if value is not None and not isinstance(value, bool):
                raise BadInput(f"`{where}.{key}` must be true or false, not {value!r}")
            setattr(checks, key, value)
        beats = data.get("beats_champion")
        if beats is not None:
            checks.beats_champion = _beats_champion(beats, f"{where}.beats_champion")
        return checks

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `from_dict` reads; only what is set, so defaults stay defaults."""
        data: dict[str, Any] = {}
        if self.min:
            data["min"] = dict(self.min)
        if self.max:
            data["max"] = dict(self.max)
        if self.beats_champion is not None:
            beats = asdict(self.beats_champion)
            if beats["greater_is_better"] is None:
                del beats["greater_is_better"]
            data["beats_champion"] = beats
        for key in ("signature", "smoke_test"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def over(self, base: PromotionChecks) -> PromotionChecks:
        """These checks laid over `base`: thresholds extend or override base's, and a field
        set here wins (the command line over the notebook's declaration)."""
        return replace(
            base,
            min={**base.min, **self.min},
            max={**base.max, **self.max},
            beats_champion=self.beats_champion or base.beats_champion,
            signature=base.signature if self.signature is None else self.signature,
            smoke_test=base.smoke_test if self.smoke_test is None else self.smoke_test,
        )


@dataclass
class CheckResult:
    name: str  # "min accuracy", "max rmse", "beats champion", "signature", "smoke test", "serving"
    passed: bool
    detail: str  # one sentence with the figures


@dataclass
class PromotionResult:
    name: str
    version: str
    to: str
    passed: bool
    moved: bool  # the alias now names this version (never on failure or in a dry run)
    checks: list[CheckResult]
    champion_before: str | None  # the version that held the alias before, if any
    dry_run: bool = False

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_threshold(text: str, flag: str) -> tuple[str, float]:
    """`accuracy=0.9` as `--min`/`--max` give it."""
    metric, sign, value = text.partition("=")
    if not sign or not metric.strip():
        raise BadInput(f"{flag} {text!r} is not METRIC=VALUE, e.g. {flag} accuracy=0.9")
    return metric.strip(), _number(value, f"the value in {flag} {text!r}")


def _thresholds(data: Any, where: str) -> dict[str, float]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f'`{where}` must map metric names to numbers, e.g. {{"accuracy": 0.9}}')
    return {str(metric): _number(value, f"`{where}.{metric}`") for metric, value in data.items()}


def _beats_champion(data: Any, where: str) -> BeatsChampion:
    if isinstance(data, str):
        return BeatsChampion(data)
    if not isinstance(data, dict) or not isinstance(data.get("metric"), str):
        raise BadInput(
            f'`{where}` must name a metric, e.g. {{"metric": "f1_macro", "margin": 0.01}}'
        )
    unknown = sorted(set(data) - set(BEATS_CHAMPION_KEYS))
    if unknown:
        raise BadInput(
            f"unknown key `{where}.{unknown[0]}`; the keys are {', '.join(BEATS_CHAMPION_KEYS)}"
        )
    greater = data.get("greater_is_better")
    if greater is not None and not isinstance(greater, bool):
        raise BadInput(f"`{where}.greater_is_better` must be true or false, not {greater!r}")
    return BeatsChampion(
        data["metric"], _margin(data.get("margin", 0.0), f"`{where}.margin`"), greater
    )


def _margin(value: Any, what: str) -> float:
    margin = _number(value, what)
    if margin < 0:
        raise BadInput(f"{what} is {margin:g}: give a margin of 0 or more")
    return margin


def _number(value: Any, what: str) -> float:
    """A finite number from JSON or the command line ('' is 0: no margin given)."""
    if value == "":
        return 0.0
    if isinstance(value, bool):
        raise BadInput(f"{what} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{what} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{what} must be a finite number, not {value!r}")
    return number


def check_alias(alias: str) -> None:
    """BadInput unless MLflow takes `alias` as an alias name (`latest`, `v3` are its own)."""
    if (
        not re.fullmatch(r"[\w-]{1,255}", alias)
        or alias.lower() == "latest"
        or re.fullmatch(r"[vV]\d+", alias)
    ):
        raise BadInput(
            f"can't promote to the alias {alias!r}: an alias is letters, digits, `_` and `-`, "
            "and neither `latest` nor v<number>, e.g. --to champion"
        )


# --- the card's Promotion section ------------------------------------------------------------

PROMOTION_HEADING = "## Promotion"
_SECTION = re.compile(r"^## Promotion[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)


def promotion_section(result: PromotionResult, when: datetime, user: str) -> str:
    """The decision as markdown for the model card: who, when, and a table of the checks."""
    before = (
        f" (before: version {result.champion_before})"
        if result.champion_before and result.champion_before != result.version
        else ""
    )
    verdict = "Promoted" if result.passed else "Not promoted"
    lines = [
        PROMOTION_HEADING,
        "",
        f"{verdict} to `@{result.to}` on {when:%Y-%m-%d %H:%M} UTC by {cell(user)}{before}.",
        "",
        *table(
            ["check", "result", "figures"],
            [
                [cell(c.name), "✓ passed" if c.passed else "✗ failed", cell(c.detail)]
                for c in result.checks
            ],
        ),
    ]
    if not result.checks:
        lines[-2:] = ["No checks were declared or given."]
    return "\n".join(lines) + "\n"


def with_promotion_section(
    description: str, result: PromotionResult, when: datetime, user: str
) -> str:
    """The card with its Promotion section replaced (or added at its end): one, the latest."""
    section = promotion_section(result, when, user)
    if _SECTION.search(description):
        return _SECTION.sub(lambda _: section + "\n", description, count=1).rstrip() + "\n"
    return (description.rstrip() + "\n\n" if description.strip() else "") + section
