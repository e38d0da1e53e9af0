"""The analysis on small notebooks built here: each tag, both dialects, each diagnostic."""

import pytest
from conftest import code, md, notebook

from jupyter_mlops.analysis import analyze_notebook, default_pipeline_name


def analyze(*cells, path="My Notebook.ipynb", **settings):
    return analyze_notebook(notebook(*cells, **settings), path)


def codes(analysis, severity="error"):
    return [d.code for d in analysis.diagnostics if d.severity == severity]


def test_stages_and_handover():
    a = analyze(
        code("import numpy as np", "setup"),
        code("n: int = 10  # rows", "parameters"),
        code("x = np.arange(n)\ny = x * 2", "stage:load"),
        code("total = x.sum() + y.sum()", "stage:train"),
    )
    assert not a.errors
    load, train = a.stages
    assert load.outputs == ["x", "y"] and load.parameters == ["n"]
    assert train.inputs == {"x": "load", "y": "load"} and train.upstream == ["load"]
    assert [(e.source, e.target, e.variables) for e in a.edges] == [("load", "train", ("x", "y"))]
    assert a.setup_cells == [0]
    assert a.imports == ["numpy"]


def test_untagged_cells_continue_the_current_stage_and_markdown_does_not_break_it():
    a = analyze(
        code("a = 1", "stage:first"),
        md("## notes"),
        code("b = a + 1"),
        code("c = b", "stage:second"),
    )
    assert a.stage("first").cells == [0, 2]
    assert a.stage("second").inputs == {"b": "first"}
    assert a.cells[1].role == "markdown"


def test_a_value_comes_from_the_last_stage_that_touched_it():
    a = analyze(
        code("data = [1]", "stage:load"),
        code("data.append(2)", "stage:clean"),
        code("n = len(data)", "stage:use"),
    )
    assert a.stage("clean").inputs == {"data": "load"}
    assert a.stage("use").inputs == {"data": "clean"}
    assert a.stage("clean").outputs == ["data"]
    assert a.stage("load").outputs == ["data"]


def test_mutation_through_attributes_subscripts_and_augmented_assignment():
    a = analyze(
        code(
            "cfg = {}\ncount = 0\nfrom types import SimpleNamespace\nns = SimpleNamespace()",
            "stage:make",
        ),
        code("cfg['k'] = 1\ncount += 1\nns.value = 3", "stage:change"),
        code("print(cfg, count, ns)", "stage:read"),
    )
    assert a.stage("read").inputs == {"cfg": "change", "count": "change", "ns": "change"}


def test_calls_into_imported_modules_are_not_mutations():
    a = analyze(
        code("import numpy as np", "setup"),
        code('x = np.zeros(3)\nnp.save("x.npy", x)', "stage:a"),
        code("y = np.ones(2)", "stage:b"),
    )
    assert a.stage("b").inputs == {}
    assert a.stage("a").outputs == []


def test_non_contiguous_stage_cells_are_joined():
    a = analyze(
        code("a = 1", "block:one"),
        code("b = 2", "block:two"),
        code("a2 = a * 10", "block:one"),
        code("print(a2, b)", "block:three"),
    )
    assert a.stage("one").cells == [0, 2]
    assert a.stage("three").inputs == {"a2": "one", "b": "two"}


def test_kale_dialect_notebook():
    a = analyze(
        code("import math", "imports"),
        code("def helper(v):\n    return math.sqrt(v)", "functions"),
        code("rate = 0.5", "pipeline-parameters"),
        code("x = helper(4) * rate", "block:load"),
        code("y = x + 1", "block:train", "prev:load"),
        code("print(y)", "pipeline-metrics"),
        code("plot(x)", "skip"),
    )
    assert not a.errors, a.errors
    assert a.setup_cells == [0, 1]
    assert [p.name for p in a.parameters] == ["rate"]
    assert a.stage("train").after == ["load"]
    assert a.stage("train").metrics == ["y"]
    assert a.cells[6].role == "skip"


def test_setup_cells_run_in_every_stage_and_may_read_parameters():
    a = analyze(
        code("seed = 1", "parameters"),
        code("import random\nrandom.seed(seed)", "setup"),
        code("a = random.random()", "stage:one"),
        code("b = 2", "stage:two"),
    )
    assert not a.errors
    assert a.stage("two").parameters == ["seed"]


