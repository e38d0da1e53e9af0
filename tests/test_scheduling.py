"""The runner's scheduling decisions, without kernels (jupyter_mlops.run.scheduling).

A small simulator plays the runner's part: it asks `Schedule` what to do, "runs" the stages
it starts (each ends when the test says so), and records every decision, so each rule of a
run's schedule is checked on its own: order, the parallel limit, pre-started kernels and
their gates, the cache, failure propagation, a halted run, and --from/--only selection.
"""

from __future__ import annotations

from collections.abc import Collection

import pytest

from jupyter_mlops.run.scheduling import (
    CACHED,
    OPEN,
    SKIP,
    Schedule,
    outside_producers,
    select_stages,
)

# load -> split -> (train_a, train_b) -> compare; report reads load only.
FANOUT = {
    "load": [],
    "split": ["load"],
    "train_a": ["split"],
    "train_b": ["split"],
    "compare": ["train_a", "train_b"],
    "report": ["load"],
}


class Run:
    """Plays the runner: applies decisions and keeps the log of what happened."""

    def __init__(
        self,
        upstream: dict[str, list[str]],
        jobs: int = 1,
        cached: Collection[str] = (),
        order: list[str] | None = None,
    ) -> None:
        self.cached = set(cached)
        self.lookups: list[str] = []
        self.schedule = Schedule(upstream, order or list(upstream), jobs, self.lookup)
        self.started: list[str] = []  # in a kernel (maybe waiting at its gate)
        self.served: list[str] = []  # from the cache, without a kernel
        self.gates: dict[str, str] = {}
        self.skipped: list[str] = []

    def lookup(self, name: str) -> bool:
        self.lookups.append(name)
        return name in self.cached

    def step(self, halted: bool = False) -> None:
        """The runner's loop while no stage ends: it asks again every 50 ms, so until
        nothing new is decided."""
        while True:
            gates = self.schedule.gates(halted)
            for name, decision in gates:
                assert name not in self.gates, f"{name}'s gate decided twice"
                self.gates[name] = decision
            skipped, starts = self.schedule.starts(halted)
            self.skipped += skipped
            for start in starts:
                (self.served if start.cached else self.started).append(start.stage)
            if not (gates or skipped or starts):
                return

    @property
    def running(self) -> list[str]:
        """Stages whose gate is open and that haven't ended."""
        return [n for n in self.schedule.active if self.gates.get(n) == OPEN]

    def end(self, name: str, ok: bool = True) -> None:
        self.schedule.ended(name, ok)

    def drain(self, failing: Collection[str] = ()) -> list[str]:
        """Run to the end, each step ending the stages that can end; the order they ended."""
        ended: list[str] = []
        for _ in range(100):
            if self.schedule.over:
                return ended
            self.step()
            for name in list(self.schedule.active):
                decision = self.gates.get(name)
                if name in self.served or decision in (OPEN, CACHED, SKIP):
                    self.end(name, ok=name not in failing and decision != SKIP)
                    ended.append(name)
        raise AssertionError("the schedule never ended")


def test_stages_start_in_dependency_order_one_at_a_time():
    run = Run(FANOUT)
    ended = run.drain()
    assert ended == ["load", "split", "train_a", "train_b", "compare", "report"]
    assert run.skipped == []


def test_a_stage_waits_for_every_upstream_stage():
    run = Run(FANOUT, jobs=4)
    run.step()
    run.end("load")
    run.step()
    run.end("split")
    run.step()
    run.end("train_a")
    run.step()
    assert run.gates.get("compare") is None  # train_b is still running
    run.end("train_b")
    run.step()
    assert run.gates["compare"] == OPEN


def test_no_more_than_jobs_stages_run_at_once():
    run = Run({"a": [], "b": [], "c": [], "d": []}, jobs=2)
    run.step()
    assert sorted(run.running) == ["a", "b"]
    assert run.started == ["a", "b", "c", "d"]  # two more pre-started, waiting at their gates
    run.end("a")
    run.step()
    assert sorted(run.running) == ["b", "c"]


