"""Shared helpers for the benchmark scripts: timing, commands, and printing tables."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """The fastest of `repeat` timings, in seconds: the least disturbed by other work."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def command_env(source: Path | None = None) -> dict[str, str]:
    """The environment a benchmarked command runs in: this venv's tools first, no tracking URI
    from the caller's shell, and `source` (another checkout, say a `git worktree` of an older
    commit) first on the Python path so "before" can be measured beside "after"."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def run_command(
    command: Sequence[str], cwd: Path, source: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of a command, as a user would see it, and how it ended (for callers that
    carry on past a failure)."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=command_env(source), capture_output=True, text=True
    )
    return time.perf_counter() - start, result


def timed_command(command: Sequence[str], cwd: Path, source: Path | None = None) -> float:
    """Wall time of a command; fails loudly if the command fails."""
    elapsed, result = run_command(command, cwd, source)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table (it reads well in a terminal too)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    disk = shutil.disk_usage("/").total / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {disk:.0f} GB disk, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
