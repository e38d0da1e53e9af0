"""The artifact store: how values cross from one stage's kernel to the next.

One stage's outputs are written as one *object*: a stream of pickles (protocol 5, one per
variable, sharing one memo so aliasing between them survives) and a file of raw
out-of-band buffers (the memory of NumPy arrays and data-frame columns, written as-is and
memory-mapped copy-on-write when read, so large arrays move at close to disk speed and a
reader only touches the pages it uses). cloudpickle covers what plain pickle can't
(lambdas); :mod:`jupyter_mlops.codecs` carries what neither can (an xgboost ``DMatrix``) or
carries faster (tensors). Functions and classes defined in the notebook are written by name,
with their pickled code as a fallback: the reading stage has defined them again from the
notebook's code (see :mod:`jupyter_mlops.bundle`), so an instance of a notebook class gets the
reader's class and a function looks up its globals there, as in the notebook.

Objects are content-addressed (``objects/<sha256>/``) and immutable; a stage's latest
outputs are named by a small record (``stages/<stage>.json``) that is replaced atomically,
so a reader never sees half an object and identical outputs are stored once.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import numbers
import os
import pickle
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import CodeType, FunctionType
from typing import Any, BinaryIO

import cloudpickle

from .codecs import CodecChooser, decode
from .errors import MlopsError, SerializationError
from .files import atomic_write

FORMAT = 1
ALIGNMENT = 64  # buffers start on cache-line boundaries so mapped arrays are aligned
VALUES_FILE = "values.pkl"
BUFFERS_FILE = "buffers.bin"
INDEX_FILE = "buffers.json"  # [offset, length] of each out-of-band buffer, in order
# The MIME type of an output carrying an Unhandable's facts (see runtime.save_outputs).
UNHANDABLE_MIME = "application/vnd.jupyter-mlops.unhandable+json"


@dataclass
class VariableInfo:
    name: str
    type: str
    digest: str
    start: int  # byte range of its pickle in values.pkl
    end: int
    buffers: int  # how many out-of-band buffers its pickle uses
    summary: dict[str, Any] = field(default_factory=dict)  # shape and schema of arrays/frames


@dataclass(frozen=True)
class Unhandable:
    """A value a stage can't hand to a later stage, as facts. The user reads `message`; the
    runner reads the facts as data (the stage kernel shows them as an output of the failing
    cell), to point at the user's cell that made the value."""

    stage: str
    variable: str
    type: str  # the value's class name
    reason: str  # what pickling said
    fix: str  # what to do instead, chosen by type

    @property
    def message(self) -> str:
        return (
            f"stage `{self.stage}` can't hand `{self.variable}` ({self.type}) to a later "
            f"stage: {self.reason}. Fix: {self.fix}."
        )


# Told of a value that can't be handed on, before SerializationError is raised for it.
RefusalListener = Callable[[Unhandable], None]


@dataclass
class StageRecord:
    """What a finished stage left behind: its outputs' object, metrics and logged models."""

    stage: str
    object: str | None
    variables: dict[str, VariableInfo] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> StageRecord:
        data = json.loads(text)
        data["variables"] = {k: VariableInfo(**v) for k, v in data["variables"].items()}
        return cls(**data)


