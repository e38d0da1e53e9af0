"""Small file helpers: atomic writes (a crash never leaves half a file) and content hashes."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import yaml


def atomic_write(path: str | Path, data: bytes | str, private: bool = False) -> None:
    """Write a file so readers see either the old or the new content, never a partial one.

    A rename is atomic for readers and survives the writer being killed. No fsync: that
    would only add protection against power loss, at a cost that dominated converting and
    running large pipelines. The file gets the mode a plain `open()` gives a new file, 0666
    less the umask: generated DAGs and bundles are read by schedulers running as other users,
    which `mkstemp`'s 0600 locked out (and regenerating fixes files written that way).
    `private` files (a run's state, which may hold a tracking URI with its password) are 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, temporary = _create_temporary(path, 0o600 if private else 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _create_temporary(path: Path, mode: int) -> tuple[int, Path]:
    """A new file beside `path`, created with `mode` less the umask, which the kernel applies
    (no process-wide `os.umask` call to read it, which would race other threads)."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(temporary, flags, mode), temporary
        except FileExistsError:
            continue


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ReadableDumper(yaml.SafeDumper):
    """YAML for people to review: no anchors, multi-line strings as `|` blocks."""

    def ignore_aliases(self, data: object) -> bool:
        return True


# Line breaks to a YAML 1.1 reader (PyYAML's) besides "\n": PyYAML writes them raw inside
# plain, quoted and block scalars, where reading folds NEL into a space or "\n", and a reader
# seeing lines differently from the writer can be made to read a key that is not there.
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if any(char in value for char in _OTHER_BREAKS):
        style: str | None = '"'  # escapes them: \r, \N, \L, \P
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _string)


def yaml_text(data: object) -> str:
    """Deterministic, reviewable YAML (keys in the order given)."""
    return yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=1000)


def papermill_path(path: Path | str) -> str:
    """`path` as papermill's input or output path must be given.

    papermill formats both paths with the run's parameters (`str.format`), so a folder named
    `proj {n}` would become `proj 3`, or fail; doubled braces come out as they were.
    """
    return str(path).replace("{", "{{").replace("}", "}}")
