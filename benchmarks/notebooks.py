"""Generated notebooks for the benchmarks: realistic shapes, any size."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
# A stage's own work, as a fixed amount of CPU time (needs `import time` in the setup).
BUSY = (
    "def busy(seconds):\n"
    "    start = time.time()\n"
    "    while time.time() - start < seconds:\n"
    "        pass"
)


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
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells.append(
        new_code_cell(f"import time\nimport numpy as np\n\n{BUSY}", metadata={"tags": ["setup"]})
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


def many_stages_notebook(stages: int = 30, work_seconds: float = 0.2) -> nbformat.NotebookNode:
    """`stages` small stages in a chain, after a setup cell importing numpy, pandas and
    scikit-learn as real notebooks do: each stage scales the previous stage's frame and
    spends `work_seconds` more on its own work, so the figure is what a stage costs beyond
    its cells (a fresh kernel, the setup's imports again, handing a frame over)."""
    busy = f"busy({work_seconds})\n"
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells.append(
        new_code_cell(
            "import time\n\nimport numpy as np\nimport pandas as pd\n"
            "from sklearn.linear_model import LinearRegression\n"
            f"from sklearn.preprocessing import StandardScaler\n\n{BUSY}",
            metadata={"tags": ["setup"]},
        )
    )
    nb.cells.append(
        new_code_cell(
            f"{busy}rows = np.random.default_rng(0).random((2000, 4))\n"
            "frame_0 = pd.DataFrame(rows, columns=list('abcd'))",
            metadata={"tags": ["stage:s00_load"]},
        )
    )
    for index in range(1, stages - 1):
        nb.cells.append(new_markdown_cell(f"## Step {index}"))
        nb.cells.append(
            new_code_cell(
                f"{busy}previous = frame_{index - 1}\n"
                "scaled = StandardScaler().fit_transform(previous)\n"
                f"frame_{index} = pd.DataFrame(scaled + {index}, columns=previous.columns)",
                metadata={"tags": [f"stage:s{index:02d}_step"]},
            )
        )
    last = stages - 2
    nb.cells.append(
        new_code_cell(
            f"{busy}x, y = frame_{last}[['a', 'b', 'c']], frame_{last}['d']\n"
            "score = float(LinearRegression().fit(x, y).score(x, y))",
            metadata={"tags": [f"stage:s{stages - 1:02d}_fit"]},
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
