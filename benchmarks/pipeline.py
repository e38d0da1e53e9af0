"""Pipeline wall time against plain papermill on the same notebook untagged, for each example
notebook, a generated 8-stage notebook with a fan-out of 5, and a generated 30-stage chain
with real notebooks' setup imports. Targets (issue 14): at most 1.3x for the examples, at
most 2x for the 30-stage notebook.

    python benchmarks/pipeline.py [--source DIR]

`--source DIR` runs the commands with another checkout first on the Python path (say, a
`git worktree` of an older commit), to measure "before" beside "after".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command
from notebooks import fan_out_notebook, many_stages_notebook, untagged

EXAMPLES = ROOT / "example_notebooks"


def cases(work: Path) -> list[tuple[str, Path]]:
    found = []
    for name in ("wine_classifier", "kale_digits_fanout"):
        shutil.copy(EXAMPLES / f"{name}.ipynb", work / f"{name}.ipynb")
        found.append((f"{name}.ipynb", work / f"{name}.ipynb"))
    fan_out = work / "fan_out.ipynb"
    nbformat.write(fan_out_notebook(branches=5, work_seconds=1.0), fan_out)
    found.append(("generated 8 stages, fan-out of 5 (1 s of work each)", fan_out))
    chain = work / "thirty_stages.ipynb"
    nbformat.write(many_stages_notebook(stages=30, work_seconds=0.2), chain)
    found.append(
        ("generated 30 stages in a chain, numpy/pandas/scikit-learn setup (0.2 s each)", chain)
    )
    return found


def measure(notebook: Path, work: Path, source: Path | None) -> tuple[float, float]:
    plain = notebook.with_name(notebook.stem + "_untagged.ipynb")
    nbformat.write(untagged(nbformat.read(notebook, as_version=4)), plain)
    papermill = timed_command(
        [str(BIN / "papermill"), str(plain), str(work / "out.ipynb")], work, source
    )
    ours = timed_command(
        [str(BIN / "jupyter-mlops"), "run", str(notebook), "--no-cache"], work, source
    )
    return papermill, ours


def main(arguments: Sequence[str] = ()) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a checkout to run first on PYTHONPATH")
    options = parser.parse_args(list(arguments))
    source = options.source.resolve() if options.source else None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for label, notebook in cases(work):
            measure(notebook, work, source)  # warm the page cache and MLflow's database once
            papermill, ours = measure(notebook, work, source)
            rows.append([label, f"{papermill:.1f}", f"{ours:.1f}", f"{ours / papermill:.2f}x"])
    return table(["notebook", "plain papermill (s)", "jupyter-mlops run (s)", "ratio"], rows)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