def test_setup_cell_reading_a_stage_value_is_an_error():
    a = analyze(code("a = 1", "stage:one"), code("print(a)", "setup"))
    assert codes(a) == ["setup-reads-stage"]
    assert a.errors[0].cell == 1 and a.errors[0].related_cell == 0


def test_reading_a_name_defined_only_in_a_skip_cell_names_both_cells():
    a = analyze(
        code("a = 1", "stage:one"),
        code("scratch = 5", "skip"),
        code("print(scratch)", "stage:two"),
    )
    error = a.errors[0]
    assert error.code == "defined-outside-pipeline"
    assert (error.cell, error.related_cell) == (2, 1)
    assert "cell 1" in error.message


def test_cells_before_the_first_stage_are_warned_about():
    a = analyze(code("import os\nroot = os.getcwd()"), code("print(root)", "stage:one"))
    assert "unassigned-cell" in codes(a, "warning")
    assert codes(a) == ["defined-outside-pipeline"]


def test_name_defined_by_a_later_stage():
    a = analyze(code("print(later)", "stage:one"), code("later = 1", "stage:two"))
    assert codes(a) == ["defined-later"]
    assert a.errors[0].related_cell == 1


def test_name_defined_nowhere():
    a = analyze(code("print(mystery)", "stage:one"))
    assert codes(a) == ["undefined-name"]
    assert a.errors[0].line == 1


def test_undefined_names_are_only_warnings_with_star_imports():
    a = analyze(code("from math import *", "setup"), code("print(pi)", "stage:one"))
    assert not a.errors
    assert "maybe-undefined" in codes(a, "warning")


def test_function_bodies_may_use_names_defined_later_in_the_stage():
    a = analyze(
        code("def area():\n    return width * 2\nwidth = 3\nresult = area()", "stage:one"),
    )
    assert not a.errors


def test_function_reading_an_upstream_value():
    a = analyze(
        code("scale = 3", "stage:one"),
        code("def f(v):\n    return v * scale\nout = f(2)", "stage:two"),
    )
    assert a.stage("two").inputs == {"scale": "one"}


def test_magics_shell_lines_and_cell_magics():
    a = analyze(
        code("%matplotlib inline\nimport pandas as pd", "setup"),
        code("files = !ls\ncount = len(files)", "stage:one"),
        code("%%bash\necho hello", "stage:two"),
        code("%%capture captured\nprint(count)", "stage:three"),
    )
    assert not a.errors, a.errors
    assert a.stage("three").inputs == {"count": "one"}


def test_unknown_after_target_with_suggestion():
    a = analyze(code("a = 1", "stage:load"), code("b = 1", "stage:train", "after:lod"))
    assert codes(a) == ["unknown-after"]
    assert "did you mean `load`" in a.errors[0].message and a.errors[0].cell == 1


def test_self_dependency():
    a = analyze(code("a = 1", "stage:one", "after:one"))
    assert codes(a) == ["self-dependency"]


def test_cycle_through_after_tags():
    a = analyze(
        code("a = 1", "stage:one", "after:two"),
        code("b = a", "stage:two"),
    )
    assert codes(a) == ["cycle"]
    assert "`one`" in a.errors[0].message and "`two`" in a.errors[0].message
    assert a.errors[0].cell == 0


def test_after_changes_run_order():
    a = analyze(code("a = 1", "stage:one", "after:two"), code("b = 2", "stage:two"))
    assert [s.name for s in a.stages] == ["two", "one"]
    assert a.edges[0].explicit


def test_invalid_stage_name():
    a = analyze(code("a = 1", "stage:Load Data"))
    assert codes(a) == ["invalid-tag"]
    assert "load_data" in a.errors[0].message


def test_conflicting_roles():
    a = analyze(code("a = 1", "stage:one", "skip"))
    assert "conflicting-tags" in codes(a)


def test_parameters_cell_with_calls_or_imports():
    for source in ("import os\nx = 1", "x = int('3')"):
        a = analyze(code(source, "parameters"), code("y = 1", "stage:one"))
        assert codes(a) == ["bad-parameters"]
        assert a.errors[0].cell == 0 and a.errors[0].line


def test_two_parameters_cells():
    a = analyze(code("a = 1", "parameters"), code("b = 2", "parameters"), code("c = a", "stage:s"))
    assert codes(a) == ["two-parameters-cells"]
    assert (a.errors[0].cell, a.errors[0].related_cell) == (1, 0)


def test_syntax_error_in_a_stage():
    a = analyze(code("x = (1,", "stage:one"))
    assert codes(a) == ["syntax-error"]