class ArtifactStore:
    """A local folder of content-addressed objects and per-stage records."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.location = str(root)

    # --- where things live (a remote store overrides these) -----------------------------

    def _staging_parent(self) -> Path:
        """Where a new object is written before it is published (same filesystem)."""
        return self.root / "objects"

    def _local(self, digest: str) -> Path:
        return self.root / "objects" / digest

    def _publish(self, staging: Path, digest: str) -> None:
        final = self._local(digest)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # not a same-content object written concurrently
                raise

    def object_path(self, digest: str) -> Path:
        """The local folder of an object (a remote store downloads it first)."""
        return self._local(digest)

    def put_text(self, name: str, text: str) -> None:
        """Write a small document (a stage record, a run manifest) atomically."""
        atomic_write(self.root / name, text)

    def get_text(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def adopt(self, source: ArtifactStore, record: StageRecord) -> None:
        """Make another store's stage outputs this store's (for reused stages)."""
        if record.object:
            _link_tree(source.object_path(record.object), self.object_path(record.object))
        self.write_record(record)

    # --- writing --------------------------------------------------------------------------

    def write_values(
        self, stage: str, values: dict[str, Any], on_refusal: RefusalListener | None = None
    ) -> tuple[str, dict]:
        """Write one stage's output values as an object; returns its digest and variables.

        A value that can't be written raises SerializationError, after `on_refusal` (if any)
        is given its facts."""
        parent = self._staging_parent()
        parent.mkdir(parents=True, exist_ok=True)
        staging = parent / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            variables = _write_object(staging, stage, values, on_refusal)
            digest = _object_digest(variables)
            self._publish(staging, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return digest, variables

    def write_record(self, record: StageRecord) -> None:
        self.put_text(_record_name(record.stage), record.to_json())

    # --- reading --------------------------------------------------------------------------

    def read_record(self, stage: str) -> StageRecord:
        text = self.get_text(_record_name(stage))
        if text is None:
            raise MlopsError(
                f"stage `{stage}` has no outputs in {self.location}: run it (or the pipeline) "
                "first, or pass the run's artifact store as `mlops_artifacts`"
            )
        return StageRecord.from_json(text)

    def has_record(self, stage: str) -> bool:
        return self.get_text(_record_name(stage)) is not None

    def load(self, stage: str, names: list[str]) -> dict[str, Any]:
        """The named variables of a stage's latest outputs."""
        record = self.read_record(stage)
        missing = [n for n in names if n not in record.variables]
        if missing or record.object is None:
            raise MlopsError(
                f"stage `{stage}` did not hand over {', '.join(f'`{n}`' for n in missing)}; "
                "convert the notebook again so the stages agree"
            )
        return _read_object(self.object_path(record.object), record.variables, set(names))


