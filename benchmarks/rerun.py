"""Re-runs against the first run: nothing changed (all from the cache), and after editing
only the last stage. Targets: under 15% of the first run; at most the last stage's own
time plus 2 s."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command

from jupyter_mlops.run.runstate import read_run


def last_stage_seconds(work: Path, pipeline: str) -> tuple[str, float]:
    state = read_run(sorted((work / "mlops-runs" / pipeline).iterdir())[-1])
    last = state.stages[-1]
    return last.name, last.duration or 0.0


def main() -> str:
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
            first = timed_command(run, work)
            unchanged = timed_command(run, work)
            nb = nbformat.read(notebook, as_version=4)
            last_cell = max(
                i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()
            )
            nb.cells[last_cell].source += "\n# edited"
            nbformat.write(nb, notebook)
            edited = timed_command(run, work)
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
    print(main())
