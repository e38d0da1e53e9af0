"""Pinned requirements: the installed distributions behind the modules a notebook imports."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata

# The stage notebooks import our runtime, so the bundle needs this package wherever it runs.
OWN_DISTRIBUTION = "jupyter-mlops"


@lru_cache(maxsize=1)
def _module_distributions() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def pinned_requirements(modules: list[str]) -> list[str]:
    """`scikit-learn==1.5.2` lines for the modules' distributions, sorted, one per line.

    Standard-library modules are left out; a module no installed distribution provides is
    kept as a comment, so a reviewer sees it rather than a silent gap.
    """
    lines = {f"{OWN_DISTRIBUTION}=={metadata.version(OWN_DISTRIBUTION)}"}
    missing: set[str] = set()
    for module in set(modules):
        if module in sys.stdlib_module_names or module in {"__future__", "jupyter_mlops"}:
            continue
        distributions = _module_distributions().get(module)
        if not distributions:
            missing.add(module)
            continue
        for name in distributions:
            version = metadata.version(name).split("+")[0]  # `2.13.0+cpu`: PyPI has no `+cpu`
            lines.add(f"{_canonical(name)}=={version}")
    comments = [f"# {m}: no installed distribution provides it" for m in sorted(missing)]
    return sorted(lines) + comments


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
