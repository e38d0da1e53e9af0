"""Small file helpers: atomic writes (a crash never leaves half a file) and content hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import yaml


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write a file so readers see either the old or the new content, never a partial one.

    A rename is atomic for readers and survives the writer being killed. No fsync: that
    would only add protection against power loss, at a cost that dominated converting and
    running large pipelines.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ReadableDumper(yaml.SafeDumper):
    """YAML for people to review: no anchors, multi-line strings as `|` blocks."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def yaml_text(data: object) -> str:
    """Deterministic, reviewable YAML (keys in the order given)."""
    return yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=1000)
