"""Analysis + conversion time against notebook size, with nbconvert's script export as the
reference (in process, and both command lines). Target: 1,000 cells in under 0.5 s, linear."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from common import BIN, best_of, table, timed_command
from nbconvert import PythonExporter
from notebooks import sized_notebook

from jupyter_mlops import dataflow
from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.bundle import write_bundle
from jupyter_mlops.notebooks import SourceNotebook

SIZES = (50, 200, 1000, 2000)


def convert_in_process(nb: nbformat.NotebookNode, out: Path) -> None:
    dataflow.analyze_code.cache_clear()  # a first conversion: nothing cached
    analysis = analyze_notebook(nb, "generated.ipynb")
    write_bundle(SourceNotebook(nb, None, "0" * 64), analysis, out)


def main() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for size in SIZES:
            nb = sized_notebook(size)
            path = work / f"n{size}.ipynb"
            nbformat.write(nb, path)
            ours = best_of(3, lambda nb=nb: convert_in_process(nb, work / "bundle"))
            reference = best_of(3, lambda nb=nb: PythonExporter().from_notebook_node(nb))
            cli = timed_command(
                [str(BIN / "jupyter-mlops"), "convert", str(path), "-o", str(work / "cli-bundle")],
                work,
            )
            nbconvert = timed_command(
                [
                    str(BIN / "jupyter"),
                    "nbconvert",
                    "--to",
                    "script",
                    str(path),
                    "--output-dir",
                    str(work / "scripts"),
                ],
                work,
            )
            rows.append(
                [
                    size,
                    f"{ours:.3f}",
                    f"{ours / size * 1000:.2f}",
                    f"{reference:.3f}",
                    f"{ours / reference:.2f}x",
                    f"{cli:.2f}",
                    f"{nbconvert:.2f}",
                    f"{cli / nbconvert:.2f}x",
                ]
            )
    return table(
        [
            "cells",
            "analysis + conversion (s)",
            "ms per cell",
            "nbconvert --to script (s)",
            "ratio",
            "`jupyter-mlops convert` CLI (s)",
            "`jupyter nbconvert` CLI (s)",
            "CLI ratio",
        ],
        rows,
    )


if __name__ == "__main__":
    print(main())
