"""Property-based tests (hypothesis): whatever cells, tags, code and metadata a notebook holds,
`check` and `convert` answer with an analysis, a bundle or one clear error, never an
unexpected exception; and every notebook `check` accepts converts to a bundle whose stage
notebooks are valid and whose code compiles as the kernel will run it.

Generated notebooks mix both tag dialects, valid and invalid; plain Python, IPython syntax and
garbage; and metadata of the wrong JSON types, as other tools and hand edits leave them.
"""

from __future__ import annotations

import ast
import json
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.inputtransformer2 import TransformerManager

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.bundle import read_bundle, write_bundle
from jupyter_mlops.cli import main
from jupyter_mlops.errors import NotebookError
from jupyter_mlops.notebooks import parse_notebook, read_notebook

PYTHON = {"name": "python3", "display_name": "Python 3", "language": "python"}
STAGES = ["load", "train", "report", "a1"]
VARIABLES = ["x", "y", "df", "model", "données"]
# Sizes that keep the whole module under a minute.
FAST = settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])

names = st.sampled_from(STAGES)
variables = st.sampled_from(VARIABLES)
literals = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

valid_tags = st.one_of(
    st.sampled_from(
        [
            *("parameters", "setup", "skip", "metrics"),
            *("imports", "functions", "pipeline-parameters", "pipeline-metrics"),
        ]
    ),
    st.builds("{}:{}".format, st.sampled_from(["stage", "block", "step", "after", "prev"]), names),
    st.builds("model:{}".format, variables),
)
invalid_tags = st.one_of(
    st.text(max_size=12),
    st.builds("{}:{}".format, st.sampled_from(["stage", "after", "model", "step"]), st.text()),
    st.just("stage:" + "a" * 120),
)
tags = st.lists(st.one_of(valid_tags, valid_tags, invalid_tags), max_size=3)

python_lines = st.one_of(
    st.builds("{} = {!r}".format, variables, literals),
    st.builds("{}: int = {!r}  # a help text".format, variables, st.integers()),
    st.builds("{} = {} + 1".format, variables, variables),
    st.builds("{}.append({})".format, variables, variables),
    st.builds("{}.fit({}, {})".format, variables, variables, variables),
    st.builds("print({})".format, variables),
    st.builds("def helper():\n    return {}".format, variables),
    st.builds("{} = lambda v: v + {}".format, variables, variables),
    st.builds("{} = [{} for i in range(3)]".format, variables, variables),
    st.sampled_from(
        [
            "import math",
            "from math import *",
            "exec('q = 1')",
            "x += 1",
            "del x",
            "for i in range(3):\n    y = i",
            "class K:\n    a = 1",
            "x = 1e999",
            "if (n := 3) > 2:\n    x = n",
        ]
    ),
)
ipython_lines = st.one_of(
    st.builds("%time {} = 1".format, variables),
    st.builds("{} = !ls".format, variables),
    st.sampled_from(
        [
            "!echo hi",
            "%%bash\necho hi",
            "%matplotlib inline",
            "x?",
            "%run other.ipynb",
            "%%capture captured\nprint(1)",
            "%load_ext autoreload",
        ]
    ),
)
garbage = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["(", "x = (", "def f(:", "x = 1\x00", "'''", "\tx = 1", "return 5", "await f()", "break"]
    ),
    st.just("x = " + " + ".join(["x"] * 1200)),
)
sources = st.lists(st.one_of(python_lines, ipython_lines, garbage), max_size=3).map("\n".join)


@st.composite
def cells(draw: st.DrawFn) -> dict[str, Any]:
    cell_type = draw(st.sampled_from(["code", "code", "code", "markdown", "raw"]))
    cell: dict[str, Any] = {"cell_type": cell_type, "metadata": {}, "source": draw(sources)}
    cell_tags = draw(tags)
    if cell_tags:
        cell["metadata"]["tags"] = cell_tags
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


settings_metadata = st.fixed_dictionaries(
    {},
    optional={
        "pipeline": st.one_of(st.sampled_from(["demo", "../x", "", ".hidden"]), st.text()),
        "model_name": st.text(max_size=5),
        "fit_data": st.dictionaries(variables, sources, max_size=1),
        "surprise": st.integers(),
    },
)
notebook_metadata = st.fixed_dictionaries(
    {},
    optional={
        "kernelspec": st.sampled_from(
            [PYTHON, {"name": "ir", "language": "R", "display_name": "R"}, "python3", {}]
        ),
        "jupyter_mlops": st.one_of(settings_metadata, st.text(max_size=3)),
    },
)