def test_kernels_pre_start_behind_running_stages_up_to_jobs_waiting():
    run = Run({"a": [], "b": ["a"], "c": ["b"]}, jobs=1)
    run.step()
    # b pre-starts behind a (which really runs); c waits, as one kernel is warming up already
    assert run.started == ["a", "b"]
    assert run.gates == {"a": OPEN}
    run.end("a")
    run.step()
    assert run.gates["b"] == OPEN
    assert run.started == ["a", "b", "c"]


def test_nothing_pre_starts_behind_a_stage_served_from_the_cache():
    run = Run({"a": [], "b": ["a"]}, cached=["a"])
    run.step()
    assert run.served == ["a"] and run.started == []  # b waits: a ends in a moment
    run.end("a")
    run.step()
    assert run.started == ["b"] and run.gates["b"] == OPEN


def test_nothing_pre_starts_behind_a_stage_stopped_at_its_gate_for_the_cache():
    run = Run({"a": [], "b": ["a"], "c": ["b"]}, cached=["b", "c"])
    run.step()
    assert run.started == ["a", "b"]  # b pre-started behind a, which really runs
    run.end("a")
    run.step()
    assert run.gates["b"] == CACHED
    assert run.started == ["a", "b"]  # c waits: b ends in a moment
    run.end("b")
    run.step()
    assert run.served == ["c"]


def test_a_pre_started_stage_the_cache_holds_is_stopped_at_its_gate():
    run = Run({"a": [], "b": ["a"]}, cached=["b"])
    run.step()
    assert run.started == ["a", "b"] and "b" not in run.lookups  # its inputs aren't known yet
    run.end("a")
    run.step()
    assert run.gates["b"] == CACHED
    assert run.lookups.count("b") == 1


def test_the_cache_is_asked_once_per_stage_once_its_inputs_are_known():
    run = Run(FANOUT, jobs=2)
    run.drain()
    assert sorted(run.lookups) == sorted(FANOUT)


def test_a_failure_stops_what_has_not_started_and_stops_waiting_kernels():
    run = Run({"a": [], "b": [], "c": ["a"], "d": ["c"]}, jobs=1)
    run.step()
    assert run.gates == {"a": OPEN} and run.started == ["a", "b"]
    run.end("a", ok=False)
    run.step()
    assert run.gates["b"] == SKIP  # was waiting at its gate
    assert run.skipped == ["c", "d"]
    run.end("b", ok=False)
    assert run.schedule.over


def test_stages_already_running_finish_after_a_failure():
    run = Run({"a": [], "b": [], "c": []}, jobs=3)
    run.step()
    assert sorted(run.running) == ["a", "b", "c"]
    run.end("a", ok=False)
    run.step()
    assert sorted(run.running) == ["b", "c"]  # not stopped: they end on their own
    run.end("b")
    run.end("c")
    assert run.schedule.over


def test_a_halted_run_starts_nothing_more():
    run = Run({"a": [], "b": ["a"], "c": ["b"]})
    run.step()
    run.step(halted=True)
    assert run.gates["b"] == SKIP
    assert run.skipped == ["c"]


def test_stages_outside_the_selection_count_as_done():
    run = Run(FANOUT, order=["compare"])
    run.step()
    assert run.gates == {"compare": OPEN}


@pytest.mark.parametrize(
    ("from_stage", "only", "expected"),
    [
        (None, [], set(FANOUT)),
        ("train_a", [], {"train_a", "compare"}),
        ("split", [], {"split", "train_a", "train_b", "compare"}),
        (None, ["compare"], {"compare"}),
        (None, ["report", "load"], {"report", "load"}),
    ],
)
def test_selection(from_stage, only, expected):
    def downstream(names: set[str]) -> set[str]:
        found = set(names)
        while True:
            more = {n for n, up in FANOUT.items() if set(up) & found} - found
            if not more:
                return found
            found |= more

    assert select_stages(list(FANOUT), downstream, from_stage, only) == expected


def test_outputs_needed_from_outside_the_selection():
    assert outside_producers({"compare"}, FANOUT) == {"train_a", "train_b"}
    assert outside_producers({"train_a", "compare"}, FANOUT) == {"split", "train_b"}
    assert outside_producers(set(FANOUT), FANOUT) == set()
