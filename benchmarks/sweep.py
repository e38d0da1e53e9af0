"""A 12-trial sweep against the same 12 parameter sets run one by one, and against plain
papermill running the notebook 12 times (the baseline, measured in the same run).

The wine example swept over `n_estimators` (3 values) and `max_depth` (4): its `load` and
`split` stages read neither, so the sweep runs them once and every later trial is served
their outputs, where 12 separate `jupyter-mlops run --no-cache` commands (what a loop in a
shell would do) run every stage 12 times.

    python benchmarks/sweep.py [--source DIR]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command
from notebooks import untagged

NOTEBOOK = ROOT / "example_notebooks" / "wine_classifier.ipynb"
GRID = {"n_estimators": ["50", "100", "200"], "max_depth": ["2", "4", "8", "None"]}


def trials() -> list[list[str]]:
    """Each parameter set as `-p NAME VALUE` words."""
    sets = itertools.product(*GRID.values())
    return [
        [word for name, value in zip(GRID, values, strict=True) for word in ("-p", name, value)]
        for values in sets
    ]


def main(arguments: Sequence[str] = ()) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a checkout to run first on PYTHONPATH")
    options = parser.parse_args(list(arguments))
    source = options.source.resolve() if options.source else None
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        notebook = work / NOTEBOOK.name
        shutil.copy(NOTEBOOK, notebook)
        plain = work / "plain.ipynb"
        nbformat.write(untagged(nbformat.read(notebook, as_version=4)), plain)
        ours = [str(BIN / "jupyter-mlops")]
        # MLflow's database exists and the page cache is warm before anything is timed.
        timed_command([*ours, "run", notebook.name, "--no-cache"], work, source)
        papermill = sum(
            timed_command([str(BIN / "papermill"), plain.name, "out.ipynb", *words], work, source)
            for words in trials()
        )
        runs = sum(
            timed_command([*ours, "run", notebook.name, "--no-cache", *words], work, source)
            for words in trials()
        )
        shutil.rmtree(work / "mlops-runs")  # the sweep shares nothing with the runs above
        grid = [word for name, values in GRID.items() for word in ("-p", name, ",".join(values))]
        sweep = timed_command(
            [*ours, "sweep", notebook.name, *grid, "--metric", "f1_macro"], work, source
        )
    rows = [
        ["12 x plain papermill (the baseline)", f"{papermill:.1f}", "1.00x"],
        ["12 x `jupyter-mlops run --no-cache`", f"{runs:.1f}", f"{runs / papermill:.2f}x"],
        ["`jupyter-mlops sweep`, 12 trials", f"{sweep:.1f}", f"{sweep / papermill:.2f}x"],
    ]
    note = (
        f"\n\nThe sweep took {sweep / runs:.0%} of the time of the 12 separate runs "
        f"({runs - sweep:.1f} s less)."
    )
    return (
        table(["wine_classifier.ipynb, 12 parameter sets", "wall time (s)", "ratio"], rows) + note
    )


if __name__ == "__main__":
    print(main(sys.argv[1:]))