@st.composite
def notebooks(draw: st.DrawFn) -> dict[str, Any]:
    content = {
        "cells": draw(st.lists(cells(), max_size=8)),
        "metadata": draw(notebook_metadata),
        "nbformat": 4,
        "nbformat_minor": draw(st.sampled_from([4, 5])),
    }
    if content["nbformat_minor"] == 5:
        for index, cell in enumerate(content["cells"]):
            cell["id"] = f"cell-{index}"
    return content


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
# Where other tools and hand edits put values of the wrong type.
FIELDS = [
    ("metadata", "kernelspec"),
    ("metadata", "language_info"),
    ("metadata", "jupyter_mlops"),
    ("cell", "metadata"),
    ("cell", "tags"),
    ("cell", "source"),
    ("cell", "cell_type"),
    ("cell", "outputs"),
    ("cell", "id"),
]


def _set(content: dict[str, Any], field: tuple[str, str], value: Any) -> None:
    where, key = field
    if where == "metadata":
        content["metadata"][key] = value
    elif content["cells"]:
        cell = content["cells"][0]
        (cell["metadata"] if key == "tags" else cell)[key] = value


def _analysis_or_clear_error(content: dict[str, Any]) -> Any:
    """The analysis of notebook JSON, or None when it is refused with a NotebookError."""
    try:
        nb = parse_notebook(json.loads(json.dumps(content)), "generated.ipynb")
    except NotebookError:
        return None
    analysis = analyze_notebook(nb, "generated.ipynb")
    json.dumps(analysis.to_dict())  # what the server's analyze endpoint sends
    return analysis


@FAST
@given(notebooks())
def test_analysis_never_raises(content: dict[str, Any]):
    _analysis_or_clear_error(content)


@FAST
@given(notebooks(), st.sampled_from(FIELDS), json_values)
def test_fields_of_the_wrong_type_are_analysed_or_refused_clearly(
    content: dict[str, Any], field: tuple[str, str], value: Any
):
    _set(content, field, value)
    _analysis_or_clear_error(content)


valid_notebook_text = json.dumps(
    {
        "cells": [{"cell_type": "code", "metadata": {"tags": ["stage:a"]}, "source": "x = 1"}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 4,
    }
)


@FAST
@given(
    st.one_of(
        st.binary(max_size=200),
        st.integers(0, len(valid_notebook_text)).map(lambda n: valid_notebook_text[:n].encode()),
        st.tuples(st.integers(0, len(valid_notebook_text) - 1), st.characters()).map(
            lambda edit: (
                valid_notebook_text[: edit[0]] + edit[1] + valid_notebook_text[edit[0] + 1 :]
            ).encode("utf-8", "surrogatepass")
        ),
    )
)
def test_any_bytes_are_a_notebook_or_a_clear_error(raw: bytes):
    try:
        nb = parse_notebook(raw, "generated.ipynb")
    except NotebookError:
        return
    analyze_notebook(nb, "generated.ipynb")


_ipython = TransformerManager()


def _assert_bundle_parses(out: Path, analysis: Any) -> None:
    bundle = read_bundle(out)
    assert bundle.stage_names == [s.name for s in analysis.stages]
    assert [(p.name, p.type) for p in bundle.parameters] == [
        (p.name, p.type) for p in analysis.parameters
    ]
    for stage in bundle.stages:
        stage_notebook = nbformat.read(bundle.notebook_path(stage.name), as_version=4)
        nbformat.validate(stage_notebook)
        for cell in stage_notebook.cells:
            if cell.cell_type == "code":  # as IPython runs it: its syntax, top-level await
                python = _ipython.transform_cell(cell.source)
                compile(python, cell.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@SLOWER
@given(notebooks())
def test_accepted_notebooks_convert_to_bundles_that_parse(content: dict[str, Any]):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.ipynb"
        path.write_text(json.dumps(content), encoding="utf-8")
        source = read_notebook(path)
        analysis = analyze_notebook(source.nb, path)
        out = Path(folder) / "bundle"
        if analysis.errors:
            with pytest.raises(NotebookError):
                write_bundle(source, analysis, out)
            assert not out.exists()
            return
        write_bundle(source, analysis, out)
        _assert_bundle_parses(out, analysis)


@SLOWER
@given(notebooks())
def test_the_commands_exit_only_with_documented_codes(content: dict[str, Any]):
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.ipynb"
        path.write_text(json.dumps(content), encoding="utf-8")
        check = runner.invoke(main, ["check", str(path)])
        convert = runner.invoke(main, ["convert", str(path), "-o", str(Path(folder) / "out")])
    for result in (check, convert):
        assert isinstance(result.exception, SystemExit | None), result.output
        assert "This is a bug" not in result.output and "Traceback" not in result.output
    assert check.exit_code in (0, 1)  # the file is a notebook: 2 is for unreadable ones
    assert convert.exit_code == (0 if check.exit_code == 0 else 2), convert.output
