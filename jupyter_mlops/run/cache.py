"""Stage caching: a stage whose inputs are all unchanged is not run again.

A stage's *key* is a hash of everything its outputs depend on: the code it runs (its cells
and the setup cells, as in its stage notebook), the parameter values it reads, the content
digests of the values it receives, the files its code names (size and modification time),
and the environment (Python, the kernel, the pinned requirements, this package's version);
for a stage that logs or evaluates models, also the tracking store they live in. Change any of them
and the key changes, so a stale value is never served.

The cache lives beside the run folders (``<runs dir>/.cache``): one small JSON entry per key,
and the outputs' content-addressed objects, hard-linked from the run that produced them. Both
are written atomically, so concurrent runs can share it safely.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..analysis import Stage
from ..artifacts import ArtifactStore, StageRecord
from ..bundle import Bundle
from ..files import atomic_write
from ..provenance import code_cells as _code_cells
from ..provenance import named_files

KEY_FORMAT = 1
CACHE_FOLDER = ".cache"


@dataclass(frozen=True)
class CachedStage:
    record: StageRecord
    origin: str  # the MLflow run (or run folder) that computed the outputs


class StageCache:
    def __init__(self, runs_root: Path) -> None:
        self.root = runs_root / CACHE_FOLDER
        self.objects = ArtifactStore(self.root)  # only its objects/ folder is used

    def lookup(self, key: str) -> CachedStage | None:
        try:
            entry = json.loads((self.root / "entries" / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        record = StageRecord.from_json(entry["record"])
        if record.object and not self.objects.object_path(record.object).is_dir():
            return None  # its outputs were cleaned away
        return CachedStage(record, entry["origin"])

    def save(self, key: str, record: StageRecord, source: ArtifactStore, origin: str) -> None:
        if record.object:
            self.objects.adopt(source, record)  # hard links: no copy of the data
        entry = {"record": record.to_json(), "origin": origin}
        atomic_write(self.root / "entries" / f"{key}.json", json.dumps(entry))


def stage_key(
    bundle: Bundle,
    stage: Stage,
    parameters: dict[str, Any],
    upstream: dict[str, StageRecord],
    kernel: str,
    store: str | None = None,
) -> str:
    """The hash of everything the stage's outputs depend on (see the module docstring).

    A stage that logs models, or receives one, also depends on `store`, the tracking store
    the models live in: a run against another store can't register them nor log metrics
    against them, so it runs the stage again.
    """
    code = _code_cells(bundle.notebook_path(stage.name))
    requirements = bundle.root / "requirements.txt"
    facts = {
        "format": KEY_FORMAT,
        "jupyter_mlops": __version__,
        "python": platform.python_version(),
        "kernel": kernel,
        "requirements": requirements.read_text() if requirements.is_file() else "",
        "code": code,
        "parameters": {n: parameters.get(n) for n in stage.parameters},
        "inputs": {
            name: upstream[producer].variables[name].digest
            for name, producer in stage.inputs.items()
        },
        "files": _named_files(code, bundle.workdir_path),
    }
    consumes_model = any(n in upstream[p].models for n, p in stage.inputs.items())
    if stage.models or consumes_model:
        facts["store"] = store
    text = json.dumps(facts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _named_files(code: list[str], workdir: Path) -> dict[str, list[int]]:
    """Size and mtime of files the code names in string literals (`"data/train.csv"`)."""
    found: dict[str, list[int]] = {}
    for text in named_files(code, workdir):
        try:
            stat = (workdir / text).stat()
        except OSError:
            continue
        found[text] = [stat.st_size, stat.st_mtime_ns]
    return found
