"""Outputs a run takes instead of running a stage: the stage cache, and earlier runs' outputs.

Two kinds of reuse, both decided before a kernel starts:

- the **stage cache** (``cache``): a stage whose code, parameters, inputs and kernel are
  unchanged since a run that finished it is served from that run's outputs;
- **earlier runs**, for ``--from``/``--only``: the stages left out of the run that produce
  inputs of the stages run come from the newest earlier run of the pipeline that has them;
  in a scheduler's run (``begin``/``stage``/``end``), from the tasks that ran before, in the
  shared store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import Stage
from ..artifacts import ArtifactStore, StageRecord, open_store
from ..bundle import Bundle
from ..errors import BadInput
from .cache import CachedStage, StageCache, stage_key
from .history import run_folders
from .runstate import read_run, recorded_store


@dataclass
class EarlierOutputs:
    """A stage's outputs in an earlier run."""

    store: ArtifactStore
    record: StageRecord
    origin: str  # the MLflow run that made them, else the earlier run's id


class Reuse:
    def __init__(
        self,
        bundle: Bundle,
        runs_root: Path,
        parameters: dict[str, Any],
        kernel: str,
        cache: bool,
        use_cache: bool,
        forced: set[str],
    ) -> None:
        self.bundle = bundle
        self.runs_root = runs_root
        self.parameters = parameters
        self.kernel = kernel
        self.cache = StageCache(runs_root) if cache else None
        self.forced = forced  # asked to run again (--from/--only), whatever the cache holds
        self.use_cache = use_cache  # False: --no-cache (it still saves for later runs)

    # --- the stage cache ------------------------------------------------------------------

    def key(self, stage: Stage, records: dict[str, StageRecord], store: str) -> str | None:
        """The stage's cache key, once its inputs (`records` of its upstream) are known;
        `store` is the tracking store the run logs to."""
        if self.cache is None:
            return None
        return stage_key(self.bundle, stage, self.parameters, records, self.kernel, store)

    def lookup(self, stage: Stage, key: str | None) -> CachedStage | None:
        if key is None or self.cache is None or not self.use_cache or stage.name in self.forced:
            return None
        return self.cache.lookup(key)

    def save(self, key: str | None, record: StageRecord, store: ArtifactStore, run: str) -> None:
        if key is not None and self.cache is not None:
            self.cache.save(key, record, store, run)

    # --- earlier runs ---------------------------------------------------------------------

    def find_earlier(self, producers: set[str], this_run: Path) -> dict[str, Path]:
        """The earlier run folder holding each producer's outputs; BadInput if one has none."""
        found = {}
        for producer in sorted(producers):
            earlier = self._earlier_run_with(producer, this_run)
            if earlier is None:
                raise BadInput(
                    f"stage `{producer}` is not part of this run, and no earlier run of "
                    f"`{self.bundle.name}` in {self.runs_root} has its outputs; "
                    "run the whole pipeline once first"
                )
            found[producer] = earlier
        return found

    def _earlier_run_with(self, stage: str, this_run: Path) -> Path | None:
        """The newest earlier run of this pipeline whose store has the stage's outputs."""
        for folder in run_folders(self.runs_root):
            if folder.parent.name != self.bundle.name or folder == this_run:
                continue
            if open_store(recorded_store(read_run(folder), folder)).has_record(stage):
                return folder
        return None


def earlier_outputs(producer: str, folder: Path) -> EarlierOutputs:
    """A producer's outputs as an earlier run (`folder`) recorded them."""
    state = read_run(folder)
    store = open_store(recorded_store(state, folder))
    origin = state.stage(producer).mlflow_run_id or folder.name
    return EarlierOutputs(store, store.read_record(producer), origin)


def shared_records(store: ArtifactStore, producers: set[str]) -> dict[str, StageRecord]:
    """In a scheduler's run, upstream stages ran as other tasks into the shared store."""
    records = {}
    for producer in sorted(producers):
        if not store.has_record(producer):
            raise BadInput(
                f"stage `{producer}` has not finished in this pipeline run yet (no outputs "
                f"in {store.location}); the scheduler must run it first"
            )
        records[producer] = store.read_record(producer)
    return records
