"""Codecs: values pickle can't carry cross the artifact store by their own formats, chosen by
type; third parties add theirs through an entry point."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from jupyter_mlops import codecs
from jupyter_mlops.artifacts import StageRecord, open_store


def round_trip(tmp_path, **values):
    store = open_store(tmp_path / "store")
    digest, variables = store.write_values("a", values)
    store.write_record(StageRecord("a", digest, variables))
    return open_store(tmp_path / "store").load("a", list(values))


def test_xgboost_dmatrix(tmp_path):
    xgb = pytest.importorskip("xgboost")
    X = np.arange(20.0).reshape(10, 2)
    matrix = xgb.DMatrix(X, label=np.arange(10.0))
    with pytest.raises(ValueError, match="ctypes"):
        pickle.dumps(matrix)  # what used to stop the stage
    loaded = round_trip(tmp_path, matrix=matrix, again=matrix)
    assert loaded["matrix"] is loaded["again"]  # aliasing survives the codec
    assert loaded["matrix"].num_row() == 10 and loaded["matrix"].num_col() == 2
    assert list(loaded["matrix"].get_label()) == list(np.arange(10.0))


def test_lightgbm_dataset(tmp_path):
    lgb = pytest.importorskip("lightgbm")
    dataset = lgb.Dataset(np.arange(40.0).reshape(20, 2), label=np.arange(20.0)).construct()
    loaded = round_trip(tmp_path, dataset=dataset)["dataset"]
    assert loaded.num_data() == 20 and loaded.num_feature() == 2
    assert list(loaded.get_label()) == list(np.arange(20.0))


def test_torch_tensors_parameters_and_modules(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    tensor = torch.arange(6.0).reshape(2, 3).requires_grad_()
    half = torch.ones(3, dtype=torch.bfloat16)  # no NumPy dtype: torch's own format
    loaded = round_trip(tmp_path, module=module, tensor=tensor, half=half)
    assert torch.equal(loaded["tensor"], tensor.detach()) and loaded["tensor"].requires_grad
    assert loaded["half"].dtype == torch.bfloat16 and torch.equal(loaded["half"], half)
    assert isinstance(loaded["module"].weight, torch.nn.Parameter)
    assert torch.equal(loaded["module"](tensor), module(tensor))
    loaded["module"].weight.data += 1  # memory-mapped copy-on-write: the store is untouched
    assert torch.equal(round_trip(tmp_path / "2", m=module)["m"].weight, module.weight)


def test_keras_models(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # no TensorFlow needed
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    loaded = round_trip(tmp_path, model=model)["model"]
    x = np.ones((1, 3), dtype="float32")
    assert np.allclose(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x)))


@dataclass
class Table:
    rows: list


def test_a_third_party_codec_through_the_entry_point(tmp_path, monkeypatch):
    encoded = []

    def encode(table):
        encoded.append(table)
        return {"columns": 1}, np.asarray(table.rows, dtype="int64").tobytes()

    def decode(description, data):
        return Table(np.frombuffer(data, dtype="int64").tolist())

    class EntryPoint:
        name = "tables"

        def load(self):
            return [codecs.Codec("tests.Table", __name__, "Table", encode, decode)]

    monkeypatch.setattr(codecs, "entry_points", lambda group: [EntryPoint()])
    codecs.registered.cache_clear()
    try:
        loaded = round_trip(tmp_path, table=Table([1, 2]))
    finally:
        codecs.registered.cache_clear()
    assert loaded["table"] == Table([1, 2]) and encoded == [Table([1, 2])]


def test_an_entry_point_that_is_not_a_codec_is_named(monkeypatch):
    class EntryPoint:
        name = "broken"

        def load(self):
            return "not a codec"

    monkeypatch.setattr(codecs, "entry_points", lambda group: [EntryPoint()])
    codecs.registered.cache_clear()
    try:
        with pytest.raises(TypeError, match=r"'broken'.*must name a jupyter_mlops\.codecs\.Codec"):
            codecs.registered()
    finally:
        codecs.registered.cache_clear()


def test_codecs_are_chosen_by_type_never_by_importing():
    chooser = codecs.CodecChooser()
    assert chooser.choose(np.zeros(2)) is None  # NumPy needs no codec: pickle 5 is raw
    assert chooser.choose("text") is None
