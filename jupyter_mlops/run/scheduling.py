"""Which stages run, and when: the runner's decisions, as pure functions of what happened.

Nothing here starts a kernel, reads a file or talks to MLflow, so every rule of a run's
schedule is unit-tested without kernels (tests/test_scheduling.py):

- selection: ``--only`` runs the stages named, ``--from`` a stage and what depends on it, and
  the stages outside the selection whose outputs are needed come from earlier runs;
- order: a stage starts once every upstream stage is done, up to ``jobs`` at a time
  (`default_jobs` unless told);
- pre-starting: up to ``jobs`` more stages behind stages that really run get their kernel
  started early and wait at their *gate* until their turn (their setup cells run meanwhile);
- reuse: once a stage's upstream stages are done its inputs are known, and a stage the cache
  holds is served from it instead of run (a pre-started one is stopped at its gate);
- failure: once a stage fails or the run is halted (stopped, tracking lost), stages running
  finish, waiting ones are stopped at their gate and the rest are skipped.

The runner (``runner.py``) asks `Schedule` what to do next, does it, and tells it how each
stage ended; the cache lookup is the one question `Schedule` asks back (``lookup``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

OPEN, CACHED, SKIP = "open", "cached", "skip"  # what happens at a waiting stage's gate


def default_jobs() -> int:
    """How many stages a run executes at once unless told: the machine's cores.

    The one default of the command's ``--jobs``, the REST API's run requests and the widget
    panel, so a fan-out runs its branches side by side wherever the run was started.
    """
    return os.cpu_count() or 1


def select_stages(
    names: list[str],
    downstream: Callable[[set[str]], set[str]],
    from_stage: str | None,
    only: Collection[str],
) -> set[str]:
    """The stages a run runs: all of them, ``--only`` these, or ``--from`` one onwards."""
    if only:
        return set(only)
    if from_stage:
        return downstream({from_stage})
    return set(names)


def outside_producers(selected: Iterable[str], inputs: Mapping[str, Iterable[str]]) -> set[str]:
    """Stages not selected whose outputs a selected stage reads (``inputs``: stage -> the
    stages its inputs come from): their outputs must come from elsewhere."""
    chosen = set(selected)
    return {producer for name in chosen for producer in inputs[name] if producer not in chosen}


@dataclass
class Start:
    """Start this stage now: served from the cache, or in a kernel (behind a gate)."""

    stage: str
    cached: bool  # its outputs are in the cache: no kernel is needed


@dataclass
class _Active:
    """A started stage, until it ends."""

    upstream: frozenset[str]
    cached: bool  # being served from the cache (ends in a moment)
    opened: bool = False  # its gate opened: it runs (or ran) its own cells
    decision: str | None = None  # CACHED or SKIP once stopped at its gate
    checked: bool = False  # looked up in the cache


class Schedule:
    """The state of one run's schedule, and the decisions taken from it.

    `upstream` maps every stage of the pipeline to its upstream stages; `order` is the
    selected stages in pipeline order; stages not selected count as done (their outputs
    come from earlier runs).
    """

    def __init__(
        self,
        upstream: Mapping[str, Collection[str]],
        order: list[str],
        jobs: int,
        lookup: Callable[[str], bool],
    ) -> None:
        self.jobs = max(1, jobs)
        self.lookup = lookup  # whether the cache holds the stage (asked once its inputs are known)
        self.upstream = {name: frozenset(up) for name, up in upstream.items()}
        self.waiting = list(order)  # selected, not started yet
        self.active: dict[str, _Active] = {}  # started, in the order they were started
        self.ok = {name for name in upstream if name not in order}
        self.bad: set[str] = set()

    @property
    def over(self) -> bool:
        return not self.waiting and not self.active

    def gates(self, halted: bool) -> list[tuple[str, str]]:
        """What happens at the gates of pre-started stages: (stage, OPEN | CACHED | SKIP).

        Called before `starts`; `halted` means the run is stopping (a stop, lost tracking).
        """
        decisions = []
        running = sum(a.opened and not a.decision for a in self.active.values())
        for name, active in self.active.items():
            if active.opened or active.decision or active.cached:
                continue
            if self.bad or halted:
                active.decision = SKIP
            elif active.upstream <= self.ok:
                if not active.checked:  # its inputs are known now: is it in the cache?
                    active.checked = True
                    if self.lookup(name):
                        active.decision = CACHED
                if active.decision is None and running < self.jobs:
                    active.opened = True
                    running += 1
            if active.decision or active.opened:
                decisions.append((name, active.decision or OPEN))
        return decisions

    def starts(self, halted: bool) -> tuple[list[str], list[Start]]:
        """The stages skipped for good, and the stages to start now (in pipeline order)."""
        skipped: list[str] = []
        started: list[Start] = []
        for name in list(self.waiting):
            if self.bad or halted:
                self.waiting.remove(name)
                self.bad.add(name)
                skipped.append(name)
                continue
            upstream = self.upstream[name]
            # Stages that really run: not those served from the cache, nor stopped at their
            # gate because the cache holds them (both end in a moment).
            running = {n for n, a in self.active.items() if not a.cached and a.decision != CACHED}
            waiting = sum(not a.opened for a in self.active.values())
            if not upstream <= self.ok | running or len(self.active) >= 2 * self.jobs:
                continue
            if not upstream <= self.ok and waiting >= self.jobs:
                continue  # enough kernels warming up already
            self.waiting.remove(name)
            known = upstream <= self.ok  # its inputs are known: maybe no kernel is needed
            cached = known and self.lookup(name)
            self.active[name] = _Active(upstream, cached, checked=known)
            started.append(Start(name, cached))
        return skipped, started

    def ended(self, name: str, succeeded: bool) -> None:
        """A started stage ended (ran, was served from the cache, or stopped at its gate)."""
        self.active.pop(name)
        (self.ok if succeeded else self.bad).add(name)
