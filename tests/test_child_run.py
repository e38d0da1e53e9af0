"""The decisions shared by the server's runs and the widget's: no process is started here.

The FIFO of runs waiting for a slot (`RunQueue`), how a run in a child process ended
(`run_end`) and the end of its log. The processes themselves are tested through their
owners: tests/test_server*.py, tests/test_widgets.py, tests/test_orphans.py.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import nbformat
import pytest
from conftest import code, notebook
from test_zygote import alive

from jupyter_mlops.run.child import (
    NO_SPARE_ENV,
    RunQueue,
    SpareSlot,
    last_line,
    read_log_end,
    run_end,
)
from jupyter_mlops.run.runstate import (
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_RUNNING,
    RUN_SUCCEEDED,
    RunState,
    StageError,
)


def state(status: str, message: str | None = None) -> RunState:
    return RunState(
        id="20260101-000000-abcd",
        pipeline="p",
        run_dir="/nowhere",
        status=status,
        created=0.0,
        error=StageError(message) if message else None,
    )


# --- RunQueue ---------------------------------------------------------------------------


def queue_of(size: int, keys: str) -> RunQueue[str]:
    """A queue of `size` slots where each letter of `keys` waits, in order."""
    queue: RunQueue[str] = RunQueue(size)
    for key in keys:
        queue.enqueue(key)
    return queue


def test_runs_start_in_the_order_they_came_up_to_the_limit():
    queue = queue_of(2, "abc")
    assert queue.next() == "a" and queue.ready("a") and not queue.ready("b")
    queue.started("a")
    queue.started("b")
    assert queue.running == 2 and queue.full
    assert queue.next() is None and not queue.ready("c")  # it waits
    queue.finished("a")
    assert queue.next() == "c"
    queue.started("c")
    assert queue.next() is None and queue.running == 2


def test_a_run_takes_its_slot_when_started_so_overlapping_starts_keep_the_limit():
    """The server awaits the spawn of a run it took out of the queue: a second caller
    meanwhile must not see a free slot."""
    queue = queue_of(1, "ab")
    queue.started("a")  # being spawned, no process yet
    assert queue.next() is None


def test_only_the_run_whose_turn_it_is_can_start():
    queue = queue_of(1, "ab")
    with pytest.raises(ValueError, match="not the run that may start now"):
        queue.started("b")
    queue.started("a")
    with pytest.raises(ValueError, match="not the run that may start now"):
        queue.started("b")  # no slot free


def test_a_waiting_run_can_be_cancelled_and_the_next_moves_up():
    queue = queue_of(1, "abc")
    queue.started("a")
    assert queue.cancel("b") and queue.waiting("c") and not queue.waiting("b")
    assert not queue.cancel("b")  # once
    assert not queue.cancel("a")  # a running run isn't the queue's to cancel
    queue.finished("a")
    assert queue.next() == "c"


def test_cancelling_the_first_in_line_lets_the_next_start():
    queue = queue_of(1, "ab")
    assert queue.cancel("a")
    assert queue.ready("b")


def test_cancel_all_empties_the_queue_oldest_first_and_keeps_the_running():
    queue = queue_of(1, "abc")
    queue.started("a")
    assert queue.cancel_all() == ["b", "c"]
    assert queue.next() is None and queue.running == 1
    queue.finished("a")
    assert queue.next() is None and queue.running == 0


def test_a_slot_is_given_back_once_and_a_run_is_queued_once():
    queue = queue_of(1, "a")
    with pytest.raises(ValueError, match="already queued or running"):
        queue.enqueue("a")
    queue.started("a")
    with pytest.raises(ValueError, match="already queued or running"):
        queue.enqueue("a")
    queue.finished("a")
    with pytest.raises(ValueError, match="is not running"):
        queue.finished("a")


def test_any_hashable_ticket_works_as_the_widget_uses_its_run_objects():
    first, second = object(), object()
    queue: RunQueue[object] = RunQueue(1)
    queue.enqueue(first)
    queue.enqueue(second)
    queue.started(first)
    assert not queue.ready(second)
    queue.finished(first)
    assert queue.ready(second)


def test_a_queue_needs_at_least_one_slot():
    with pytest.raises(ValueError, match="give at least 1"):
        RunQueue(0)


# --- run_end ----------------------------------------------------------------------------


def test_the_end_is_run_json_when_there_is_one():
    end = run_end(state(RUN_FAILED, "boom"), cancelled=False, spawned=True, log_end="x")
    assert (end.status, end.message) == (RUN_FAILED, "boom")
    end = run_end(state(RUN_SUCCEEDED), cancelled=False, spawned=True)
    assert (end.status, end.message) == (RUN_SUCCEEDED, None)
    assert end.state is not None and end.state.status == RUN_SUCCEEDED


def test_a_run_that_ended_while_run_json_says_running_failed_unless_it_was_cancelled():
    killed = run_end(state(RUN_RUNNING), cancelled=False, spawned=True, returncode=-9)
    assert killed.status == RUN_FAILED
    cancelled = run_end(state(RUN_RUNNING), cancelled=True, spawned=True, returncode=-15)
    assert cancelled.status == RUN_CANCELLED


def test_a_run_cancelled_before_it_had_a_run_json():
    queued = run_end(None, cancelled=True, spawned=False)
    assert (queued.status, queued.message) == (RUN_CANCELLED, "the run was cancelled while queued")
    starting = run_end(None, cancelled=True, spawned=True, returncode=-15)
    assert starting.status == RUN_CANCELLED
    assert starting.message == "the run was cancelled before it started"


def test_a_run_that_could_not_be_spawned_failed_with_why():
    end = run_end(None, cancelled=False, spawned=False, error="the run could not start: gone")
    assert (end.status, end.message) == (RUN_FAILED, "the run could not start: gone")


def test_a_command_that_refused_the_run_failed_with_its_last_words_or_its_exit_code():
    log = "usage: ...\nerror: no such stage `x`\n\n"
    refused = run_end(None, cancelled=False, spawned=True, log_end=log, returncode=2)
    assert (refused.status, refused.message) == (RUN_FAILED, "error: no such stage `x`")
    silent = run_end(None, cancelled=False, spawned=True, log_end=" \n", returncode=1)
    assert silent.message == "the run command exited with code 1 before the run began"


# --- the log ----------------------------------------------------------------------------


def test_the_end_of_a_log_and_whether_it_was_cut(tmp_path: Path):
    log = tmp_path / "runner.log"
    log.write_bytes(b"first\n" + "é".encode() * 10 + b"\nlast line  \n\n")
    whole, cut = read_log_end(log)
    assert not cut and whole.startswith("first") and last_line(whole) == "last line"
    end, cut = read_log_end(log, size=13)  # begins inside a two-byte character
    assert cut and end.endswith("last line  \n\n") and "first" not in end
    assert read_log_end(tmp_path / "missing.log") == ("", False)
    assert last_line("") == "" and last_line("\n  \n") == ""


def test_a_runner_started_ahead_ends_with_its_owner(tmp_path: Path) -> None:
    """A spare waits for its run on a pipe its owner holds: when the owner ends (here, it
    closes its end, as its death would), the spare ends too, having run nothing."""
    import subprocess

    from jupyter_mlops.run.child import spare_arguments

    arguments = spare_arguments(tmp_path)
    spare = subprocess.Popen(arguments.pop("args"), **arguments)
    assert spare.stdin is not None
    spare.stdin.close()
    assert spare.wait(timeout=120) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_runner_started_ahead_that_no_run_comes_for_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its idle limit: it doesn't hold its imports for good, nor the zygote it started for
    the run it expected."""
    import subprocess

    from jupyter_mlops.run.child import spare_arguments
    from jupyter_mlops.run.spare import IDLE_ENV

    monkeypatch.setenv(IDLE_ENV, "8")
    nb = tmp_path / "nb.ipynb"
    nbformat.write(notebook(code("import json", "setup"), code("x = 1", "stage:a")), nb)
    arguments = spare_arguments(tmp_path, str(nb))
    spare = subprocess.Popen(arguments.pop("args"), **arguments)
    try:
        zygotes: list[int] = []
        deadline = time.monotonic() + 20
        while not zygotes and time.monotonic() < deadline:  # the expected run's zygote
            children = Path(f"/proc/{spare.pid}/task/{spare.pid}/children")
            with contextlib.suppress(OSError):
                zygotes = [int(pid) for pid in children.read_text().split()]
            time.sleep(0.1)
        assert zygotes, "the spare started no zygote"
        assert spare.wait(timeout=120) == 0  # its stdin still open: it ended on its own
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in zygotes) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in zygotes), "its zygote outlived it"
    finally:
        spare.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


