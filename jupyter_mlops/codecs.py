"""Codecs: how values that pickle can't carry (or carries slowly) cross a stage boundary.

The artifact store pickles a stage's outputs; a codec takes over for the values of one type:
it turns the value into a small picklable description plus one raw buffer (written as-is and
memory-mapped when read, like NumPy arrays), and back. Codecs are chosen by the value's type,
looked up among the codecs whose module the stage has already imported (nothing is imported
to find out), never by matching type names as text.

Third parties add codecs through the ``jupyter_mlops.codecs`` entry point group: each entry
point names a :class:`Codec` (or a list of them)::

    [project.entry-points."jupyter_mlops.codecs"]
    my_table = "my_package.mlops:TABLE_CODEC"
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "jupyter_mlops.codecs"


@dataclass(frozen=True)
class Codec:
    """Carries the values of one type. `encode` returns (description, buffer): the description
    is pickled, the buffer written raw; `decode` gets both back (the buffer as a memoryview
    that may be memory-mapped: copy what must outlive it)."""

    name: str  # unique; stored with each value, so the reader finds the same codec
    module: str  # the module defining the type, e.g. "xgboost.core"
    qualname: str  # the type within it, e.g. "DMatrix"
    encode: Callable[[Any], tuple[Any, bytes | bytearray | memoryview]]
    decode: Callable[[Any, memoryview], Any]
    subclasses: bool = False  # also carry instances of subclasses (Keras models)

    def resolve(self) -> type | None:
        """The type, if the process has imported its module (it is never imported here)."""
        module = sys.modules.get(self.module)
        kind: Any = module
        for part in self.qualname.split("."):
            kind = getattr(kind, part, None)
        return kind if isinstance(kind, type) else None


# --- the codecs that come with jupyter-mlops ---------------------------------------------------


def _via_file(save: Callable[[Any, str], None], suffix: str = ".bin") -> Callable:
    """Encode with a library's own save-to-file function."""

    def encode(value: Any) -> tuple[Any, bytes]:
        with tempfile.TemporaryDirectory(prefix="mlops-codec-") as folder:
            path = os.path.join(folder, f"value{suffix}")
            save(value, path)
            with open(path, "rb") as stream:
                return None, stream.read()

    return encode


def _from_file(load: Callable[[str], Any], suffix: str = ".bin") -> Callable:
    """Decode with a library's own load-from-file function (it reads the file before the
    folder goes: each library here loads eagerly)."""

    def decode(_: Any, data: memoryview) -> Any:
        with tempfile.TemporaryDirectory(prefix="mlops-codec-") as folder:
            path = os.path.join(folder, f"value{suffix}")
            with open(path, "wb") as stream:
                stream.write(data)
            return load(path)

    return decode


def _xgboost_load(path: str) -> Any:
    import xgboost

    return xgboost.DMatrix(path)


def _lightgbm_save(dataset: Any, path: str) -> None:
    dataset.construct()  # training constructs it too; its binary form needs that
    dataset.save_binary(path)


def _lightgbm_load(path: str) -> Any:
    import lightgbm

    dataset = lightgbm.Dataset(path)
    return dataset.construct()


def _tensor_encode(tensor: Any) -> tuple[Any, Any]:
    """A CPU tensor as its raw memory (moved at disk speed, memory-mapped when read); other
    tensors (GPU, sparse, dtypes NumPy lacks) through torch's own format."""
    import torch

    description = {
        "requires_grad": tensor.requires_grad,
        "parameter": isinstance(tensor, torch.nn.Parameter),
    }
    plain = tensor.detach()
    if plain.device.type == "cpu" and plain.layout == torch.strided:
        try:
            array = plain.contiguous().numpy()
        except (TypeError, RuntimeError):  # bfloat16 and friends
            array = None
        if array is not None:
            description.update(dtype=array.dtype.str, shape=list(array.shape))
            return description, memoryview(array.reshape(-1).view("uint8"))
    stream = io.BytesIO()
    torch.save(plain, stream)
    return description, stream.getvalue()


def _tensor_decode(description: dict[str, Any], data: memoryview) -> Any:
    import numpy
    import torch

    if "dtype" in description:
        array = numpy.frombuffer(data, dtype=numpy.dtype(description["dtype"]))
        if not array.flags.writeable:  # a read-only buffer: torch wants memory it may change
            array = array.copy()
        tensor = torch.from_numpy(array.reshape(description["shape"]))
    else:
        tensor = torch.load(io.BytesIO(bytes(data)), weights_only=True)
    if description["parameter"]:
        return torch.nn.Parameter(tensor, requires_grad=description["requires_grad"])
    return tensor.requires_grad_(description["requires_grad"])


def _keras_save(model: Any, path: str) -> None:
    model.save(path)


def _keras_load(path: str) -> Any:
    import keras

    return keras.models.load_model(path)


BUILTIN_CODECS = (
    Codec(
        "xgboost.DMatrix",
        "xgboost.core",
        "DMatrix",
        _via_file(lambda matrix, path: matrix.save_binary(path, silent=True), ".buffer"),
        _from_file(_xgboost_load, ".buffer"),
    ),
    Codec(
        "lightgbm.Dataset",
        "lightgbm.basic",
        "Dataset",
        _via_file(_lightgbm_save),
        _from_file(_lightgbm_load),
    ),
    Codec("torch.Tensor", "torch", "Tensor", _tensor_encode, _tensor_decode),
    Codec("torch.Parameter", "torch.nn.parameter", "Parameter", _tensor_encode, _tensor_decode),
    Codec(
        "keras.Model",
        "keras",
        "Model",
        _via_file(_keras_save, ".keras"),
        _from_file(_keras_load, ".keras"),
        subclasses=True,
    ),
)


# --- the registry ----------------------------------------------------------------------------


@cache
def registered() -> dict[str, Codec]:
    """Every codec by name: ours, then those installed packages declare (theirs win)."""
    codecs = {codec.name: codec for codec in BUILTIN_CODECS}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        for codec in loaded if isinstance(loaded, list | tuple) else [loaded]:
            if not isinstance(codec, Codec):
                raise TypeError(
                    f"entry point {entry_point.name!r} in {ENTRY_POINT_GROUP} must name a "
                    f"jupyter_mlops.codecs.Codec, not {type(codec).__name__}"
                )
            codecs[codec.name] = codec
    return codecs


class CodecChooser:
    """Finds the codec for a value by its type, once per type: made for one write, since a
    codec's type only exists once the stage has imported its module."""

    def __init__(self) -> None:
        self.exact: dict[type, Codec] = {}
        self.broad: list[tuple[type, Codec]] = []
        for codec in registered().values():
            kind = codec.resolve()
            if kind is None:
                continue
            if codec.subclasses:
                self.broad.append((kind, codec))
            else:
                self.exact[kind] = codec
        self.seen: dict[type, Codec | None] = dict(self.exact)

    def __bool__(self) -> bool:
        return bool(self.exact or self.broad)

    def choose(self, value: Any) -> Codec | None:
        kind = type(value)
        try:
            return self.seen[kind]
        except KeyError:
            found = next((codec for base, codec in self.broad if issubclass(kind, base)), None)
            self.seen[kind] = found
            return found


def decode(name: str, description: Any, data: Any) -> Any:
    """Called by the unpickler for each value a codec carried."""
    try:
        codec = registered()[name]
    except KeyError:
        raise LookupError(
            f"a value was written with the codec {name!r}, which is not installed here; "
            "install the package that provides it"
        ) from None
    return codec.decode(description, memoryview(data))
