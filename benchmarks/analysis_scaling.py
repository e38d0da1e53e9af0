"""Analysis time and memory against the size of a notebook's code, in several shapes.

    python benchmarks/analysis_scaling.py [--sizes 5000,10000,20000,40000,200000]
                                          [--shapes stages,huge_cells,...] [--budget 120]

The Jupyter server analyses the notebook after every edit in the sidebar, so analysis must
grow linearly with the code: each shape is a way a notebook can be big (many small stages,
a few huge cells, wide data flow, long chains of functions, `skip` cells, a big parameters
cell, aliases, seeded random state). For each size it prints the seconds `analyze_notebook`
takes, its peak memory (tracemalloc, measured in a second run), and time(N) / time(N/2):
about 2 per doubling is linear, 4 is quadratic. A size is skipped when a quadratic guess
from the size before says it would take longer than the budget.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable

from common import table
from notebooks import KERNELSPEC, sized_notebook

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.dataflow import analyze_code

SIZES = (5_000, 10_000, 20_000, 40_000, 200_000)
LINES_PER_SIZED_CELL = 5  # what one cell of `sized_notebook` holds


def cell(source: str, *tags: str) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}


def notebook(cells: list[dict]) -> dict:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": KERNELSPEC},
        "cells": cells,
    }


def setup_and_parameters() -> list[dict]:
    return [
        cell("import math\nimport numpy as np\nimport pandas as pd", "setup"),
        cell("n: int = 10\nscale: float = 1.5", "parameters"),
    ]


def stages(lines: int) -> dict:
    """Many small cells, each its own stage, each reading the value of the one before."""
    return sized_notebook(lines // LINES_PER_SIZED_CELL, cells_per_stage=1)


def stages_of_ten(lines: int) -> dict:
    """Many small cells in stages of ten (the conversion benchmark's notebook)."""
    return sized_notebook(lines // LINES_PER_SIZED_CELL, cells_per_stage=10)


def huge_cells(lines: int) -> dict:
    """Four stages of one huge cell each: a long chain of assignments and a loop."""
    cells = setup_and_parameters()
    per_cell = lines // 4
    previous = "n"
    for stage in range(4):
        body = [f"x{stage}_0 = {previous} + 1"]
        for line in range(1, per_cell - 2):
            body.append(f"x{stage}_{line} = x{stage}_{line - 1} * scale + math.sqrt({line})")
        last = f"x{stage}_{per_cell - 3}"
        body.append(f"for i in range(3):\n    {last} += i")
        cells.append(cell("\n".join(body), f"stage:part{stage}"))
        previous = last
    return notebook(cells)


def flow(lines: int) -> dict:
    """Stages of ten lines, each reading values of stages 1, 2, 7 and 50 back: wide flow."""
    cells = setup_and_parameters()
    for stage in range(lines // 10):
        reads = [f"a{stage - back}_{k}" for back in (1, 2, 7, 50) if stage >= back for k in (0, 1)]
        total = " + ".join(reads) or "n"
        body = [f"total_{stage} = {total}"]
        body += [f"a{stage}_{k} = total_{stage} * {k} + scale" for k in range(5)]
        body += [f"frame_{stage} = pd.DataFrame({{'a': [a{stage}_0]}})"]
        body += [f"frame_{stage}['b'] = frame_{stage}['a'] * 2", f"a{stage}_0 += 1", "print(n)"]
        cells.append(cell("\n".join(body), f"stage:f{stage}"))
    return notebook(cells)


def functions(lines: int) -> dict:
    """Chains of functions calling each other: fifty-deep chains defined in one stage and
    used in the next, and one chain of a twentieth of the lines in one stage."""
    cells = setup_and_parameters()
    long_chain = lines // 20 // 2
    source = ["def g0(x):\n    return x + n"]
    source += [f"def g{i}(x):\n    return g{i - 1}(x) * scale" for i in range(1, long_chain)]
    cells.append(cell("\n".join(source), "stage:long_chain"))
    cells.append(cell(f"top = g{long_chain - 1}(1)", "stage:use_long_chain"))
    chains = (lines - 2 * long_chain) // (2 * 50 + 2)
    for chain in range(chains):
        defs = [f"def f{chain}_0(x):\n    return x + n"]
        defs += [
            f"def f{chain}_{i}(x):\n    return f{chain}_{i - 1}(x) + {i}" for i in range(1, 50)
        ]
        cells.append(cell("\n".join(defs), f"stage:define{chain}"))
        cells.append(cell(f"r{chain} = f{chain}_49(top)\nr{chain} += 1", f"stage:use{chain}"))
    return notebook(cells)


def skips(lines: int) -> dict:
    """A stage cell, then three `skip` cells (one setting a name the stage then reads: an
    error per stage), then an untagged cell that joins the stage."""
    cells = setup_and_parameters()
    for stage in range(lines // 10):
        previous = f"s{stage - 1}" if stage else "n"
        cells.append(cell(f"s{stage} = {previous} + 1\nt{stage} = s{stage} * 2", f"stage:k{stage}"))
        cells.append(cell(f"tmp{stage} = s{stage}\nprint(tmp{stage})", "skip"))
        cells.append(cell(f"s{stage}.bit_length()\ndisplay(t{stage})", "skip"))
        cells.append(cell(f"plot{stage} = [t{stage}]\nplot{stage}.append(1)", "skip"))
        cells.append(cell(f"u{stage} = t{stage} + tmp{stage}\nv{stage} = u{stage} * 2"))
    return notebook(cells)


def parameters(lines: int) -> dict:
    """A parameters cell of half the lines, read by stages of ten lines."""
    count = lines // 2
    params = [f"p{i}: float = {i}.5  # parameter number {i}" for i in range(count)]
    cells = [cell("import math", "setup"), cell("\n".join(params), "parameters")]
    for stage in range(lines // 2 // 10):
        reads = [f"p{(stage * 37 + k * 101) % count}" for k in range(9)]
        body = [f"q{stage}_{k} = {name} * 2" for k, name in enumerate(reads)]
        body.append(f"q{stage} = q{stage}_0 + {'p' + str(stage % count)}")
        cells.append(cell("\n".join(body), f"stage:p{stage}"))
    return notebook(cells)


def aliases(lines: int) -> dict:
    """Aliases (`a = b`, `c = [a, d]`, `for x in [a, b]`) of values of the stage before,
    mutated through one another, and one long chain of aliases in one cell, each changed
    as it is made (so every change reaches all the names before it)."""
    cells = setup_and_parameters()
    chain = lines // 20
    body = ["base = []"]
    for i in range(chain):
        body += [f"alias{i} = alias{i - 1}" if i else "alias0 = base", f"alias{i}.append({i})"]
    cells.append(cell("\n".join(body), "stage:chain"))
    for stage in range((lines - 2 * chain) // 8):
        previous = f"f{stage - 1}" if stage else "base"
        body = [
            f"d{stage} = {previous}",
            f"e{stage} = [d{stage}, [1]]",
            f"for x in [d{stage}, e{stage}]:",
            "    x.append(n)",
            f"d{stage}.append(len(e{stage}))",
            f"f{stage} = list(d{stage})",
            f"f{stage}.append(scale)",
            f"e{stage}[0].append(f{stage})",
        ]
        cells.append(cell("\n".join(body), f"stage:a{stage}"))
    return notebook(cells)


def seeded(lines: int) -> dict:
    """A seeded generator, a generator object, an estimator holding it, a few configuring
    statements that every later stage replays, and a last stage of a tenth of the lines
    that only configures."""
    cells = setup_and_parameters()
    cells.append(
        cell(
            "np.random.seed(0)\nrng = np.random.default_rng(1)\n"
            "pd.set_option('display.max_rows', 20)\nimport warnings\n"
            "warnings.filterwarnings('ignore')",
            "stage:seed",
        )
    )
    for stage in range(lines * 9 // 10 // 6):
        body = [
            f"draw{stage} = np.random.rand(n)",
            f"pick{stage} = rng.integers(0, 10)",
            f"holder{stage} = np.random.RandomState(pick{stage})",
            f"value{stage} = draw{stage}.sum() * scale",
            f"value{stage} += holder{stage}.rand()",
            f"print(value{stage})",
        ]
        cells.append(cell("\n".join(body), f"stage:r{stage}"))
    options = [f"pd.set_option('display.max_rows', {i})" for i in range(lines // 10)]
    cells.append(cell("\n".join(options), "stage:options"))
    return notebook(cells)


SHAPES: dict[str, Callable[[int], dict]] = {
    "stages": stages,
    "stages_of_ten": stages_of_ten,
    "huge_cells": huge_cells,
    "flow": flow,
    "functions": functions,
    "skips": skips,
    "parameters": parameters,
    "aliases": aliases,
    "seeded": seeded,
}


def code_size(nb: dict) -> tuple[int, float]:
    """Lines and megabytes of code in the notebook."""
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return sum(len(s.splitlines()) for s in sources), sum(map(len, sources)) / 2**20


def analyze_cold(nb: dict) -> tuple[float, float]:
    """CPU and wall seconds of one analysis, the per-cell cache emptied first, and of the
    garbage collection it defers (it pauses the collector; the pass that follows scans
    what it made, and falling inside or outside the timing at random made the figures
    jump)."""
    analyze_code.cache_clear()
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    analyze_notebook(nb, "bench.ipynb")
    gc.collect()
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(nb: dict, memory: bool) -> tuple[float, float, float | None]:
    """CPU and wall seconds of an analysis (the best of up to three, as many as fit in
    about 6 s: the least disturbed by other work), and its peak memory in MB in one more run
    under tracemalloc, which slows it down and so is not timed. CPU time is what the ratios
    are taken of: on a shared machine it moves much less than wall time."""
    runs = [analyze_cold(nb)]
    while len(runs) < 3 and sum(cpu for cpu, _ in runs) + runs[0][0] <= 6:
        runs.append(analyze_cold(nb))
    cpu, wall = min(runs)
    if not memory:
        return cpu, wall, None
    analyze_code.cache_clear()
    gc.collect()
    tracemalloc.start()
    analyze_notebook(nb, "bench.ipynb")
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    analyze_code.cache_clear()
    return cpu, wall, peak


HEADERS = [
    "shape",
    "lines",
    "MB of code",
    "CPU s",
    "wall s",
    "CPU s per 10k lines",
    "peak MB",
    "CPU(N) / CPU(N/2)",
]


def run(sizes: list[int], shapes: list[str], budget: float, memory: bool) -> str:
    rows = []
    for shape in shapes:
        previous: tuple[int, float] | None = None
        for size in sizes:
            if previous and previous[1] * (size / previous[0]) ** 2 > budget:
                skipped = f"skipped: a quadratic guess is over {budget:.0f} s"
                rows.append([shape, f"{size:,}", "-", "-", "-", "-", "-", skipped])
                print(rows[-1], flush=True)
                continue
            nb = SHAPES[shape](size)
            cpu, wall, peak = measure(nb, memory)
            ratio = ""
            if previous and previous[0] * 2 == size:
                ratio = f"{cpu / previous[1]:.2f}"
            elif previous:  # linear is the factor itself
                ratio = f"{cpu / previous[1]:.2f} (x{size / previous[0]:g} lines)"
            lines, megabytes = code_size(nb)
            rows.append(
                [
                    shape,
                    f"{lines:,}",
                    f"{megabytes:.1f}",
                    f"{cpu:.2f}",
                    f"{wall:.2f}",
                    f"{cpu / lines * 10_000:.3f}",
                    "-" if peak is None else f"{peak:.0f}",
                    ratio,
                ]
            )
            print(rows[-1], flush=True)
            previous = (size, cpu)
    return table(HEADERS, rows)


def main() -> str:
    """The default run, for run_all.py."""
    return run(list(SIZES), list(SHAPES), budget=120, memory=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="lines of code")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=", ".join(SHAPES))
    parser.add_argument("--budget", type=float, default=120, help="seconds per analysis")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    arguments = parser.parse_args()
    print(
        run(
            [int(s) for s in arguments.sizes.split(",")],
            arguments.shapes.split(","),
            arguments.budget,
            not arguments.no_memory,
        )
    )