class RemoteArtifactStore(ArtifactStore):
    """The same layout behind any fsspec URL (``s3://bucket/prefix``), for stages that run on
    different machines. Objects are written and read through a local content-addressed cache,
    so reading stays memory-mapped and an object crosses the network once per machine."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.fs, self.base = fsspec.core.url_to_fs(url)
        self.location = url
        self.root = cache_folder()

    def _remote(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def _publish(self, staging: Path, digest: str) -> None:
        remote = self._remote("objects", digest)
        if not self.fs.exists(f"{remote}/{INDEX_FILE}"):
            for name in (VALUES_FILE, BUFFERS_FILE, INDEX_FILE):  # the index last: complete
                self.fs.put_file(str(staging / name), f"{remote}/{name}")
        super()._publish(staging, digest)

    def object_path(self, digest: str) -> Path:
        local = self._local(digest)
        if not local.is_dir():
            staging = self._staging_parent() / f".tmp-{uuid.uuid4().hex}"
            staging.mkdir(parents=True)
            try:
                for name in (VALUES_FILE, BUFFERS_FILE, INDEX_FILE):
                    self.fs.get_file(self._remote("objects", digest, name), str(staging / name))
                super()._publish(staging, digest)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return local

    def put_text(self, name: str, text: str) -> None:
        self.fs.pipe_file(self._remote(name), text.encode())  # one PUT: atomic

    def get_text(self, name: str) -> str | None:
        try:
            return self.fs.cat_file(self._remote(name)).decode()
        except FileNotFoundError:
            return None

    def adopt(self, source: ArtifactStore, record: StageRecord) -> None:
        if record.object:
            folder = source.object_path(record.object)
            self._publish_copy(folder, record.object)
        self.write_record(record)

    def _publish_copy(self, folder: Path, digest: str) -> None:
        staging = self._staging_parent() / f".tmp-{uuid.uuid4().hex}"
        shutil.copytree(folder, staging, copy_function=_link_or_copy)
        try:
            self._publish(staging, digest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _record_name(stage: str) -> str:
    return f"stages/{stage}.json"


def cache_folder() -> Path:
    """This machine's cache of remote objects (content-addressed, so always valid)."""
    configured = os.environ.get("JUPYTER_MLOPS_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "jupyter-mlops"


def open_store(location: str | os.PathLike[str]) -> ArtifactStore:
    """A store for a local path or an fsspec URL."""
    text = str(location)
    if "://" in text and not text.startswith("file://"):
        return RemoteArtifactStore(text)
    return ArtifactStore(text.removeprefix("file://"))


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link an immutable object folder into another store (copy across devices)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".tmp-{uuid.uuid4().hex}"
    shutil.copytree(source, staging, copy_function=_link_or_copy)
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _sha256(data: memoryview) -> bytes:
    return hashlib.sha256(data).digest()


class _Digest:
    """The content hash of one variable as it is written: its pickle bytes, plus its
    out-of-band buffers hashed in chunks on worker threads (hashlib lets go of the GIL), so
    hashing a large array runs beside writing it instead of after it."""

    CHUNK = 32 * 2**20

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.pickled = hashlib.sha256()
        self.chunks: list[Future[bytes]] = []

    def add_buffer(self, data: memoryview) -> None:
        data = data.cast("B")
        for start in range(0, len(data), self.CHUNK):
            chunk = data[start : start + self.CHUNK]
            self.chunks.append(self.pool.submit(_sha256, chunk))

    def hexdigest(self) -> str:
        total = hashlib.sha256(self.pickled.digest())
        for chunk in self.chunks:
            total.update(chunk.result())
        return total.hexdigest()


class _HashingWriter:
    """File wrapper that hashes what is written into the current variable's digest."""

    def __init__(self, stream: BinaryIO, digest: _Digest) -> None:
        self.stream = stream
        self.digest = digest

    def write(self, data: bytes | memoryview) -> int:
        self.digest.pickled.update(data)
        return self.stream.write(data)


def _write_object(
    folder: Path, stage: str, values: dict[str, Any], on_refusal: RefusalListener | None
) -> dict[str, VariableInfo]:
    variables: dict[str, VariableInfo] = {}
    with (
        open(folder / VALUES_FILE, "wb") as values_file,
        open(folder / BUFFERS_FILE, "wb") as buffers_file,
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
    ):
        writer = _HashingWriter(values_file, _Digest(pool))

        def out_of_band(buffer: pickle.PickleBuffer) -> bool:
            try:
                raw = buffer.raw()
            except BufferError:
                return True  # not contiguous: let pickle copy it in-band
            buffers_file.write(b"\0" * (-buffers_file.tell() % ALIGNMENT))
            index.append([buffers_file.tell(), raw.nbytes])
            writer.digest.add_buffer(raw)
            buffers_file.write(raw)
            return False

        pickler = _Pickler(writer, buffer_callback=out_of_band)
        index: list[list[int]] = []
        for name in sorted(values):
            value = values[name]
            writer.digest = _Digest(pool)
            start, first = values_file.tell(), len(index)
            try:
                pickler.dump(value)
            except Exception as error:
                refused = Unhandable(
                    stage, name, type(value).__name__, str(error), _fix_for(name, value)
                )
                if on_refusal is not None:
                    on_refusal(refused)
                raise SerializationError(refused.message) from None
            variables[name] = VariableInfo(
                name=name,
                type=_type_name(value),
                digest=writer.digest.hexdigest(),
                start=start,
                end=values_file.tell(),
                buffers=len(index) - first,
                summary=summarize(value),
            )
    (folder / INDEX_FILE).write_text(json.dumps(index))
    return variables


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, with codecs chosen by type and the notebook's own definitions by name."""

    def __init__(self, stream: Any, buffer_callback: Any = None) -> None:
        super().__init__(stream, protocol=5, buffer_callback=buffer_callback)
        self.codecs = CodecChooser()
        self.main = sys.modules.get("__main__")

    def reducer_override(self, obj: Any) -> Any:
        if self.codecs:
            codec = self.codecs.choose(obj)
            if codec is not None:
                description, data = codec.encode(obj)
                return decode, (codec.name, description, pickle.PickleBuffer(data))
        if isinstance(obj, type | FunctionType) and self._defined_in_notebook(obj):
            pickled = cloudpickle.dumps(obj, protocol=5)
            return notebook_object, (obj.__qualname__, code_fingerprint(obj), pickled)
        return super().reducer_override(obj)

    def _defined_in_notebook(self, obj: type | FunctionType) -> bool:
        """Whether `obj` is the notebook's own definition of its name (not a nested one, nor
        one the name no longer holds)."""
        if getattr(obj, "__module__", "") != "__main__":
            return False
        return getattr(self.main, obj.__qualname__, None) is obj


def notebook_object(name: str, fingerprint: str, pickled: bytes) -> Any:
    """A function or class of the notebook: the reading stage's own when it has defined the
    same code (from the notebook), else the writer's, unpickled (a value made from an older
    definition of the name keeps that definition, as in the notebook)."""
    found = getattr(sys.modules.get("__main__"), name, None)
    if (
        isinstance(found, type | FunctionType)
        and found.__module__ == "__main__"
        and code_fingerprint(found) == fingerprint
    ):
        return found
    return pickle.loads(pickled)


def code_fingerprint(obj: type | FunctionType) -> str:
    """What a function's or class's code is, the same in any kernel that ran the same source
    (unlike its pickle, which names the kernel's cell file)."""
    digest = hashlib.sha256()

    def code(value: CodeType) -> None:
        digest.update(value.co_code)
        digest.update(repr((value.co_names, value.co_varnames)).encode())
        for constant in value.co_consts:
            if isinstance(constant, CodeType):
                code(constant)
            elif isinstance(constant, frozenset):
                digest.update(repr(sorted(map(repr, constant))).encode())
            else:
                digest.update(repr(constant).encode())

    if isinstance(obj, FunctionType):
        code(obj.__code__)
    else:
        digest.update(repr([base.__qualname__ for base in obj.__bases__]).encode())
        for name, member in sorted(vars(obj).items()):
            function = getattr(member, "__func__", None) or getattr(member, "fget", None) or member
            if isinstance(function, FunctionType):
                digest.update(name.encode())
                code(function.__code__)
            elif not (name.startswith("__") and name.endswith("__")):  # not caches: __slotnames__
                digest.update(name.encode())
    return digest.hexdigest()


def _object_digest(variables: dict[str, VariableInfo]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(variables):
        hasher.update(f"{name}={variables[name].digest};".encode())
    return hasher.hexdigest()


def _read_object(folder: Path, variables: dict[str, VariableInfo], wanted: set[str]) -> dict:
    """Unpickle in written order up to the last wanted variable (later ones may alias earlier)."""
    order = sorted(variables)
    last = max((order.index(n) for n in wanted), default=-1)
    result: dict[str, Any] = {}
    if last < 0:
        return result
    index = json.loads((folder / INDEX_FILE).read_text())
    with open(folder / VALUES_FILE, "rb") as values_file:
        unpickler = pickle.Unpickler(values_file, buffers=_mapped_buffers(folder, index))
        for name in order[: last + 1]:
            value = unpickler.load()
            if name in wanted:
                result[name] = value
    return result


def _mapped_buffers(folder: Path, index: list[list[int]]) -> Iterator[memoryview]:
    """The object's buffers, in order, as writable copy-on-write views of one mapping.

    Copy-on-write keeps the stored object intact when a stage modifies an array it loaded,
    while pages it never touches are never read from disk.
    """
    if not index:
        return iter(())
    with open(folder / BUFFERS_FILE, "rb") as stream:
        mapping = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_COPY)
    view = memoryview(mapping)
    return (view[offset : offset + length] for offset, length in index)


def _type_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def summarize(value: Any) -> dict[str, Any]:
    """Shape and schema of arrays and data frames, for lineage; {} for other values.

    Checks `sys.modules` rather than importing, so a stage that never used pandas doesn't
    pay for importing it here.
    """
    numpy = sys.modules.get("numpy")
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        columns = {str(c): str(t) for c, t in value.dtypes.items()}
        return {"kind": "dataframe", "rows": len(value), "columns": columns}
    if pandas is not None and isinstance(value, pandas.Series):
        return {"kind": "series", "rows": len(value), "dtype": str(value.dtype)}
    if numpy is not None and isinstance(value, numpy.ndarray):
        return {"kind": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
    return {}


def is_metric_value(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fix_for(name: str, value: Any) -> str:
    """What to do instead of handing over a value of this type (chosen by type)."""
    import io
    import sqlite3
    import threading
    import types

    if isinstance(value, types.GeneratorType):
        return f"turn it into a list (`{name} = list({name})`)"
    if isinstance(value, io.IOBase):
        return "hand over the file's path instead and open it in the stage that reads it"
    if isinstance(value, type(threading.Lock()) | type(threading.RLock())):
        return "create it in the stage that uses it, or in a `setup` cell"
    if isinstance(value, types.ModuleType):
        return "import it in a `setup` cell instead"
    if isinstance(value, sqlite3.Connection):
        return "open the connection in a `setup` cell or in the stage that uses it"
    return (
        "move the cell that creates it into the stage that reads it (or create it in a "
        "`setup` cell), or register a codec for its type (see docs/FIDELITY.md)"
    )
