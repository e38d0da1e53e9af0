"""The tag language: what each cell's ``metadata.tags`` says about its role in the pipeline.

Tags are plain strings so that JupyterLab's property inspector, papermill and nbconvert see
them too. Two dialects are read: our native one and Kubeflow Kale's, so Kale users migrate
without retagging. This module only interprets tags; deciding which stage an untagged cell
belongs to is the analysis' job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STAGE_NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_STAGE_NAME = 100  # a stage names files (stages/NN_<name>.ipynb); most file systems allow 255
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What no name (pipeline, experiment, model, kernel) may hold: control characters (C0, DEL
# and C1, NEL among them), Unicode line and paragraph separators, lone surrogates and the
# bidirectional controls. Names reach file names, YAML, shell commands and CI workflows, where
# such a character ends a line (a YAML 1.1 reader breaks lines at NEL, U+2028 and U+2029),
# can't be encoded, or makes a name read differently from what it is.
UNSAFE_IN_NAMES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

# Kale's tag -> our tag. Kale's `prev:` and `block:`/`step:` carry a name like ours.
_KALE_PLAIN = {
    "imports": "setup",
    "functions": "setup",
    "pipeline-parameters": "parameters",
    "pipeline-metrics": "metrics",
}
_KALE_PREFIXED = {"block": "stage", "step": "stage", "prev": "after"}

PLAIN_TAGS = frozenset({"parameters", "setup", "skip", "metrics"})
PREFIXED_TAGS = frozenset({"stage", "after", "model"})


@dataclass(frozen=True)
class TagProblem:
    """A tag that could not be used, with the reason shown to the user."""

    tag: str
    message: str


@dataclass
class CellTags:
    """Everything a cell's tags say, normalised to the native dialect."""

    stage: str | None = None
    after: list[str] = field(default_factory=list)
    setup: bool = False
    skip: bool = False
    parameters: bool = False
    metrics: bool = False
    models: list[str] = field(default_factory=list)
    kale: bool = False  # at least one tag came from Kale's dialect
    problems: list[TagProblem] = field(default_factory=list)

    @property
    def roles(self) -> list[str]:
        """The mutually exclusive roles this cell claims (more than one is an error)."""
        claimed = [("stage", self.stage is not None), ("setup", self.setup)]
        claimed += [("skip", self.skip), ("parameters", self.parameters)]
        return [name for name, present in claimed if present]


def normalise(tag: str) -> tuple[str, bool]:
    """Translate one tag to the native dialect; the flag says whether it was Kale's."""
    tag = tag.strip()
    if tag in _KALE_PLAIN:
        return _KALE_PLAIN[tag], True
    prefix, sep, rest = tag.partition(":")
    if sep and prefix in _KALE_PREFIXED:
        return f"{_KALE_PREFIXED[prefix]}:{rest}", True
    return tag, False


def is_pipeline_tag(tag: str) -> bool:
    """Whether a tag is the pipeline's (either dialect) rather than another tool's; papermill's
    `parameters` is not: stage notebooks keep it."""
    native, _ = normalise(tag)
    prefix, sep, _ = native.partition(":")
    if sep:
        return prefix in PREFIXED_TAGS
    return native in PLAIN_TAGS - {"parameters"}


def parse_tags(tags: list[str] | None) -> CellTags:
    """Read a cell's tag list. Tags that are not ours are ignored: users tag for other tools."""
    result = CellTags()
    for raw in tags or []:
        if not isinstance(raw, str):
            continue
        tag, from_kale = normalise(raw)
        prefix, sep, value = tag.partition(":")
        if not sep and tag in PLAIN_TAGS:
            setattr(result, tag, True)
        elif sep and prefix in PREFIXED_TAGS:
            _read_prefixed(result, raw, prefix, value.strip())
        else:
            continue
        result.kale = result.kale or from_kale
    return result


def _read_prefixed(result: CellTags, raw: str, prefix: str, value: str) -> None:
    if prefix == "model":
        if IDENTIFIER.fullmatch(value):
            result.models.append(value)
        else:
            result.problems.append(
                TagProblem(raw, f"`{raw}` must name a Python variable, like `model:clf`")
            )
        return
    if STAGE_NAME.fullmatch(value) and len(value) > MAX_STAGE_NAME:
        result.problems.append(
            TagProblem(
                raw,
                f"`{prefix}:{value[:20]}...`: stage names are at most {MAX_STAGE_NAME} "
                f"characters (this one has {len(value)}), because they name files",
            )
        )
        return
    if not STAGE_NAME.fullmatch(value):
        result.problems.append(
            TagProblem(
                raw,
                f"`{raw}`: stage names are lowercase identifiers ([a-z][a-z0-9_]*), "
                f"for example `{prefix}:{suggest_stage_name(value)}`",
            )
        )
        return
    if prefix == "after":
        result.after.append(value)
    elif result.stage is not None and result.stage != value:
        result.problems.append(
            TagProblem(raw, f"the cell is tagged with two stages, `{result.stage}` and `{value}`")
        )
    else:
        result.stage = value


def suggest_stage_name(text: str) -> str:
    """A valid stage name close to what the user typed, for error messages and the UI."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"stage_{name}" if name else "stage"
    return name[:MAX_STAGE_NAME]


def unsafe_character(name: str) -> str | None:
    """The first character no name may hold, as `U+XXXX` for a message; None if there is none."""
    found = UNSAFE_IN_NAMES.search(name)
    return f"U+{ord(found.group()):04X}" if found else None
