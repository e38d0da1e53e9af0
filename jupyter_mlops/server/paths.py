"""Keeping request paths inside the server's root directory."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


class OutsideRoot(ValueError):
    """A path that is absolute, climbs with `..`, or resolves (via symlinks) outside the root."""


def resolve_in_root(root: Path, relative: str) -> Path:
    """The real path of a Contents-API-style path, refusing anything outside `root`."""
    if not isinstance(relative, str) or not relative.strip():
        raise OutsideRoot("a path relative to the server's root is required")
    pure = PurePosixPath(relative.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise OutsideRoot(f"`{relative}` is not a path inside the server's root")
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(real_root / pure))
    if target != real_root and real_root not in target.parents:
        raise OutsideRoot(f"`{relative}` leads outside the server's root")
    return target


def relative_to_root(root: Path, path: Path) -> str:
    return Path(os.path.realpath(path)).relative_to(os.path.realpath(root)).as_posix()
