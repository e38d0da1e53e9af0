"""Pinned requirements: the installed distributions behind the modules a notebook imports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .artifacts import cache_folder
from .files import atomic_write

# The stage notebooks import our runtime, so the bundle needs this package wherever it runs.
OWN_DISTRIBUTION = "jupyter-mlops"


@lru_cache(maxsize=1)
def _module_distributions() -> Mapping[str, list[str]]:
    """Which distributions provide each top-level module.

    Building it reads every installed distribution's file list: 0.2-0.3 s on a data
    scientist's environment, in every run before its first stage. It changes only when a
    distribution is installed, upgraded or removed, which adds or removes a `.dist-info`
    folder on `sys.path`, so it is kept on disk under a key made of those folders' names.
    """
    cached = _cache_file()
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(cached.read_text(encoding="utf-8"))
        if isinstance(found, dict):
            with contextlib.suppress(OSError):
                os.utime(cached)  # used: the pruning keeps the maps used last
            return found
    built = metadata.packages_distributions()
    with contextlib.suppress(OSError):  # a read-only home: build it every time
        atomic_write(cached, json.dumps(built, sort_keys=True))
        _prune(cached.parent)
    return built


KEPT_MAPS = 8  # one per environment and state of it: a few environments, a few installs


def _prune(folder: Path) -> None:
    """Keep the maps used last only: each install in each environment leaves one behind."""
    maps = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in maps[KEPT_MAPS:]:
        old.unlink(missing_ok=True)


def _cache_file() -> Path:
    return cache_folder() / "distributions" / f"{installed_fingerprint()[:24]}.json"


def installed_fingerprint() -> str:
    """A digest of what is installed on `sys.path`: it changes when a distribution is
    installed, upgraded or removed (its metadata folder's name carries its version)."""
    key = hashlib.sha256()
    key.update(sys.prefix.encode())
    here = os.path.abspath(".")
    for entry in sys.path:
        place = os.path.abspath(entry or ".")
        if place == here:  # the working folder (a kernel's, `python -m`'s): not an install
            continue
        key.update(f"\0{place}".encode())
        with contextlib.suppress(OSError):
            if not os.path.isdir(place):  # a zip: its contents change with its mtime
                key.update(str(os.stat(place).st_mtime_ns).encode())
                continue
            for name in sorted(os.listdir(place)):
                if name.endswith(_METADATA):
                    key.update(f"/{name}".encode())
    return key.hexdigest()


# What installing a distribution leaves on `sys.path` (its version is in the folder's name).
_METADATA = (".dist-info", ".egg-info", ".egg-link", ".pth")


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
