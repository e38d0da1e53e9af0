"""Pipeline wall time against plain papermill on the same notebook untagged, for each example
notebook and a generated 8-stage notebook with a fan-out of 5. Target: at most 1.3x."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
from common import BIN, ROOT, table, timed_command
from notebooks import fan_out_notebook, untagged

EXAMPLES = ROOT / "example_notebooks"


def cases(work: Path) -> list[tuple[str, Path]]:
    found = []
    for name in ("wine_classifier", "kale_digits_fanout"):
        shutil.copy(EXAMPLES / f"{name}.ipynb", work / f"{name}.ipynb")
        found.append((f"{name}.ipynb", work / f"{name}.ipynb"))
    fan_out = work / "fan_out.ipynb"
    nbformat.write(fan_out_notebook(branches=5, work_seconds=1.0), fan_out)
    found.append(("generated 8 stages, fan-out of 5 (1 s of work each)", fan_out))
    return found


def measure(notebook: Path, work: Path) -> tuple[float, float]:
    plain = notebook.with_name(notebook.stem + "_untagged.ipynb")
    nbformat.write(untagged(nbformat.read(notebook, as_version=4)), plain)
    papermill = timed_command([str(BIN / "papermill"), str(plain), str(work / "out.ipynb")], work)
    ours = timed_command([str(BIN / "jupyter-mlops"), "run", str(notebook), "--no-cache"], work)
    return papermill, ours


def main() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for label, notebook in cases(work):
            measure(notebook, work)  # warm the page cache and MLflow's database once
            papermill, ours = measure(notebook, work)
            rows.append([label, f"{papermill:.1f}", f"{ours:.1f}", f"{ours / papermill:.2f}x"])
    return table(["notebook", "plain papermill (s)", "jupyter-mlops run (s)", "ratio"], rows)


if __name__ == "__main__":
    print(main())
