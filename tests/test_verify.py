"""`jupyter-mlops verify`, as a user runs it: identical, divergent (named), unseeded randomness
(named, not blamed on the split), a notebook that fails by itself, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import cli, code, divergent_cells, notebook, write

from jupyter_mlops.verify import describe, equivalent


@pytest.mark.slow
def test_a_divergence_names_the_stage_the_value_and_the_cell(tmp_path):
    path = write(notebook(*divergent_cells()), tmp_path / "nb.ipynb")
    result = cli("verify", str(path), "--runs-dir", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "✗ divergent: 1 of 2 values handed on or logged differ" in result.stdout
    assert (
        "stage `b` (cell 2) hands `n` to `c`: the notebook has 2, the pipeline 1" in result.stdout
    )
    assert not (tmp_path / "mlflow.db").exists()  # nothing logged to the user's store
    kept = list((tmp_path / "elsewhere" / "nb").glob("verify-*"))
    assert len(kept) == 1 and str(kept[0]) in result.stdout  # kept to look into


@pytest.mark.slow
def test_identical_and_unseeded_randomness_named_not_blamed(tmp_path):
    path = write(
        notebook(
            code("import random\nimport numpy as np", "setup"),
            code("np.random.seed(3)\ndraws = np.random.rand(3)", "stage:a"),
            code("more = np.random.rand(2)\nluck = random.random()", "stage:b"),
            code("total = draws.sum() + more.sum() + luck", "stage:c"),
        ),
        tmp_path / "nb.ipynb",
    )
    result = cli("verify", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["identical"] and report["stages"] == 3
    unseeded = {d["variable"] for d in report["differences"]}
    assert unseeded == {"luck"}  # `random` is never seeded; NumPy's draws match
    assert all(d["unseeded"] for d in report["differences"])
    assert report["folder"] == ""  # nothing to look into: removed


@pytest.mark.slow
def test_a_notebook_that_fails_by_itself_is_said_so(tmp_path):
    path = write(
        notebook(code("x = 1", "stage:a"), code("1 / 0", "skip"), code("y = x", "stage:b")),
        tmp_path / "nb.ipynb",
    )
    result = cli("verify", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "the notebook itself does not run top to bottom: cell 1 raised ZeroDivisionError" in (
        result.stderr
    )


def test_bad_input_is_exit_2(tmp_path):
    (tmp_path / "nb.ipynb").write_text("{not json")
    result = cli("verify", "nb.ipynb", cwd=tmp_path)
    assert result.returncode == 2 and "not valid notebook JSON" in result.stderr
    result = cli("verify", cwd=tmp_path)
    assert result.returncode == 2 and "Usage:" in result.stderr


def test_values_are_compared_by_what_they_are():
    array = np.arange(6.0).reshape(2, 3)
    assert equivalent(array, np.asfortranarray(array))  # the same array, laid out otherwise
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    frame["b"] = 3  # a second block, which a round trip through pickle keeps or not
    assert equivalent(frame, pd.DataFrame({"a": [1.0, 2.0], "b": [3, 3]}))
    shared = np.zeros(2)
    assert equivalent([shared, shared], [np.zeros(2), np.zeros(2)])


@pytest.mark.parametrize(
    ("expected", "got", "said"),
    [
        (
            np.zeros(4),
            np.array([0.0, 1.0, 0.0, 2.0]),
            "2 of 4 elements differ, the first at index (1,)",
        ),
        (np.zeros((2, 2)), np.zeros(3), "array shapes differ: notebook (2, 2), pipeline (3,)"),
        (
            pd.DataFrame({"age": [30.0, 0.0]}),
            pd.DataFrame({"age": [30.0, None]}),
            "1 of 2 values differ, the first at row 1, column 'age': notebook 0.0, pipeline nan",
        ),
        (
            pd.DataFrame({"a": [1]}),
            pd.DataFrame({"a": [1.0]}),
            "dtypes differ ('a': notebook int64",
        ),
        (
            {"k": 1, "j": 2},
            {"k": 1, "j": 3},
            "dict entry 'j' differs: the notebook has 2, the pipeline 3",
        ),
        ([1, 2], [1, 2, 3], "list lengths differ: notebook 2, pipeline 3"),
        (1, 1.0, "the notebook has a int, the pipeline a float"),
    ],
)
def test_a_difference_is_described(expected, got, said):
    assert said in describe(expected, got)


@pytest.mark.slow
def test_the_metrics_a_stage_logs_are_compared_too(tmp_path):
    path = write(
        notebook(
            code("import numpy as np", "setup"),
            code("x = np.arange(5.0)", "stage:a"),
            code("x += 1", "skip"),
            code("mean = float(x.mean())", "stage:b", "metrics"),
        ),
        tmp_path / "nb.ipynb",
    )
    result = cli("verify", str(path), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "stage `b` (cell 3) logs metric `mean`: the notebook has 3.0, the pipeline 2.0" in (
        result.stdout
    )