def test_syntax_error_in_a_skip_cell_is_ignored():
    a = analyze(code("x = 1", "stage:one"), code("this is not python", "skip"))
    assert not a.errors


def test_no_stages_and_no_cells():
    assert codes(analyze(code("x = 1"))) == ["no-stages"]
    assert codes(analyze()) == ["no-cells"]
    assert codes(analyze(code("x = 1", "skip"))) == ["no-stages"]


def test_non_python_kernel():
    nb = notebook(code("x <- 1", "stage:one"))
    nb.metadata.kernelspec = {"name": "ir", "language": "R", "display_name": "R"}
    a = analyze_notebook(nb, "r.ipynb")
    assert "not-python" in codes(a)


def test_tags_that_need_a_stage():
    a = analyze(code("acc = 1", "setup", "metrics"), code("x = 1", "stage:one"))
    assert codes(a) == ["tag-outside-stage"]


def test_models_and_their_training_data():
    a = analyze(
        code("from sklearn.linear_model import LinearRegression", "setup"),
        code("X = [[1], [2]]\ny = [1, 2]", "stage:data"),
        code("reg = LinearRegression()\nreg.fit(X, y)", "stage:train", "model:reg"),
    )
    assert a.stage("train").models == {"reg": "X"}


def test_model_fit_in_an_earlier_stage_pulls_its_data_in():
    a = analyze(
        code("X = [[1]]\ny = [1]", "stage:data"),
        code(
            "class M:\n    def fit(self, a, b):\n        return self\nm = M()\nm.fit(X, y)",
            "stage:train",
        ),
        code("best = m", "stage:pick", "model:best", "model:m"),
    )
    pick = a.stage("pick")
    assert pick.models == {"best": None, "m": "X"}
    assert pick.inputs == {"X": "data", "m": "train"}
    assert "no-input-example" in codes(a, "warning")


def test_model_fit_data_from_notebook_metadata():
    a = analyze(
        code("X = [[1]]\nnet = object()", "stage:train", "model:net"),
        fit_data={"net": "X"},
    )
    assert a.stage("train").models == {"net": "X"}


def test_model_tag_for_a_variable_the_stage_never_sets():
    a = analyze(code("x = 1", "stage:one", "model:clf"))
    assert codes(a) == ["model-undefined"]


def test_metrics_cell_names():
    a = analyze(
        code("acc = 0.9\nloss = 0.1\nprint(acc)", "stage:evaluate", "metrics"),
    )
    assert a.stage("evaluate").metrics == ["acc", "loss"]


def test_importing_in_one_stage_and_using_in_another_hands_the_module_over_quietly():
    a = analyze(code("import json\nj = 1", "stage:one"), code("json.dumps(j)", "stage:two"))
    assert codes(a, "warning") == []  # modules travel by name: nothing to act on
    assert a.stage("two").inputs == {"j": "one", "json": "one"}


def test_settings_and_defaults():
    a = analyze(code("x = 1", "stage:one"), path="Churn Model v2.ipynb")
    assert a.settings.pipeline == "churn-model-v2"
    assert a.settings.experiment == a.settings.model_name == "churn-model-v2"
    b = analyze(code("x = 1", "stage:one"), pipeline="p", experiment="e", model_name="m")
    assert (b.settings.pipeline, b.settings.experiment, b.settings.model_name) == ("p", "e", "m")
    c = analyze(code("x = 1", "stage:one"), pipeline=3, colour="red")
    assert "bad-settings" in codes(c) and "unknown-setting" in codes(c, "warning")


def test_default_pipeline_name():
    assert default_pipeline_name(None) == "pipeline"
    assert default_pipeline_name("___.ipynb") == "pipeline"


def test_json_form_has_everything_the_ui_needs():
    a = analyze(code("x = 1", "stage:one"), code("y = x", "stage:two"))
    data = a.to_dict()
    assert data["ok"] is True
    assert data["edges"] == [
        {"source": "one", "target": "two", "variables": ["x"], "explicit": False}
    ]
    assert data["cells"][1]["reads"] == ["x"]


@pytest.mark.parametrize("bad", [{"tags": "stage:a"}, {"tags": None}])
def test_malformed_tag_metadata_is_tolerated(bad):
    nb = notebook(code("x = 1", "stage:one"), code("y = 2"))
    nb.cells[1].metadata = bad
    assert not analyze_notebook(nb).errors
