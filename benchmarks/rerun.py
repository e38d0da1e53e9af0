"""Re-runs against the first run: nothing changed (all from the cache), and after editing
only the last stage. Targets (issue 14): at most 10% of the first run and 1.5 s; at most the
last stage's own time plus 1 s.

    python benchmarks/rerun.py [--source DIR]

`--source DIR` runs the commands with another checkout first on the Python path (say, a
`git worktree` of an older commit), to measure "before" beside "after".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command


def last_stage_seconds(work: Path, pipeline: str) -> tuple[str, float]:
    """The newest run's last stage and its own time. Read as plain JSON: the run may come
    from an older checkout's runner, whose run.json this checkout's classes may not read."""
    newest = sorted((work / "mlops-runs" / pipeline).iterdir())[-1]
    last = json.loads((newest / "run.json").read_text(encoding="utf-8"))["stages"][-1]
    return last["name"], last.get("duration") or 0.0


def main(arguments: Sequence[str] = ()) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a checkout to run first on PYTHONPATH")
    options = parser.parse_args(list(arguments))
    source = options.source.resolve() if options.source else None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, pipeline in (
            ("wine_classifier", "wine-classifier"),
            ("kale_digits_fanout", "kale-digits-fanout"),
        ):
            notebook = work / f"{name}.ipynb"
            shutil.copy(ROOT / "example_notebooks" / notebook.name, notebook)
            run = [str(BIN / "jupyter-mlops"), "run", str(notebook)]
            first = timed_command(run, work, source)
            unchanged = timed_command(run, work, source)
            nb = nbformat.read(notebook, as_version=4)
            last_cell = max(
                i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
            )
            nb.cells[last_cell].source += "\n# edited"
            nbformat.write(nb, notebook)
            edited = timed_command(run, work, source)
            stage, own = last_stage_seconds(work, pipeline)
            rows.append(
                [
                    notebook.name,
                    f"{first:.1f}",
                    f"{unchanged:.1f}",
                    f"{unchanged / first:.0%}",
                    f"{edited:.1f}",
                    f"`{stage}`: {own:.1f}",
                    f"{edited - own:+.1f}",
                ]
            )
    return table(
        [
            "notebook",
            "first run (s)",
            "nothing changed (s)",
            "of first run",
            "last stage edited (s)",
            "that stage's own time (s)",
            "re-run minus own time (s)",
        ],
        rows,
    )


if __name__ == "__main__":
    print(main(sys.argv[1:]))