def test_a_spare_request_names_the_command_it_becomes(tmp_path: Path) -> None:
    import json
    import sys

    from jupyter_mlops.run.spare import request_line

    command = [sys.executable, "-m", "jupyter_mlops", "run", "nb.ipynb", "--run-id", "r1"]
    request = json.loads(request_line(command, str(tmp_path / "runner.log"), {"A": "1"}))
    assert request == {
        "argv": ["run", "nb.ipynb", "--run-id", "r1"],
        "log": str(tmp_path / "runner.log"),
        "env": {"A": "1"},
    }
    with pytest.raises(ValueError):
        request_line(["papermill", "nb.ipynb"], "log", {})


# --- the decisions about a runner started ahead (one for the server and the widget) ----------


def test_a_spare_starts_only_while_no_run_runs_or_waits_and_one_at_a_time(tmp_path: Path):
    slot: SpareSlot[str] = SpareSlot()
    assert slot.begin(tmp_path, "nb.ipynb", busy=True) is None
    arguments = slot.begin(tmp_path, "nb.ipynb", busy=False)
    assert arguments is not None and arguments["args"][-1] == "nb.ipynb"
    assert slot.begin(tmp_path, "nb.ipynb", busy=False) is None  # one is starting
    assert slot.started("spare") is None  # kept
    assert slot.begin(tmp_path, "nb.ipynb", busy=False) is None  # one waits
    assert slot.take(tmp_path) == ("spare", None)
    assert slot.take(tmp_path) == (None, None)  # taken once


