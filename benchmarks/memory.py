"""Peak memory (RSS) of the runner process itself while two stages hand over a 1 GB array.
The values never pass through the runner: kernels write and map them directly.
Target: under 300 MB."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
from common import BIN, table
from nbformat.v4 import new_code_cell, new_notebook


def handover_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        }
    )
    nb.cells = [
        new_code_cell("import numpy as np", metadata={"tags": ["setup"]}),
        new_code_cell(
            "big = np.ones(2**27)  # 1 GiB of float64", metadata={"tags": ["stage:make"]}
        ),
        new_code_cell("total = float(big.sum())", metadata={"tags": ["stage:use", "metrics"]}),
    ]
    return nb


def main() -> str:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        nbformat.write(handover_notebook(), work / "handover.ipynb")
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        process = subprocess.Popen(
            [str(BIN / "jupyter-mlops"), "run", "handover.ipynb", "--no-cache"],
            cwd=work,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        runner = psutil.Process(process.pid)
        runner_peak = kernels_peak = 0
        while process.poll() is None:
            try:
                runner_peak = max(runner_peak, runner.memory_info().rss)
                kernels = runner.children(recursive=True)
                kernels_peak = max(kernels_peak, *(k.memory_info().rss for k in kernels), 0)
            except psutil.Error:
                pass
            time.sleep(0.05)
        if process.returncode != 0:
            raise SystemExit("the handover pipeline failed")
    return table(
        ["process", "peak RSS (MB)"],
        [
            ["runner (`jupyter-mlops run`)", f"{runner_peak / 2**20:.0f}"],
            ["largest stage kernel (for scale)", f"{kernels_peak / 2**20:.0f}"],
        ],
    )


if __name__ == "__main__":
    print(main())
