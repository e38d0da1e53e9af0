"""Generated notebooks for the benchmarks: realistic shapes, any size."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def sized_notebook(cells: int, cells_per_stage: int = 10) -> nbformat.NotebookNode:
    """`cells` code cells in stages of `cells_per_stage`, each reading earlier values."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells.append(new_code_cell("import math\nimport statistics", metadata={"tags": ["setup"]}))
    nb.cells.append(
        new_code_cell(
            "scale: float = 1.5  # a factor\nn: int = 10", metadata={"tags": ["parameters"]}
        )
    )
    for index in range(cells - 2):
        tags = [f"stage:s{index // cells_per_stage:04d}"] if index % cells_per_stage == 0 else []
        previous = f"v{index - 1}" if index else "n"
        source = (
            f"# step {index}\n"
            f"v{index} = [{previous} if isinstance({previous}, int) else len({previous})] * n\n"
            f"w{index} = statistics.mean(v{index}) * scale + math.sqrt(abs(len(v{index})))\n"
            f"if w{index} > 100:\n    v{index}.append(int(w{index}))\n"
        )
        nb.cells.append(new_code_cell(source, metadata={"tags": tags}))
        if index % 25 == 0:
            nb.cells.append(new_markdown_cell(f"## Part {index // 25}"))
    return nb


def fan_out_notebook(branches: int = 5, work_seconds: float = 1.0) -> nbformat.NotebookNode:
    """8 stages: load, features, `branches` independent trainings, compare (fan-in)."""
    busy = f"busy({work_seconds})\n"  # stands for a stage's own work
    helper = (
        "def busy(seconds):\n"
        "    start = time.time()\n"
        "    while time.time() - start < seconds:\n"
        "        pass"
    )
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells.append(
        new_code_cell(f"import time\nimport numpy as np\n\n{helper}", metadata={"tags": ["setup"]})
    )
    nb.cells.append(
        new_code_cell(
            f"{busy}data = np.random.default_rng(0).random((20000, 8))",
            metadata={"tags": ["stage:load"]},
        )
    )
    nb.cells.append(
        new_code_cell(
            f"{busy}features = (data - data.mean(0)) / data.std(0)",
            metadata={"tags": ["stage:features"]},
        )
    )
    for branch in range(branches):
        nb.cells.append(
            new_code_cell(
                f"{busy}score_{branch} = float(features[:, {branch}].sum())",
                metadata={"tags": [f"stage:train_{branch}"]},
            )
        )
    total = " + ".join(f"score_{b}" for b in range(branches))
    nb.cells.append(
        new_code_cell(
            f"{busy}best = max({total}, 0)", metadata={"tags": ["stage:compare", "metrics"]}
        )
    )
    return nb


def untagged(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The same notebook with only papermill's `parameters` tag: what plain papermill runs."""
    copy = nbformat.from_dict(nb)
    for cell in copy.cells:
        tags = cell.metadata.get("tags", [])
        keep = ["parameters"] if {"parameters", "pipeline-parameters"} & set(tags) else []
        cell.metadata["tags"] = keep
    return copy
