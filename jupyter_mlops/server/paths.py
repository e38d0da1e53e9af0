"""Keeping request paths inside the server's root directory."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path, PurePosixPath

from ..errors import BadInput, OutsideRoot

MAX_PATH = 4096  # PATH_MAX on Linux: a longer path can't name a file


def resolve_in_root(root: Path, relative: str) -> Path:
    """The real path of a Contents-API-style path, refusing anything outside `root`.

    Raises BadInput for something that can't be a file's path at all (a NUL or other control
    character, a lone surrogate, longer than PATH_MAX).
    """
    if not isinstance(relative, str) or not relative.strip():
        raise OutsideRoot("a path relative to the server's root is required")
    if len(relative) > MAX_PATH:
        raise BadInput(
            f"the path is {len(relative)} characters long; a file's path has at most {MAX_PATH}"
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in relative):
        raise BadInput(
            f"{relative.encode('utf-8', 'backslashreplace').decode()!r} is not a file's path: "
            "it contains a control character or a lone surrogate"
        )
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


def relative_or_none(root: Path, path: Path) -> str | None:
    """`relative_to_root`, or None for a path outside the root (not shown as a path then)."""
    try:
        return relative_to_root(root, path)
    except ValueError:
        return None
