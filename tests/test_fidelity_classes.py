"""The ways a split used to compute something else than its notebook, each as its minimal
reproduction: the notebook is run as a pipeline by the real command, and the value a later
stage got is compared with what the notebook computes (written here as a literal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, code, notebook, write

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.artifacts import open_store
from jupyter_mlops.report import check_report

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *cells, names: list[str]) -> dict:
    """Run the notebook as a pipeline; the values `names` have where a last stage reads them."""
    reader = code(f"read_back = ({', '.join(names)},)", "stage:read_back")
    nb = notebook(*cells, reader)
    path = write(nb, tmp_path / "nb.ipynb")
    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"  # not the default store
    (tmp_path / "elsewhere").mkdir()
    result = cli("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [state] = (tmp_path / "mlops-runs").glob("*/*/run.json")
    store = open_store(state.parent / "artifacts")
    producers = analyze_notebook(nb).stage("read_back").inputs
    return {name: store.load(producers[name], [name])[name] for name in names}


KALE_SKIP = (
    code("import pandas as pd", "imports"),
    code("df = pd.DataFrame({'age': [30.0, None]})", "block:load"),
    code("df.head()", "skip"),
    code("df['age'] = df['age'].fillna(0)"),
    code("total = int(df['age'].astype(int).sum())", "block:use", "prev:load"),
)


def test_1_an_untagged_cell_after_a_kale_skip_cell_belongs_to_the_step_before(tmp_path):
    analysis = analyze_notebook(notebook(*KALE_SKIP))
    assert analysis.stage("load").cells == [1, 3]
    report = check_report(analysis, "nb.ipynb")
    assert "cell 3 follows skip cell 2: it runs in this stage" in report
    # Before: cell 3 was skipped, and `use` failed with IntCastingNaNError.
    assert run(tmp_path, *KALE_SKIP, names=["total"]) == {"total": 30}


def test_1_the_native_skip_tag_skips_its_own_cell_only():
    analysis = analyze_notebook(
        notebook(
            code("x = [1]", "stage:a"),
            code("x", "skip"),
            code("x.append(2)"),
            code("y = x", "setup"),  # setup keeps its context: cells after it are setup
        )
    )
    assert analysis.stage("a").cells == [0, 2]
    assert analysis.cells[2].after_skip == 1


def test_2_functions_look_their_globals_up_where_they_are_called(tmp_path):
    values = run(
        tmp_path,
        code("scale = 2\ndef f(x):\n    return x * scale", "stage:a"),
        code("scale = 3\nresult = f(1)", "stage:b"),
        code("def is_lda(est):\n    return isinstance(est, LDA)", "stage:c"),
        code(
            "from sklearn.discriminant_analysis import LinearDiscriminantAnalysis as LDA\n"
            "flag = is_lda(LDA())",
            "stage:d",
        ),
        code("class Box:\n    def __init__(self, v):\n        self.v = v * scale", "stage:e"),
        code("box = Box(1)", "stage:f"),
        code("scale = 10\nsame_class = isinstance(box, Box)\nagain = Box(1).v", "stage:g"),
        names=["again", "flag", "result", "same_class"],
    )
    # Before: `result` was 2 (f carried scale = 2 with it) and `is_lda` was refused.
    assert values == {"result": 3, "flag": True, "same_class": True, "again": 10}


def test_2_a_function_defined_in_one_stage_is_defined_again_where_it_is_used():
    analysis = analyze_notebook(
        notebook(
            code("def helper(x):\n    return x + offset", "stage:a"),
            code("offset = 1", "stage:b"),
            code("y = helper(1)", "stage:c"),
        )
    )
    assert not analysis.errors
    c = analysis.stage("c")
    assert c.definitions == {"helper": 0}  # its code, not a pickled value
    assert c.inputs == {"offset": "b"}  # read when helper is called


def test_3_random_state_and_library_settings_carry_into_later_stages(tmp_path):
    values = run(
        tmp_path,
        code("import numpy as np\nimport sklearn\nimport os", "setup"),
        code(
            "np.random.seed(0)\nsklearn.set_config(transform_output='pandas')\n"
            "sklearn.set_config(enable_metadata_routing=True)\nos.environ['MY_FLAG'] = 'on'",
            "stage:a",
        ),
        code(
            "import pandas as pd\nfrom sklearn.preprocessing import StandardScaler\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "draw = float(np.random.rand())\n"
            "scaled = StandardScaler().fit_transform(pd.DataFrame({'x': [1.0, 2.0]}))\n"
            "kind = type(scaled).__name__\n"
            "routed = LogisticRegression().set_fit_request(sample_weight=True) is not None\n"
            "flag = os.environ.get('MY_FLAG')",
            "stage:b",
        ),
        code("second = float(np.random.rand())", "stage:c"),
        names=["draw", "flag", "kind", "routed", "second"],
    )
    # Before: 0.8205 (a fresh generator), a NumPy array, a RuntimeError, and None.
    assert values == {
        "draw": 0.5488135039273248,
        "kind": "DataFrame",
        "routed": True,
        "flag": "on",
        "second": 0.7151893663724195,
    }


def test_3_a_setting_inside_a_block_is_reported_with_a_fix():
    analysis = analyze_notebook(
        notebook(
            code("import pandas as pd", "setup"),
            code("if True:\n    pd.set_option('display.max_rows', 5)", "stage:a"),
            code("x = 1", "stage:b"),
        )
    )
    [warning] = analysis.warnings
    assert warning.code == "state-not-carried" and warning.cell == 1
    assert "setup" in warning.message


def test_4_a_change_through_an_alias_reaches_later_stages(tmp_path):
    values = run(
        tmp_path,
        code("import pandas as pd", "setup"),
        code(
            "df = pd.DataFrame({'age': [30.0, None]})\nframes = [df]\n"
            "def double(frame):\n    frame['age'] *= 2",
            "stage:a",
        ),
        code("for d in [df]:\n    d['age'] = d['age'].fillna(0)", "stage:b"),
        code("frames[0]['age'] = frames[0]['age'] + 1", "stage:c"),
        code("double(df)", "stage:d"),
        code("total = float(df['age'].sum())", "stage:e"),
        names=["total"],
    )
    # Before: e got a's frame with its NaN: 30.0.
    assert values == {"total": 64.0}


def test_4_a_function_that_changes_its_argument_changes_the_callers_value():
    analysis = analyze_notebook(
        notebook(
            code("import pandas as pd\ndef clean(frame):\n    frame.dropna(inplace=True)", "setup"),
            code("df = pd.DataFrame({'a': [1.0, None]})", "stage:a"),
            code("clean(df)", "stage:b"),
            code("n = len(df)", "stage:c"),
        )
    )
    assert not analysis.diagnostics and analysis.stage("c").inputs == {"df": "b"}


def test_5_values_pickle_cannot_carry_cross_by_their_codecs(tmp_path):
    values = run(
        tmp_path,
        code("import numpy as np\nimport xgboost as xgb\nimport lightgbm as lgb", "setup"),
        code(
            "import torch\n"
            "X = np.arange(40, dtype=float).reshape(20, 2)\ny = (X[:, 0] > 20).astype(float)\n"
            "dtrain = xgb.DMatrix(X, label=y)\ndataset = lgb.Dataset(X, label=y)\n"
            "class Net(torch.nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.linear = torch.nn.Linear(2, 1)\n"
            "    def forward(self, x):\n"
            "        return self.linear(x)\n"
            "torch.manual_seed(0)\nnet = Net()\ninputs = torch.ones(4, 2)",
            "stage:make",
        ),
        code(
            "rounds = xgb.train({}, dtrain, num_boost_round=3).num_boosted_rounds()\n"
            "features = lgb.train({'verbose': -1}, dataset, 2).num_feature()\n"
            "rows = dataset.num_data()\n"
            "output = round(float(net(inputs).sum().detach()), 6)\n"
            "weights = isinstance(net.linear.weight, torch.nn.Parameter)",
            "stage:use",
        ),
        names=["features", "output", "rounds", "rows", "weights"],
    )
    import torch

    torch.manual_seed(0)
    linear = torch.nn.Linear(2, 1)
    expected = round(float(linear(torch.ones(4, 2)).sum().detach()), 6)
    # Before: "ctypes objects containing pointers cannot be pickled" for both datasets.
    assert values == {"rounds": 3, "features": 2, "rows": 20, "output": expected, "weights": True}


def test_6_warnings_are_only_what_the_user_should_act_on():
    analysis = analyze_notebook(
        notebook(
            code("import json\nimport numpy as np\nx = np.zeros(2)", "stage:a"),
            code("text = json.dumps(list(x))", "stage:b"),
        )
    )
    assert analysis.diagnostics == []  # no `import-in-stage`: the module travels by name


def test_4_a_random_generator_object_is_changed_wherever_it_is_used():
    """sklearn's precision-recall example: one `RandomState` drawn from by every stage."""
    analysis = analyze_notebook(
        notebook(
            code("import numpy as np\nfrom sklearn.svm import LinearSVC", "setup"),
            code("rng = np.random.RandomState(0)\nX = rng.randn(10, 2)", "stage:a"),
            code("model = LinearSVC(random_state=rng)", "stage:b"),  # holds it
            code("model.fit(X, X[:, 0] > 0)", "stage:c"),  # draws from it
            code("noise = rng.randn(3)", "stage:d"),
        )
    )
    assert analysis.stage("b").inputs == {"rng": "a"}
    assert analysis.stage("d").inputs["rng"] == "c"  # where the notebook left it
    assert "X" not in analysis.stage("b").outputs  # drawn with it, not holding it


