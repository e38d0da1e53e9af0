"""What a stage's outputs were made from, as plain data: the stages they depend on, the data
frames and arrays those stages handed over, and the files their code names.

The model card lists these so an engineer can tell which data a model saw without opening a
notebook. The files a stage's code names are found the way the stage cache finds them (string
literals naming an existing file, relative to the notebook's working folder), so the card and
the cache agree on what a stage reads.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from .dataflow import analyze_code

if TYPE_CHECKING:
    from .analysis import Stage
    from .artifacts import StageRecord, VariableInfo
    from .bundle import Bundle

HASH_CHUNK = 1 << 20
TIMES = " \N{MULTIPLICATION SIGN} "  # between rows and columns, as people write sizes


@dataclass(frozen=True)
class DatasetFact:
    """A data frame or array that crossed a stage boundary on the way to the outputs."""

    variable: str
    producer: str  # the stage that made it
    consumers: tuple[str, ...]  # the stages of the lineage that read it
    digest: str  # the value's content digest (the artifact store's)
    size: str  # "178 by 14" (rows, columns), "124 by 13" (an array's shape), "124 rows"


@dataclass(frozen=True)
class InputFile:
    """A file named in the code of a stage the outputs depend on."""

    path: str  # as the code names it: relative to the notebook's working folder
    sha256: str | None  # None: it could not be read
    size: int
    stages: tuple[str, ...]  # the stages whose code names it


def lineage(bundle: Bundle, stage: str) -> list[Stage]:
    """The stage and every stage it depends on (through values or `after:`), in pipeline order."""
    stages = {s.name: s for s in bundle.stages}
    needed: set[str] = set()
    pending = [stage]
    while pending:
        name = pending.pop()
        if name in needed or name not in stages:
            continue
        needed.add(name)
        current = stages[name]
        pending += [*current.upstream, *current.inputs.values()]
    return [s for s in bundle.stages if s.name in needed]


def datasets(bundle: Bundle, stage: str, records: dict[str, StageRecord]) -> list[DatasetFact]:
    """The data frames and arrays the stage and its upstream stages received, in pipeline order."""
    consumers: dict[tuple[str, str], list[str]] = {}
    for current in lineage(bundle, stage):
        for variable, producer in current.inputs.items():
            consumers.setdefault((variable, producer), []).append(current.name)
    found = []
    for (variable, producer), readers in consumers.items():
        record = records.get(producer)
        info = record.variables.get(variable) if record else None
        if info is None or not info.summary:
            continue  # not data (a model, a list...), or the producer's record is unknown
        found.append(DatasetFact(variable, producer, tuple(readers), info.digest, size(info)))
    return found


def size(info: VariableInfo) -> str:
    """Rows by columns of a data frame, an array's shape, a series' rows (`178 TIMES 14`)."""
    summary: dict[str, Any] = info.summary
    if summary.get("kind") == "dataframe":
        return f"{summary.get('rows', '?')}{TIMES}{len(summary.get('columns') or {})}"
    if summary.get("shape") is not None:
        return TIMES.join(str(n) for n in summary["shape"]) or "scalar"
    if summary.get("rows") is not None:
        return f"{summary['rows']} rows"
    return "?"


def input_files(bundle: Bundle, stage: str) -> list[InputFile]:
    """The files the code of the stage and its upstream stages names, each with its sha256 now."""
    workdir = bundle.workdir_path
    named: dict[str, list[str]] = {}
    for current in lineage(bundle, stage):
        try:
            code = code_cells(bundle.notebook_path(current.name))
        except (OSError, KeyError, ValueError):
            continue  # no stage notebook to read (a bundle moved or cleaned): nothing to list
        for path in named_files(code, workdir):
            named.setdefault(path, []).append(current.name)
    return [_input_file(workdir, path, tuple(stages)) for path, stages in named.items()]


def _input_file(workdir: Path, path: str, stages: tuple[str, ...]) -> InputFile:
    full = workdir / path
    shown = path
    if Path(path).is_absolute() and full.is_relative_to(workdir):
        shown = str(full.relative_to(workdir))
    try:
        return InputFile(shown, file_sha256(full), full.stat().st_size, stages)
    except OSError:
        return InputFile(shown, None, 0, stages)


def file_sha256(path: Path) -> str:
    """A file's sha256, read in chunks (data files can be larger than memory)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def code_cells(notebook: Path) -> list[str]:
    """The sources of a stage notebook's code cells (the stage's code, setup included)."""
    nb = nbformat.read(notebook, as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def named_files(code: list[str], workdir: Path) -> list[str]:
    """The existing files the code names in string literals (`"data/train.csv"`), in the order
    it names them, as written; relative paths are taken from `workdir`."""
    found: dict[str, None] = {}
    for source in code:
        try:
            tree = ast.parse(analyze_code(source).python)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if 0 < len(text) < 300 and "\n" not in text and "\0" not in text:
                    try:
                        if (workdir / text).is_file():
                            found[text] = None
                    except OSError:
                        continue
    return list(found)
