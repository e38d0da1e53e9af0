"""Hand-over of values between stages: fidelity, aliasing, copy-on-write, clear failures."""

import sys
import threading
import types

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.artifacts import ArtifactStore, StageRecord, Unhandable, open_store
from jupyter_mlops.errors import MlopsError, SerializationError


def save(store: ArtifactStore, stage: str, values: dict) -> StageRecord:
    digest, variables = store.write_values(stage, values)
    record = StageRecord(stage, digest, variables)
    store.write_record(record)
    return record


class Point:  # a class the "notebook" defines: cloudpickle stores it by value
    def __init__(self, x):
        self.x = x


def test_values_round_trip(tmp_path):
    store = ArtifactStore(tmp_path)
    frame = pd.DataFrame({"a": np.arange(4), "b": list("wxyz"), "c": np.linspace(0, 1, 4)})
    values = {
        "array": np.random.default_rng(0).random((50, 3)),
        "frame": frame,
        "series": frame["c"],
        "number": 3.5,
        "nested": {"k": [1, (2, 3)], "s": {"x"}},
        "square": lambda v: v * v,
        "point": Point(7),
    }
    save(store, "make", values)
    loaded = store.load("make", list(values))
    np.testing.assert_array_equal(loaded["array"], values["array"])
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    pd.testing.assert_series_equal(loaded["series"], frame["c"])
    assert loaded["number"] == 3.5 and loaded["nested"] == values["nested"]
    assert loaded["square"](4) == 16 and loaded["point"].x == 7


def test_aliasing_between_outputs_survives(tmp_path):
    store = ArtifactStore(tmp_path)
    shared = np.ones(10)
    save(store, "s", {"a": shared, "b": [shared, shared], "c": {"same": shared}})
    loaded = store.load("s", ["a", "b", "c"])
    assert loaded["b"][0] is loaded["a"] and loaded["c"]["same"] is loaded["a"]
    only_b = store.load("s", ["b"])
    assert only_b["b"][0] is only_b["b"][1] and set(only_b) == {"b"}


def test_loaded_arrays_are_writable_and_the_store_stays_intact(tmp_path):
    store = ArtifactStore(tmp_path)
    save(store, "s", {"x": np.zeros(1000)})
    first = store.load("s", ["x"])["x"]
    first[:] = 5
    assert store.load("s", ["x"])["x"].sum() == 0


def test_objects_are_content_addressed(tmp_path):
    store = ArtifactStore(tmp_path)
    one = save(store, "a", {"x": np.arange(5)})
    two = save(store, "b", {"x": np.arange(5)})
    three = save(store, "c", {"x": np.arange(6)})
    assert one.object == two.object != three.object
    assert one.variables["x"].digest == two.variables["x"].digest
    assert len(list((tmp_path / "objects").iterdir())) == 2


def test_summaries_describe_arrays_and_frames(tmp_path):
    store = ArtifactStore(tmp_path)
    record = save(
        store,
        "s",
        {"x": np.zeros((3, 2), dtype=np.float32), "df": pd.DataFrame({"a": [1, 2]}), "n": 1},
    )
    assert record.variables["x"].summary == {"kind": "ndarray", "shape": [3, 2], "dtype": "float32"}
    assert record.variables["df"].summary == {
        "kind": "dataframe",
        "rows": 2,
        "columns": {"a": "int64"},
    }
    assert record.variables["n"].summary == {}
    assert StageRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ((i for i in range(3)), "list(bad)"),
        (threading.Lock(), "setup"),
    ],
)
def test_unserializable_values_name_the_variable_and_a_fix(tmp_path, value, hint):
    store = ArtifactStore(tmp_path)
    with pytest.raises(SerializationError) as raised:
        store.write_values("train", {"fine": 1, "bad": value})
    message = str(raised.value)
    assert "stage `train`" in message and "`bad`" in message and hint in message
    assert not any((tmp_path / "objects").iterdir())


def test_a_refused_value_is_told_as_facts_the_message_is_made_of(tmp_path):
    """The runner reads a refusal back as data (run/failures.py), not by parsing the text."""
    told: list[Unhandable] = []
    with pytest.raises(SerializationError) as raised:
        ArtifactStore(tmp_path).write_values("train", {"bad": threading.Lock()}, told.append)
    [facts] = told
    assert (facts.stage, facts.variable, facts.type) == ("train", "bad", "lock")
    assert "setup" in facts.fix
    assert str(raised.value) == facts.message


def test_open_file_is_refused(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    with open(tmp_path / "f.txt", "w") as handle, pytest.raises(SerializationError) as raised:
        store.write_values("s", {"handle": handle})
    assert "path" in str(raised.value)


def test_missing_outputs_are_clear_errors(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(MlopsError, match="has no outputs"):
        store.load("never", ["x"])
    save(store, "s", {"x": 1})
    with pytest.raises(MlopsError, match="did not hand over `y`"):
        store.load("s", ["y"])


def test_notebook_definitions_travel_by_name_only_when_the_reader_has_the_same_code(
    tmp_path, monkeypatch
):
    """A kernel's `__main__`: the reading stage defined the notebook's functions again."""
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    source = "def f():\n    return 1\nclass Box:\n    def get(self):\n        return 1\n"
    exec(compile(source, "<writer's cell>", "exec"), main.__dict__)
    store = open_store(tmp_path)
    digest, variables = store.write_values("a", {"g": main.f, "box": main.Box()})
    store.write_record(StageRecord("a", digest, variables))

    exec(compile(source, "<reader's cell>", "exec"), main.__dict__)  # the same code again
    loaded = store.load("a", ["g", "box"])
    assert loaded["g"] is main.f and type(loaded["box"]) is main.Box

    exec(compile("def f():\n    return 2\n", "<a later cell>", "exec"), main.__dict__)
    loaded = store.load("a", ["g"])  # made from the older `f`: keeps it, as in the notebook
    assert loaded["g"] is not main.f and loaded["g"]() == 1