def test_2_what_a_definition_needs_is_loaded_before_it_is_defined():
    analysis = analyze_notebook(
        notebook(
            code("from sklearn.base import BaseEstimator", "stage:a"),
            code("class Model(BaseEstimator):\n    pass", "stage:b"),
            code("class Other(BaseEstimator):\n    pass\nm = Model()", "stage:c"),
        )
    )
    assert analysis.stage("c").definitions == {"Model": 1}
    assert analysis.stage("c").early_inputs == ["BaseEstimator"]


def test_4_a_builtin_name_the_notebook_binds_is_handed_over():
    """SciPy's batched linear algebra tutorial calls an array `input`."""
    analysis = analyze_notebook(
        notebook(
            code("input = [1, 2]", "stage:a"),
            code("n = len(input)\nprint(n)", "stage:b"),
        )
    )
    assert analysis.stage("b").inputs == {"input": "a"}


def analysis_of(*cells):
    return analyze_notebook(notebook(*cells))


def test_2_a_default_value_keeps_the_value_of_its_own_stage():
    """`def f(x, s=scale)`: the default was computed where f was defined; f travels pickled."""
    analysis = analysis_of(
        code("scale = 2\ndef f(x, s=scale):\n    return x * s", "stage:a"),
        code("scale = 3", "stage:b"),
        code("print(f(1))", "stage:c"),
    )
    assert analysis.stage("c").definitions == {} and analysis.stage("c").inputs == {"f": "a"}


