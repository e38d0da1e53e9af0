"""The fidelity suite's real notebooks, every section a stage, against plain papermill running
the same notebook top to bottom. Targets (issue 14): median ratio at most 1.3x, at most
0.25 s added per stage.

    python benchmarks/notebook_suite.py [--only NAME,...] [--limit N] [--source DIR]

The notebooks are those of kind `sections` in tests/fidelity/SOURCES.yaml (public notebooks
nobody on this team wrote), split the way tests/test_fidelity_suite.py splits them but with
no cap on the number of stages. Each is timed as a user would run it, from the command line,
in one working folder: `papermill` on the notebook as published, then `jupyter-mlops run
--no-cache` on the staged copy. A notebook that fails under plain papermill is skipped and
listed (it can't be a baseline); one that fails only under jupyter-mlops is listed too.

When the run's run.json records per-stage `timings` (`jupyter-mlops run --timings`' figures:
kernel start, setup, waiting, loading inputs, the cells, saving outputs, shutdown, logging),
their sums over the
stages are columns of the table; an older runner without them gives the table without them.

`--source DIR` runs both commands with another checkout first on the Python path (say, a
`git worktree` of an older commit), to measure "before" beside "after".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml
from common import BIN, ROOT, median, percentile, run_command, table, timed_command
from notebooks import fan_out_notebook

sys.path.insert(0, str(ROOT / "tests"))
from sections import stage_by_sections  # tests/ is not a package: on the path above

from jupyter_mlops.run.timings import PARTS

FIDELITY = ROOT / "tests" / "fidelity"
NOTEBOOKS = FIDELITY / "notebooks"
# run.json's per-stage `timings` keys, in the order a stage spends them.
TIMINGS = PARTS


@dataclass
class Measured:
    """One notebook's figures: its stages, both wall times, and the summed breakdown (empty
    when the runner records none)."""

    name: str
    stages: int
    papermill: float
    ours: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.papermill

    @property
    def added_per_stage(self) -> float:
        return (self.ours - self.papermill) / self.stages


def suite(only: set[str], limit: int | None) -> list[str]:
    """The names of the notebooks to measure, in SOURCES.yaml's order."""
    sources = yaml.safe_load((FIDELITY / "SOURCES.yaml").read_text(encoding="utf-8"))
    names = [entry["name"] for entry in sources if entry["kind"] == "sections"]
    unknown = only - set(names)
    if unknown:
        raise SystemExit(f"not notebooks of kind `sections` in SOURCES.yaml: {sorted(unknown)}")
    if only:
        names = [name for name in names if name in only]
    return names[:limit] if limit is not None else names


def copy_data(work: Path) -> None:
    """The files the fidelity test finds beside each notebook (it runs them in place), so
    the notebooks' relative paths to their data work here too."""
    for path in NOTEBOOKS.iterdir():
        if path.suffix != ".ipynb" and not path.name.startswith("."):
            copy = shutil.copytree if path.is_dir() else shutil.copy
            copy(path, work / path.name)


def new_run_files(work: Path, before: set[Path]) -> list[Path]:
    """The run.json files a `jupyter-mlops run` created: <pipeline>/<run id>/run.json."""
    return sorted(set((work / "mlops-runs").glob("*/*/run.json")) - before)


def summed_timings(run_json: Path) -> dict[str, float]:
    """Each `timings` key summed over the run's stages; empty if the runner records none.
    Read as plain JSON: the run may come from an older checkout's runner."""
    stages = json.loads(run_json.read_text(encoding="utf-8")).get("stages", [])
    found = [stage["timings"] for stage in stages if stage.get("timings")]
    if not found:
        return {}
    return {key: sum(timings.get(key) or 0.0 for timings in found) for key in TIMINGS}


def warm_up(work: Path, source: Path | None) -> None:
    """One small run of each command first: the page cache, and MLflow's database created
    once rather than inside the first notebook's figure."""
    notebook = work / "warm_up.ipynb"
    nbformat.write(fan_out_notebook(branches=1, work_seconds=0.0), notebook)
    timed_command([str(BIN / "papermill"), str(notebook), str(work / "out.ipynb")], work, source)
    timed_command([str(BIN / "jupyter-mlops"), "run", str(notebook), "--no-cache"], work, source)


