"""Re-runs against the first run: nothing changed (all from the cache), and after editing
only the last stage. Targets (issue 14): at most 10% of the first run and 1.5 s; at most the
last stage's own time plus 1 s.

    python benchmarks/rerun.py [--source DIR]

Each notebook is measured twice: as `jupyter-mlops run` command lines, and as runs started
from JupyterLab (the REST API of a real `jupyter lab`, timed from the request to the run's
end, as the sidebar sees it). A user reads her results before she runs again: the runs from
JupyterLab are 3 s apart, time the server uses to start the next run's runner ahead
(`run/spare.py`).

`--source DIR` runs the commands with another checkout first on the Python path (say, a
`git worktree` of an older commit), to measure "before" beside "after".
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command

sys.path.insert(0, str(ROOT / "tests"))
from browser import jupyter_lab  # tests/ is not a package: on the path above

NOTEBOOKS = (("wine_classifier", "wine-classifier"), ("kale_digits_fanout", "kale-digits-fanout"))
BETWEEN_RUNS_SECONDS = 3.0  # in JupyterLab: she reads the results, then runs again


def last_stage_seconds(root: Path, pipeline: str) -> tuple[str, float]:
    """The newest run's last stage and its own time. Read as plain JSON: the run may come
    from an older checkout's runner, whose run.json this checkout's classes may not read."""
    newest = sorted((root / "mlops-runs" / pipeline).iterdir())[-1]
    last = json.loads((newest / "run.json").read_text(encoding="utf-8"))["stages"][-1]
    return last["name"], last.get("duration") or 0.0


def edit_last_cell(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip())
    nb.cells[last].source += "\n# edited"
    nbformat.write(nb, notebook)


def measure(root: Path, name: str, pipeline: str, run: Callable[[Path], float]) -> list[str]:
    """A row: the first run, one with nothing changed, one after editing the last stage."""
    notebook = root / f"{name}.ipynb"
    shutil.copy(ROOT / "example_notebooks" / notebook.name, notebook)
    first = run(notebook)
    unchanged = run(notebook)
    edit_last_cell(notebook)
    edited = run(notebook)
    stage, own = last_stage_seconds(root, pipeline)
    return [
        f"{first:.1f}",
        f"{unchanged:.1f}",
        f"{unchanged / first:.0%}",
        f"{edited:.1f}",
        f"`{stage}`: {own:.1f}",
        f"{edited - own:+.1f}",
    ]


def main(arguments: Sequence[str] = ()) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a checkout to run first on PYTHONPATH")
    options = parser.parse_args(list(arguments))
    source = options.source.resolve() if options.source else None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, pipeline in NOTEBOOKS:

            def command(notebook: Path) -> float:
                return timed_command(
                    [str(BIN / "jupyter-mlops"), "run", str(notebook)], work, source
                )

            rows.append([f"{name}.ipynb", "command line", *measure(work, name, pipeline, command)])
    env = {"PYTHONPATH": str(source)} if source else None
    with jupyter_lab(env=env) as lab:
        for name, pipeline in NOTEBOOKS:

            def from_jupyterlab(notebook: Path) -> float:
                time.sleep(BETWEEN_RUNS_SECONDS)
                started = time.perf_counter()
                run = lab.api("POST", "jupyter-mlops/runs", {"path": notebook.name})
                while True:
                    state = lab.api("GET", f"jupyter-mlops/runs/{run['id']}")
                    if state["status"] not in ("queued", "preparing", "running"):
                        break
                    time.sleep(0.02)
                if state["status"] != "succeeded":
                    raise SystemExit(f"{notebook.name} from JupyterLab: {state['status']}")
                return time.perf_counter() - started

            root = Path(lab.root)
            rows.append(
                [f"{name}.ipynb", "JupyterLab", *measure(root, name, pipeline, from_jupyterlab)]
            )
    return table(
        [
            "notebook",
            "started from",
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