def test_2_definitions_of_one_cell_keep_their_order():
    analysis = analysis_of(
        code("class Base:\n    k = 1\nclass Child(Base):\n    pass", "stage:a"),
        code("k = Child().k", "stage:b"),
    )
    assert list(analysis.stage("b").definitions) == ["Base", "Child"]


def test_2_calling_a_function_changes_what_it_changes():
    analysis = analysis_of(
        code("import numpy as np", "setup"),
        code(
            "results = []\nn = 0\ndef log(x):\n    global n\n    n += 1\n    results.append(x)",
            "stage:a",
        ),
        code("def set_seed(s):\n    np.random.seed(s)", "stage:b"),
        code("log(1)\nset_seed(0)", "stage:c"),
        code("print(results, n, np.random.rand())", "stage:d"),
    )
    d = analysis.stage("d")
    assert d.inputs == {"n": "c", "results": "c", "__mlops_random_state__": "c"}
    assert analysis.random_generators == ["numpy"]


def test_2_long_chains_of_functions_stay_within_pythons_limits():
    chain = [code("def f0():\n    return 0", "stage:a")]
    chain += [code(f"def f{i}():\n    return f{i - 1}()") for i in range(1, 1500)]
    analysis = analysis_of(*chain, code("x = f1499()", "stage:b"))
    assert len(analysis.stage("b").definitions) == 1500


def test_3_a_setting_is_replayed_alone_and_scoped_ones_are_not_settings():
    analysis = analysis_of(
        code("import os\nimport warnings\nimport pandas as pd", "setup"),
        code(
            "df = pd.DataFrame({'a': [1.0]}).assign(p=os.environ.setdefault('P', '1'))\n"
            "with warnings.catch_warnings():\n    warnings.simplefilter('ignore')",
            "stage:a",
        ),
        code("df['a'] = 2.0", "stage:b"),
        code("print(df)", "stage:c"),
    )
    assert analysis.diagnostics == []  # the `with` restores the filters: nothing to carry
    assert analysis.stage("c").replay == ["# cell 1 (stage `a`)\nos.environ.setdefault('P', '1')"]
    assert analysis.stage("c").inputs == {"df": "b"}  # not rebound by the replay