def test_a_spare_serves_only_its_folder_and_the_conditions_it_started_under(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    slot: SpareSlot[str] = SpareSlot()
    slot.begin(tmp_path, "", busy=False)
    slot.started("spare")
    assert slot.take(tmp_path / "elsewhere") == (None, "spare")  # to end, not to use
    slot.begin(tmp_path, "", busy=False)
    slot.started("spare 2")
    monkeypatch.setenv("A_CELL_SET_THIS", "1")  # the owner's environment changed
    assert slot.take(tmp_path) == (None, "spare 2")


def test_a_spare_that_failed_to_start_or_started_as_its_owner_stopped_is_not_kept(
    tmp_path: Path,
):
    slot: SpareSlot[str] = SpareSlot()
    slot.begin(tmp_path, "", busy=False)
    assert slot.started(None) is None  # it could not start: the next may
    assert slot.begin(tmp_path, "", busy=False) is not None
    assert slot.close() is None
    assert slot.started("late") == "late"  # handed back, to end
    assert slot.take(tmp_path) == (None, None)
    assert slot.begin(tmp_path, "", busy=False) is None  # stopped: never again


def test_spares_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(NO_SPARE_ENV, "1")
    assert SpareSlot[str]().begin(tmp_path, "", busy=False) is None


def test_a_spare_near_its_own_end_is_not_handed_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A request must never reach a spare on its way out (it would end unread)."""
    from jupyter_mlops.run.spare import IDLE_ENV

    monkeypatch.setenv(IDLE_ENV, "1")
    slot: SpareSlot[str] = SpareSlot()
    slot.begin(tmp_path, "", busy=False)
    slot.started("spare")
    time.sleep(1)
    assert slot.take(tmp_path) == (None, "spare")
