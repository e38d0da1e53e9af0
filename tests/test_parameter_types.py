"""Parameter values reach the stage exactly as they were checked, whichever way they came.

Through the Jupyter server (JSON in, parameters.json to the runner), `-f` JSON and YAML files
and `-p` text: `1e-05` stays a float (YAML 1.1 reads it as a string), a string that looks
like a number stays a string, an emoji survives JSON's escapes. Defaults a run could not
pass on are refused by `check`, and so by `convert`, `run` and the server, before anything
is written. One small notebook, one stage, one kernel per run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import cli, code, notebook, wait_for, write
from mlflow import MlflowClient
from mlflow_helpers import client_for, pipeline_runs

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.bundle import read_bundle, write_bundle
from jupyter_mlops.errors import BadInput, NotebookError
from jupyter_mlops.notebooks import read_notebook
from jupyter_mlops.parameters import (
    load_yaml,
    parse_parameters,
    read_values_file,
    resolve,
    values_json_text,
    values_yaml_text,
)

BIG = 2**70
# What each way of giving values must deliver: the kind of value a learning rate, a bound
# and a label are, and strings that YAML 1.1 or JSON's escapes used to change.
VALUES = {
    "lr": 1e-05,
    "huge": 1e100,
    "not_a_number": math.nan,
    "infinite": math.inf,
    "negative_zero": -0.0,
    "big": BIG,
    "text": "héllo 😀",
    "tag": "1e-05",  # a string parameter: stays the string
    "anything": [1e-05, "NaN"],
}
PARAMETERS_CELL = "\n".join(
    [
        "lr: float = 0.001",
        "huge: float = 1.0",
        "not_a_number: float = 0.0",
        "infinite: float = 0.0",
        "negative_zero: float = 0.0",
        "big: int = 1",
        "text: str = 'plain'",
        "tag: str = 'v1'",
        "anything = None",
    ]
)
PAIRS_IN_STAGE = ", ".join(f"({name!r}, {name})" for name in VALUES)
STAGE = (
    "import json\n"
    f"seen = {{name: [type(v).__name__, repr(v)] for name, v in [{PAIRS_IN_STAGE}]}}\n"
    "print('SEEN ' + json.dumps(seen))"
)


def typed(value: object) -> list[str]:
    return [type(value).__name__, repr(value)]


def expected_in_stage() -> dict[str, list[str]]:
    return {name: typed(value) for name, value in VALUES.items()}


def expected_params() -> dict[str, str]:
    """What MLflow shows: `str(value)`, lists as JSON."""
    return {
        name: json.dumps(value) if isinstance(value, list) else str(value)
        for name, value in VALUES.items()
    }


def typed_notebook(path: Path) -> Path:
    return write(notebook(code(PARAMETERS_CELL, "parameters"), code(STAGE, "stage:show")), path)


def seen_in_stage(run_dir: Path) -> dict[str, list[str]]:
    """The values the stage printed, from its executed notebook."""
    executed = nbformat.read(run_dir / "notebooks" / "01_show.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            if text.startswith("SEEN "):
                return json.loads(text[len("SEEN ") :])
    raise AssertionError(f"the stage printed no values in {run_dir}")


def only_run_dir(runs: Path, pipeline: str) -> Path:
    (folder,) = (runs / pipeline).iterdir()
    return folder


def assert_logged_exactly(folder: Path, pipeline: str) -> None:
    parent, children = pipeline_runs(client_for(folder), pipeline)
    assert parent.info.status == "FINISHED"
    assert parent.data.params == expected_params()
    assert children["show"].data.params == expected_params()


# --- through the Jupyter server -------------------------------------------------------------


@pytest.mark.slow
async def test_the_server_hands_the_runner_exactly_the_values_it_checked(api, jp_root_dir):
    typed_notebook(jp_root_dir / "typed.ipynb")
    body = json.dumps({"path": "typed.ipynb", "parameters": VALUES})  # NaN, Infinity: as Python
    started = await api("POST", "runs", body=body, expect=202)
    run = await wait_for(api, started["id"])
    assert run["status"] == "succeeded", run.get("log_tail")
    run_dir = jp_root_dir / "mlops-runs" / "typed" / started["id"]
    assert seen_in_stage(run_dir) == expected_in_stage()
    assert_logged_exactly(jp_root_dir, "typed")
    handed = read_values_file(run_dir / "parameters.json")
    assert {k: typed(v) for k, v in handed.items()} == expected_in_stage()


async def test_the_server_refuses_values_a_run_could_not_pass_on(api, jp_root_dir):
    typed_notebook(jp_root_dir / "typed.ipynb")
    body = {"path": "typed.ipynb", "parameters": {"text": "\ud800"}}  # JSON's "\ud800"
    error = await api("POST", "runs", body=body, expect=400)
    assert "parameter `text` is not valid Unicode text" in error["message"]
    deep: list = []
    for _ in range(150):
        deep = [deep]
    body = {"path": "typed.ipynb", "parameters": {"anything": deep}}
    error = await api("POST", "runs", body=body, expect=400)
    assert "nested more than 100 levels" in error["message"]
    assert not (jp_root_dir / "mlops-runs").exists()


# --- through the command line -----------------------------------------------------------------

YAML_FILE = """\
lr: 1e-05
huge: 1e+100
not_a_number: NaN
infinite: Infinity
negative_zero: -0.0
big: 1180591620717411303424
text: "héllo \\ud83d\\ude00"
tag: '1e-05'
anything: [1e-05, 'NaN']
"""
PAIRS = [
    ("lr", "1e-05"),
    ("huge", "1e+100"),
    ("not_a_number", "NaN"),
    ("infinite", "Infinity"),
    ("negative_zero", "-0.0"),
    ("big", str(BIG)),
    ("text", "héllo 😀"),
    ("tag", "1e-05"),
    ("anything", "[1e-05, 'NaN']"),
]


@pytest.mark.slow
@pytest.mark.parametrize("way", ["-p", "yaml"])
def test_the_command_line_runs_with_exactly_the_values_given(workdir, way):
    """`-f` with a JSON file is how the server starts its runner (the test above); every way
    types the values alike (test_yaml_json_and_text_type_numbers_alike, without kernels)."""
    typed_notebook(workdir / "typed.ipynb")
    if way == "-p":
        given = [word for name, value in PAIRS for word in ("-p", name, value)]
    else:
        (workdir / "values.yaml").write_text(YAML_FILE, encoding="utf-8")
        given = ["-f", "values.yaml"]
    result = cli("run", "typed.ipynb", *given, "--jobs", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert seen_in_stage(only_run_dir(workdir / "mlops-runs", "typed")) == expected_in_stage()
    assert_logged_exactly(workdir, "typed")


def test_values_of_the_wrong_type_stop_the_run_before_anything_is_written(workdir):
    typed_notebook(workdir / "typed.ipynb")
    (workdir / "unquoted.yaml").write_text("tag: 1e-05\n")
    result = cli("run", "typed.ipynb", "-f", "unquoted.yaml", cwd=workdir)
    assert result.returncode == 2
    assert "`tag` must be a string, got 1e-05; quote it" in result.stderr
    (workdir / "lone.json").write_text('{"text": "\\ud800"}')
    result = cli("run", "typed.ipynb", "-f", "lone.json", cwd=workdir)
    assert result.returncode == 2 and "lone surrogate" in result.stderr
    assert "bug" not in result.stderr
    assert not (workdir / "mlops-runs").exists()


# --- one way to read values, one way to write them (no kernel) --------------------------------


def test_yaml_json_and_text_type_numbers_alike(tmp_path):
    declared = parse_parameters(PARAMETERS_CELL)
    (tmp_path / "v.yaml").write_text(YAML_FILE, encoding="utf-8")
    (tmp_path / "v.json").write_text(values_json_text(VALUES))  # as the server writes it
    (tmp_path / "mine.json").write_text(json.dumps(VALUES))  # "\ud83d\ude00", NaN, Infinity
    for values in (
        resolve(declared, read_values_file(tmp_path / "v.yaml")),
        resolve(declared, read_values_file(tmp_path / "v.json")),
        resolve(declared, read_values_file(tmp_path / "mine.json")),
        resolve(declared, None, PAIRS),
        load_yaml(values_yaml_text(VALUES)),  # params.yaml, pipeline.yaml
    ):
        assert {k: typed(v) for k, v in values.items()} == expected_in_stage()
    assert load_yaml("[1e5, 2E-3, .5e1, -inf, nan, 1.5, 3, 2024-01-01]") == [
        1e5,
        2e-3,
        5.0,
        -math.inf,
        pytest.approx(math.nan, nan_ok=True),
        1.5,
        3,
        "2024-01-01",  # no date can be a parameter
    ]


def test_strings_that_read_as_numbers_are_written_quoted():
    strings = ["1e-05", "NaN", "Infinity", "-inf", "2024-01-01", "yes", "1e5", "3"]
    text = values_yaml_text({"s": strings})
    assert load_yaml(text) == {"s": strings}
    assert yaml.safe_load(text) == {"s": strings}  # a YAML 1.1 reader: papermill -f params.yaml


# --- defaults a run could not pass on ---------------------------------------------------------

BAD_DEFAULTS = {
    "1j": "a complex number",
    "...": "is `...`",
    'b""': "is bytes",
    "{1, 2}": "is a set",
    "(1, 2)": "is a tuple",
    "{1: 'a'}": "has the key 1",
    "'\\ud800'": "lone surrogate",
}


def bad_default_notebook(folder: Path, default: str, name: str) -> Path:
    return write(
        notebook(code(f"rate = 0.5\nx = {default}", "parameters"), code("y = x", "stage:a")),
        folder / f"{name}.ipynb",
    )


@pytest.mark.parametrize("default", list(BAD_DEFAULTS))
def test_a_default_a_run_could_not_pass_on_is_refused_before_conversion(tmp_path, default):
    path = bad_default_notebook(tmp_path, default, "bad")
    source = read_notebook(path)
    analysis = analyze_notebook(source.nb, path)
    (error,) = analysis.errors
    assert (error.code, error.cell, error.line) == ("bad-parameters", 0, 2)
    assert "parameter `x`" in error.message and BAD_DEFAULTS[default] in error.message
    with pytest.raises(NotebookError):
        write_bundle(source, analysis, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_check_convert_and_run_refuse_bad_defaults_alike(workdir):
    paths = [bad_default_notebook(workdir, d, f"nb{i}") for i, d in enumerate(BAD_DEFAULTS)]
    result = cli("check", *[p.name for p in paths], cwd=workdir)
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if "[bad-parameters]" in line]
    assert len(errors) == len(BAD_DEFAULTS)
    for line, fragment in zip(errors, BAD_DEFAULTS.values(), strict=True):
        assert line.strip().startswith("cell 0, line 2: parameter `x`") and fragment in line
    for command in (["convert", "nb0.ipynb", "-o", "out"], ["run", "nb3.ipynb"]):
        result = cli(*command, cwd=workdir)
        assert result.returncode == 2, result.stderr
        assert "(cell 0): parameter `x` is a" in result.stderr and "bug" not in result.stderr
    assert not (workdir / "out").exists() and not (workdir / "mlops-runs").exists()


def test_a_bundle_whose_spec_holds_a_bad_default_is_refused(workdir):
    typed_notebook(workdir / "typed.ipynb")
    assert cli("convert", "typed.ipynb", "-o", "bundle", cwd=workdir).returncode == 0
    spec = workdir / "bundle" / "pipeline.yaml"
    text = spec.read_text()
    assert "default: 0.001" in text and "default: v1" in text
    spec.write_text(text.replace("default: v1", "default: 1e-05"))  # unquoted: a number
    with pytest.raises(BadInput, match="the default of parameter `tag` must be a string"):
        read_bundle(spec)


async def test_the_server_refuses_a_bad_default_as_check_does(api, jp_root_dir):
    bad_default_notebook(jp_root_dir, "{1, 2}", "bad")
    analysis = await api("POST", "analyze", body={"path": "bad.ipynb"})
    assert not analysis["ok"]
    (error,) = [d for d in analysis["diagnostics"] if d["severity"] == "error"]
    assert (error["code"], error["cell"], error["line"]) == ("bad-parameters", 0, 2)
    assert "parameter `x` is a set" in error["message"]
    for route in ("convert", "runs"):
        error = await api("POST", route, body={"path": "bad.ipynb"}, expect=400)
        assert "parameter `x` is a set" in error["message"]
    assert not (jp_root_dir / "bad_pipeline").exists()
    assert not (jp_root_dir / "mlops-runs").exists()


# --- a runner stopped by an unexpected error ends its MLflow run ------------------------------


def test_an_unexpected_error_after_the_parent_run_exists_ends_it_failed(workdir):
    """The parent run is created, then logging its files fails (its experiment's artifact
    folder lies under a file): the run and its MLflow run end FAILED, not RUNNING."""
    typed_notebook(workdir / "typed.ipynb")
    (workdir / "blocker").write_text("a file where a folder should be")
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    client.create_experiment("typed", artifact_location=str(workdir / "blocker" / "artifacts"))
    result = cli("run", "typed.ipynb", "--tracking-uri", "sqlite:///mlflow.db", cwd=workdir)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (parent,) = client.search_runs([client.get_experiment_by_name("typed").experiment_id])
    assert parent.info.status == "FAILED"
    state = json.loads((only_run_dir(workdir / "mlops-runs", "typed") / "run.json").read_text())
    assert state["status"] == "failed" and state["parent_run_id"] == parent.info.run_id
    assert "the run stopped on an unexpected error" in state["error"]["message"]
    assert [s["status"] for s in state["stages"]] == ["cancelled"]
