"""Run every benchmark and print the tables; `--write` also records them in README.md.

    python benchmarks/run_all.py [--write] [NAME ...]

NAME is one of the benchmark modules (conversion, pipeline, notebook_suite, handover, rerun,
analyze_latency, memory, analysis_scaling, sweep, cluster); all of them by default. Each
prints ratios against a baseline measured in the same run, so the figures compare across
machines better than raw seconds do.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import re
from pathlib import Path

from common import machine

from jupyter_mlops.files import atomic_write

BENCHMARKS = {
    "conversion": "Analysis + conversion against notebook size",
    "pipeline": "Pipeline wall time against plain papermill",
    "notebook_suite": "Real notebooks, every section a stage, against plain papermill",
    "handover": "Handing values over between stages",
    "rerun": "Re-runs with the stage cache",
    "analyze_latency": "`analyze` latency through the Jupyter server",
    "memory": "Memory of the runner while stages hand over 1 GB",
    "analysis_scaling": "Analysis time and memory against the size of the code",
    "sweep": "A sweep against the same parameter sets run one by one",
    "cluster": "A fan-out on a Dask cluster of one worker against two",
}
README = Path(__file__).with_name("README.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("--write", action="store_true", help="record the tables in README.md")
    arguments = parser.parse_args()
    names = arguments.names or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    header = f"Measured {datetime.date.today()} on {machine()}."
    print(header)
    results = {}
    for name in names:
        print(f"\n## {BENCHMARKS[name]}\n", flush=True)
        results[name] = importlib.import_module(name).main()
        print(results[name], flush=True)
    if arguments.write:
        record(header, results)


def record(header: str, results: dict[str, str]) -> None:
    """Replace each benchmark's table between its markers in README.md."""
    text = README.read_text()
    for name, body in {"machine": header, **results}.items():
        # The markers stay; whatever was between them (nothing, at first) is replaced.
        pattern = rf"<!-- {name} -->\n.*?<!-- /{name} -->"
        block = f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"
        text, found = re.subn(pattern, lambda _, block=block: block, text, flags=re.S)
        if not found:
            raise SystemExit(f"{README}: no <!-- {name} --> markers to write the table between")
    atomic_write(README, text)


if __name__ == "__main__":
    main()
