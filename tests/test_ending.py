"""Ending a process without its modules' teardown keeps everything a program can notice:
its exit code, its atexit handlers, buffered output, and Python's wait for its threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import cli


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_exit_code_atexit_handlers_and_buffered_output_are_kept(tmp_path: Path) -> None:
    result = run_python(
        """
        import atexit, sys
        from jupyter_mlops.ending import exit_without_teardown
        atexit.register(lambda: open("handler-ran", "w").write("yes"))
        sys.stdout.write("x" * 100_000)  # more than a pipe's buffer: flushed, not lost
        exit_without_teardown(3)
        print("not reached")
        """,
        tmp_path,
    )
    assert result.returncode == 3
    assert result.stdout == "x" * 100_000
    assert (tmp_path / "handler-ran").read_text() == "yes"


def test_a_running_thread_is_waited_for_as_python_would(tmp_path: Path) -> None:
    result = run_python(
        """
        import threading, time
        from jupyter_mlops.ending import exit_without_teardown
        def work():
            time.sleep(0.5)
            open("thread-finished", "w").close()
        threading.Thread(target=work).start()
        exit_without_teardown(0)
        print("the usual way")
        """,
        tmp_path,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "the usual way"
    assert (tmp_path / "thread-finished").exists()


def test_the_command_keeps_its_exit_codes(tmp_path: Path) -> None:
    assert cli("--version", cwd=tmp_path).returncode == 0
    usage = cli("run", cwd=tmp_path)
    assert usage.returncode == 2 and "Usage: jupyter-mlops run" in usage.stderr
    missing = cli("check", "nosuch.ipynb", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
