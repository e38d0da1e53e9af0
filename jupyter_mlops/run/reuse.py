"""Outputs a run takes instead of running a stage: the stage cache, and earlier runs' outputs.

Two kinds of reuse, both decided before a kernel starts:

- the **stage cache** (``cache``): a stage whose code, parameters, inputs and kernel are
  unchanged since a run that finished it is served from that run's outputs;
- **earlier runs**, for ``--from``/``--only``: the stages left out of the run that produce
  inputs of the stages run come from the newest earlier run of the pipeline that computed
  them, and every stage they depend on, with this run's code and parameters (the stages'
  keys, recorded in run.json, say so); a run that differs is refused, naming what differs,
  rather than handing on a model trained with other parameters. In a scheduler's run
  (``begin``/``stage``/``end``), they come from the tasks that ran before, in the shared
  store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import Stage
from ..artifacts import ArtifactStore, StageRecord, open_store
from ..bundle import Bundle
from ..errors import BadInput
from ..tracking.card import param_text
from .cache import CachedStage, StageCache, stage_key
from .history import run_folders
from .runstate import RunState, read_run, recorded_store


@dataclass
class EarlierOutputs:
    """A stage's outputs in an earlier run."""

    store: ArtifactStore
    record: StageRecord
    origin: str  # the MLflow run that made them, else the earlier run's id


@dataclass
class Earlier:
    """Where a stage left out of this run has outputs computed as this run would."""

    folder: Path
    key: str  # its key, the same in that run and this one
    needed: bool  # its outputs are this run's inputs; else only upstream of them (lineage)


class _EarlierRun:
    """An earlier run folder, read once: its run.json and the records in its store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state: RunState = read_run(folder)
        self.store = open_store(recorded_store(self.state, folder))
        self._records: dict[str, StageRecord | None] = {}

    def record(self, stage: str) -> StageRecord | None:
        if stage not in self._records:
            has = self.store.has_record(stage)
            self._records[stage] = self.store.read_record(stage) if has else None
        return self._records[stage]

    def key(self, stage: str) -> str | None:
        return next((s.key for s in self.state.stages if s.name == stage), None)


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

    def key(self, stage: Stage, records: dict[str, StageRecord], store: str) -> str:
        """The stage's key (what its outputs depend on), once its inputs (`records` of its
        upstream) are known; `store` is the tracking store the run logs to. Kept in run.json
        even without the cache: a later `--only` checks its lineage against it."""
        return stage_key(self.bundle, stage, self.parameters, records, self.kernel, store)

    def lookup(self, stage: Stage, key: str | None) -> CachedStage | None:
        if key is None or self.cache is None or not self.use_cache or stage.name in self.forced:
            return None
        return self.cache.lookup(key)

    def save(self, key: str | None, record: StageRecord, store: ArtifactStore, run: str) -> None:
        if key is not None and self.cache is not None:
            self.cache.save(key, record, store, run)

    # --- earlier runs ---------------------------------------------------------------------

    def check_earlier(self, producers: set[str], this_run: Path) -> None:
        """BadInput unless an earlier run has the producers' outputs (checked before a run
        writes anything; which run's outputs can be taken is decided by `find_earlier`)."""
        if producers and next(self._with_outputs(producers, this_run), None) is None:
            raise BadInput(self._none_earlier(producers))

    def _with_outputs(self, producers: set[str], this_run: Path) -> Iterator[_EarlierRun]:
        """Earlier runs of this pipeline that have the producers' outputs, newest first."""
        for folder in run_folders(self.runs_root):
            if folder.parent.name != self.bundle.name or folder == this_run:
                continue
            try:
                earlier = _EarlierRun(folder)
                if all(earlier.record(p) for p in producers):
                    yield earlier
            except (OSError, ValueError, TypeError, KeyError):
                continue  # unreadable: not one to take outputs from

    def _none_earlier(self, producers: set[str]) -> str:
        return (
            f"{_left_out(producers)}, and no earlier run of "
            f"`{self.bundle.name}` in {self.runs_root} has its outputs; "
            "run the whole pipeline once first"
        )

    def find_earlier(self, producers: set[str], this_run: Path, store: str) -> dict[str, Earlier]:
        """The newest earlier run that computed the producers (and every stage they depend
        on) with this run's code, parameters and tracking `store`, by stage: the producers
        and their upstream stages (`needed` False), whose outputs and keys this run keeps
        too, so that a later run can check its lineage in turn. BadInput naming what differs
        when none did, or when no earlier run has their outputs at all."""
        if not producers:
            return {}
        lineage = self._lineage(producers)
        newest: _EarlierRun | None = None
        for earlier in self._with_outputs(producers, this_run):
            newest = newest or earlier
            keys = {s: self._same_key(earlier, s, store) for s in sorted(lineage)}
            if all(keys.values()):  # the whole lineage, so a later run can check this one's
                return {s: Earlier(earlier.folder, str(k), s in producers) for s, k in keys.items()}
        if newest is None:
            raise BadInput(self._none_earlier(producers))
        raise BadInput(
            f"{_left_out(producers)}, and no earlier run of "
            f"`{self.bundle.name}` computed its outputs with this run's code and parameters: "
            f"{self._difference(newest, lineage, store)}; run the whole pipeline (or start "
            "it earlier with --from) to compute them"
        )

    def _lineage(self, producers: set[str]) -> set[str]:
        """The producers and every stage whose outputs they depend on."""
        found: set[str] = set()
        pending = sorted(producers)
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending += list(self.bundle.stage(name).inputs.values())
        return found

    def _same_key(self, earlier: _EarlierRun, name: str, store: str) -> str | None:
        """The stage's key, when this run's equals the one the earlier run recorded."""
        recorded = earlier.key(name)
        stage = self.bundle.stage(name)
        upstream = {p: earlier.record(p) for p in stage.inputs.values()}
        if recorded is None or earlier.record(name) is None or None in upstream.values():
            return None
        records = {p: r for p, r in upstream.items() if r is not None}
        key = stage_key(self.bundle, stage, self.parameters, records, self.kernel, store)
        return key if key == recorded else None

    def _difference(self, earlier: _EarlierRun, lineage: set[str], store: str) -> str:
        """What differs between this run and the newest earlier one, as far as is known."""
        names = sorted({n for s in lineage for n in self.bundle.stage(s).parameters})
        before = earlier.state.parameters
        changed = [
            f"{n}={param_text(before.get(n))} (this run: {param_text(self.parameters.get(n))})"
            for n in names
            if before.get(n) != self.parameters.get(n)
        ]
        run = f"the newest, {earlier.folder.name}, "
        if changed:
            return run + "used " + ", ".join(changed)
        models = any(self.bundle.stage(s).models for s in lineage)
        if models and earlier.state.tracking_uri and earlier.state.tracking_uri != store:
            return run + "logged its models to another tracking store"
        if all(s.key is None for s in earlier.state.stages):
            return run + "did not record how it computed them (run by an older version)"
        return run + "ran other code, read other data files or ran in another environment"


def _left_out(producers: set[str]) -> str:
    """What the run leaves out, for one stage or several."""
    names = [f"`{p}`" for p in sorted(producers)]
    if len(names) == 1:
        return f"stage {names[0]} is not part of this run"
    return f"stages {', '.join(names[:-1])} and {names[-1]} are not part of this run"


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