def measure(
    name: str, work: Path, source: Path | None, failures: dict[str, list[str]]
) -> Measured | None:
    """Time one notebook both ways; None (and a line in `failures`) if either fails."""
    original = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    plain = work / f"plain_{name}.ipynb"
    nbformat.write(original, plain)
    staged_nb = stage_by_sections(original, most=None)
    stages = sum(
        any(tag.startswith("stage:") for tag in cell.metadata.get("tags", []))
        for cell in staged_nb.cells
    )
    staged = work / f"{name}.ipynb"
    nbformat.write(staged_nb, staged)
    command = [str(BIN / "papermill"), str(plain), str(work / "out.ipynb")]
    papermill, result = run_command(command, work, source)
    if result.returncode != 0:
        failures["papermill"].append(f"{name}: {last_line(result.stderr)}")
        return None
    runs_before = set((work / "mlops-runs").glob("*/*/run.json"))
    command = [str(BIN / "jupyter-mlops"), "run", str(staged), "--no-cache"]
    ours, result = run_command(command, work, source)
    if result.returncode != 0:
        failures["jupyter-mlops"].append(f"{name}: {last_line(result.stderr + result.stdout)}")
        return None
    runs = new_run_files(work, runs_before)
    timings = summed_timings(runs[-1]) if runs else {}
    return Measured(name, stages, papermill, ours, timings)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def report(measured: list[Measured], failures: dict[str, list[str]]) -> str:
    """The table, one row a notebook, then the summary the issue's targets are read from."""
    breakdown = [key for key in TIMINGS if any(key in m.timings for m in measured)]
    headers = ["notebook", "stages", "papermill (s)", "jupyter-mlops (s)", "ratio"]
    headers += ["added per stage (s)", *(f"{key} (s)" for key in breakdown)]
    rows = [
        [
            m.name,
            m.stages,
            f"{m.papermill:.1f}",
            f"{m.ours:.1f}",
            f"{m.ratio:.2f}x",
            f"{m.added_per_stage:.2f}",
            *(f"{m.timings[key]:.1f}" if key in m.timings else "" for key in breakdown),
        ]
        for m in measured
    ]
    lines = [table(headers, rows), ""]
    if measured:
        ratios = [m.ratio for m in measured]
        added = [m.added_per_stage for m in measured]
        lines.append(
            f"{len(measured)} notebooks, {sum(m.stages for m in measured)} stages: ratio median "
            f"**{median(ratios):.2f}x** (quartiles {percentile(ratios, 0.25):.2f}x and "
            f"{percentile(ratios, 0.75):.2f}x, worst {max(ratios):.2f}x); added per stage: "
            f"median **{median(added):.2f} s**."
        )
    for tool, names in failures.items():
        if names:
            lines.append(f"\nFailed under {tool} (not in the table):\n")
            lines += [f"- {line}" for line in names]
    return "\n".join(lines)


def main(arguments: Sequence[str] = ()) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated notebook names")
    parser.add_argument("--limit", type=int, help="only the first N notebooks")
    parser.add_argument("--source", type=Path, help="a checkout to run first on PYTHONPATH")
    options = parser.parse_args(list(arguments))
    only = {name.strip() for name in options.only.split(",") if name.strip()}
    source = options.source.resolve() if options.source else None
    measured: list[Measured] = []
    failures: dict[str, list[str]] = {"papermill": [], "jupyter-mlops": []}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        copy_data(work)
        warm_up(work, source)
        for name in suite(only, options.limit):
            result = measure(name, work, source, failures)
            if result is not None:
                measured.append(result)
                print(
                    f"{name}: {result.stages} stages, {result.papermill:.1f} s vs "
                    f"{result.ours:.1f} s ({result.ratio:.2f}x)",
                    file=sys.stderr,
                    flush=True,
                )
    return report(measured, failures)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
