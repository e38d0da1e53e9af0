"""Names are data, never code: what the exporters generate is executed here with hostile file,
folder, pipeline and parameter names and defaults, and must pass each one through exactly.

The GitHub Actions workflow's `run:` steps run in bash as GitHub would run them (`${{ }}`
expressions substituted first, the step's `env:` set), the Airflow DAG is executed with
Airflow's classes stubbed and its templated fields rendered with Jinja the way Airflow renders
them, and the Kubeflow pipeline's containers run their commands. `jupyter-mlops` and `pip` are
stub scripts recording their argv: these tests are about the generated code, not our CLI. A
hostile name that ran would leave a marker file (`touch pwned...`). Also here: names with line
or control characters are refused, credentials never reach MLflow with the git remote, and
generated files are as readable as the umask allows.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import pytest
import yaml
from cached_venv import kfp_venv
from conftest import ROOT, cli, code, notebook, write
from mlflow import MlflowClient
from mlflow_helpers import pipeline_runs
from test_export_airflow import airflow  # noqa: F401 (fixture)

from jupyter_mlops.files import atomic_write
from jupyter_mlops.tracking import without_credentials

# Each hostile part touches its own marker: any of these files appearing means code ran.
MARKERS = {f"pwned{n}" for n in range(1, 10)}
HOSTILE_NOTEBOOKS = [
    "nb;touch pwned1;$(touch pwned2).ipynb",
    "Churn Model's v2.ipynb",
    "x${{ github.token }}.ipynb",
    "q\"\"\"'''\\ `touch pwned3` \\\\.ipynb",
    "new\nline $(touch pwned4).ipynb",
    "nel\x85 sep\u2028 $(touch pwned5) {{ 7*7 }}.ipynb",
    "!*[glob]?+ -rf.ipynb",
]
SOURCE_FOLDER = "src dir $(touch pwned6)"
OUT_FOLDER = "out 'dir' `touch pwned7`"
# Strings a parameter default may hold, each a trap for some language on the way.
HOSTILE_TEXT = (
    "say \"hi\" 'there' \"\"\" ''' \\ \\n $(touch pwned8) `touch pwned9` ${{ github.token }} "
    "{{ 7*7 }} {% raw %}\nsecond line\r\nthird\x85NEL\u2028LS\u2029PS \u202eRLO \ttab"
)
STUB = """\
#!{python}
import json, os, sys
with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
print("stub-run-id")  # `begin` prints the run id last
"""


def _stubs(tmp_path: Path) -> tuple[Path, Path]:
    """A bin folder whose `jupyter-mlops` and `pip` record their argv, and the log they write."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    for name in ("jupyter-mlops", "pip"):
        (bin_dir / name).write_text(STUB.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    return bin_dir, tmp_path / "argv.jsonl"


def _stub_env(bin_dir: Path, log: Path, **more: str) -> dict[str, str]:
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STUB_LOG": str(log),
        "HOME": str(log.parent),
        **more,
    }


def _calls(log: Path) -> list[list[str]]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _markers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name in MARKERS]


# Line breaks PyYAML wrote raw (and read back changed) in a string without other specials.
BREAKS = ["NEL\x85LS\u2028PS\u2029end", "lines\nand\x85NEL"]


def _parameters_notebook(*extra_cells: Any, **settings: str) -> Any:
    label = f"label: str = {HOSTILE_TEXT!r}  # help with \"\"\" and ''' and {{{{ 7*7 }}}}"
    others = f"other = {HOSTILE_TEXT[::-1]!r}\nbreaks = {BREAKS[0]!r}\nblock = {BREAKS[1]!r}"
    return notebook(
        code(f"{label}\n{others}\nn: int = 3", "parameters"),
        code("a = label + other", "stage:first"),
        code("b = a * n", "stage:second"),
        *extra_cells,
        **settings,
    )


DEFAULTS = {"label": HOSTILE_TEXT, "other": HOSTILE_TEXT[::-1], "breaks": BREAKS[0]}
DEFAULTS |= {"block": BREAKS[1], "n": 3}


# --- GitHub Actions --------------------------------------------------------------------------

# The only expressions the workflow may hold, with their value on a push: the escape for a
# literal `${{`, the smoke parameters' switch and the tracking server's secret.
GITHUB_EXPRESSIONS = {
    "'${{'": "${{",
    "github.event_name != 'schedule' && '-f ci-params.yaml' || ''": "-f ci-params.yaml",
    "secrets.MLFLOW_TRACKING_URI": "",
}


def _expressions(text: str) -> list[tuple[int, int, str]]:
    """Each `${{ ... }}` in `text` as (start, end, expression), delimited as GitHub does: a
    `}}` inside a quoted string doesn't end the expression."""
    found = []
    start = text.find("${{")
    while start != -1:
        index, quoted = start + 3, False
        while not (not quoted and text.startswith("}}", index)):
            assert index < len(text), f"unterminated expression in {text!r}"
            quoted = not quoted if text[index] == "'" else quoted
            index += 1
        found.append((start, index + 2, text[start + 3 : index].strip()))
        start = text.find("${{", index + 2)
    return found


def substituted(text: str) -> str:
    """`text` as GitHub hands it on: every expression replaced by its value on a push."""
    parts, done = [], 0
    for start, end, expression in _expressions(text):
        assert expression in GITHUB_EXPRESSIONS, f"the workflow evaluates {expression!r}"
        parts += [text[done:start], GITHUB_EXPRESSIONS[expression]]
        done = end
    return "".join(parts) + text[done:]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*_strings(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _path_filter(pattern: str) -> re.Pattern[str]:
    """GitHub's path filter syntax as a regular expression (`\\` escapes the next character)."""
    assert not pattern.startswith("!"), f"{pattern!r} is a negative pattern"
    regex, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            regex.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        if pattern.startswith("**", index):
            regex.append(".*")
            index += 2
            continue
        if char == "[":
            end = pattern.index("]", index)
            regex.append(pattern[index : end + 1])
            index = end + 1
            continue
        regex.append({"*": "[^/]*", "?": ".?", "+": "+"}.get(char, re.escape(char)))
        index += 1
    return re.compile("".join(regex), re.DOTALL)


def _run_workflow(workflow_path: Path, workspace: Path, tmp_path: Path) -> list[list[str]]:
    """Run each `run:` step of the workflow as GitHub's runner would on a push; their argv."""
    text = workflow_path.read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    for section in ("name", "on"):  # no expression is allowed there: one fails the workflow
        assert not [s for s in _strings(workflow[section]) if "${{" in s], section
    for string in _strings(workflow):
        substituted(string)  # only the expressions we generate
    bin_dir, log = _stubs(tmp_path)
    for number, step in enumerate(workflow["jobs"]["pipeline"]["steps"]):
        assert "${{" not in json.dumps(step.get("with", {})).replace("'${{'", "")
        if "run" not in step:
            continue
        script = tmp_path / f"step-{number}.sh"
        script.write_text(substituted(step["run"]), encoding="utf-8")
        env = {key: substituted(value) for key, value in step.get("env", {}).items()}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=_stub_env(bin_dir, log, **env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"step {step.get('name')}: {done.stderr}"
    return _calls(log)


@pytest.mark.parametrize("name", HOSTILE_NOTEBOOKS)
def test_the_workflow_passes_a_notebook_name_to_bash_as_data(name, tmp_path):
    source = write(_parameters_notebook(), tmp_path / SOURCE_FOLDER / name)
    out = tmp_path / OUT_FOLDER
    exported = cli("export", "github-actions", str(source), "-o", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    [workflow] = (out / ".github" / "workflows").iterdir()

    calls = _run_workflow(workflow, out, tmp_path)

    assert not _markers(tmp_path)
    notebook_path = os.path.relpath(source, out)
    assert calls == [
        ["pip", "install", "-r", "bundle/requirements.txt"],
        ["jupyter-mlops", "check", notebook_path],
        [
            "jupyter-mlops",
            "run",
            "bundle/pipeline.yaml",
            "-f",
            "ci-params.yaml",
            "--junit-xml",
            "reports/pipeline-junit.xml",
        ],
    ]
    assert (out / notebook_path).resolve() == source.resolve()
    triggers = yaml.safe_load(workflow.read_text(encoding="utf-8"))["on"]
    for event in ("push", "pull_request"):  # a push that changes the notebook starts it
        assert _path_filter(triggers[event]["paths"][0]).fullmatch(notebook_path)
    smoke = yaml.safe_load((out / "ci-params.yaml").read_text(encoding="utf-8"))
    assert smoke == DEFAULTS  # every character of the defaults, NEL and U+2028 too


def test_the_workflow_passes_a_bundle_in_any_folder_and_any_pipeline_name(tmp_path):
    pipeline = 'Churn "Model\'s" v2 $(touch pwned1) x${{ github.token }} {{ 7*7 }}'
    write(_parameters_notebook(pipeline=pipeline), tmp_path / "churn.ipynb")
    bundle = tmp_path / "bundle 'folder' $(touch pwned2) ${{ github.token }}"
    assert cli("convert", "churn.ipynb", "-o", str(bundle), cwd=tmp_path).returncode == 0
    out = tmp_path / "repo root"
    exported = cli(
        "export", "github-actions", str(bundle / "pipeline.yaml"), "-o", str(out), cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    [workflow] = (out / ".github" / "workflows").iterdir()
    assert workflow.name == "Churn-Model-s-v2-touch-pwned1-x-github.token-7-7.yml"

    calls = _run_workflow(workflow, out, tmp_path)

    assert not _markers(tmp_path)
    relative = os.path.relpath(bundle, out)
    assert calls[0] == ["pip", "install", "-r", f"{relative}/requirements.txt"]
    assert calls[1][:3] == ["jupyter-mlops", "run", f"{relative}/pipeline.yaml"]
    parsed = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    assert (
        parsed["name"]
        == 'pipeline Churn "Model\'s" v2 $(touch pwned1) x$ {{ github.token }} {{ 7*7 }}'
    )
    upload = parsed["jobs"]["pipeline"]["steps"][-1]["with"]["name"]
    assert upload == "Churn-Model-s-v2-touch-pwned1-x-github.token-7-7-run"
    watched = parsed["on"]["push"]["paths"][0]
    assert _path_filter(watched).fullmatch(f"{relative}/stages/01_first.ipynb")


# --- names with line or control characters ---------------------------------------------------

LINE_AND_CONTROL = {"NEL": "\x85", "LS": "\u2028", "PS": "\u2029", "LF": "\n", "ESC": "\x1b"}
LINE_AND_CONTROL["RLO"] = "\u202e"  # a bidirectional control: the name reads otherwise


@pytest.mark.parametrize("character", LINE_AND_CONTROL.values(), ids=LINE_AND_CONTROL.keys())
@pytest.mark.parametrize("setting", ["pipeline", "experiment", "model_name"])
def test_a_name_with_a_line_or_control_character_is_refused(setting, character, tmp_path):
    name = f"churn{character}on: {{push: {{}}}}"
    write(_parameters_notebook(**{setting: name}), tmp_path / "nb.ipynb")
    unicode = f"U+{ord(character):04X}"
    checked = cli("check", "nb.ipynb", cwd=tmp_path)
    assert checked.returncode == 1
    assert f"`jupyter_mlops.{setting}` is {name!r}: remove its {unicode}" in checked.stdout
    exported = cli("export", "github-actions", "nb.ipynb", "-o", "out", cwd=tmp_path)
    assert exported.returncode == 2
    assert f"remove its {unicode}, names can't hold line or control characters" in exported.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["github-actions", "airflow"])
def test_an_edited_bundle_with_such_a_name_is_refused_by_every_exporter(kind, tmp_path):
    write(_parameters_notebook(), tmp_path / "nb.ipynb")
    assert cli("convert", "nb.ipynb", "-o", "bundle", cwd=tmp_path).returncode == 0
    spec_path = tmp_path / "bundle" / "pipeline.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["name"] = "nb\u2028on: {push: {}}"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    refused = cli("export", kind, "bundle/pipeline.yaml", "-o", "out", cwd=tmp_path)
    assert refused.returncode == 2
    assert "the pipeline name 'nb\\u2028on: {push: {}}' holds U+2028" in refused.stderr
    spec["name"] = "nb"
    spec["stages"][0]["name"] = "first;touch pwned1"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    refused = cli("export", kind, "bundle/pipeline.yaml", "-o", "out", cwd=tmp_path)
    assert refused.returncode == 2
    assert "stage name 'first;touch pwned1' in pipeline.yaml is not a lowercase" in refused.stderr
    assert not (tmp_path / "out").exists() and not _markers(tmp_path)


def test_defaults_with_line_breaks_of_every_kind_survive_the_bundle_yaml(tmp_path):
    write(_parameters_notebook(), tmp_path / "nb.ipynb")
    assert cli("convert", "nb.ipynb", "-o", "bundle", cwd=tmp_path).returncode == 0
    spec = yaml.safe_load((tmp_path / "bundle" / "pipeline.yaml").read_text(encoding="utf-8"))
    assert {k: v["default"] for k, v in spec["parameters"].items()} == DEFAULTS
    params = yaml.safe_load((tmp_path / "bundle" / "params.yaml").read_text(encoding="utf-8"))
    assert params == DEFAULTS


# --- Airflow ---------------------------------------------------------------------------------


class _Literal:
    """airflow.sdk.literal: a value Airflow resolves as it is, without Jinja."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def resolve(self, context: dict[str, Any]) -> Any:
        return self.value


class _Param:
    def __init__(self, default: Any = None, **schema: Any) -> None:
        self.default = default
        self.schema = schema


class _Dag:
    def __init__(self, **arguments: Any) -> None:
        self.arguments = arguments

    def __enter__(self) -> _Dag:
        _airflow_record["dag"] = self
        return self

    def __exit__(self, *exception: Any) -> None:
        return None


class _BashOperator:
    template_fields = ("bash_command", "env", "cwd")  # as Airflow's BashOperator
    template_ext = (".sh", ".bash")

    def __init__(self, *, task_id: str, bash_command: str, **arguments: Any) -> None:
        self.task_id = task_id
        self.bash_command = bash_command
        self.env = arguments.get("env")
        self.cwd = arguments.get("cwd")
        self.arguments = arguments
        _airflow_record["tasks"].append(self)

    def set_upstream(self, other: Any) -> None:
        return None

    def set_downstream(self, other: Any) -> None:
        return None


_airflow_record: dict[str, Any] = {}


def _render(value: Any, context: dict[str, Any], environment: jinja2.Environment) -> Any:
    """A templated field rendered the way Airflow's Templater renders it."""
    if isinstance(value, str):
        if value.endswith(_BashOperator.template_ext):  # Airflow reads it as a template file
            return environment.get_template(value).render(context)
        return environment.from_string(value).render(context)
    if resolve := getattr(value, "resolve", None):
        return resolve(context)
    if isinstance(value, dict):
        return {key: _render(item, context, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context, environment) for item in value]
    return value


@pytest.fixture
def stubbed_airflow(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The modules the DAG imports, stubbed: executing it records the DAG and its tasks."""
    sdk = types.ModuleType("airflow.sdk")
    sdk.DAG, sdk.Param, sdk.literal = _Dag, _Param, _Literal  # type: ignore[attr-defined]
    bash = types.ModuleType("airflow.providers.standard.operators.bash")
    bash.BashOperator = _BashOperator  # type: ignore[attr-defined]
    for name in ("airflow", "airflow.providers", "airflow.providers.standard"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "airflow.providers.standard.operators", types.ModuleType("o"))
    monkeypatch.setitem(sys.modules, "airflow.sdk", sdk)
    monkeypatch.setitem(sys.modules, "airflow.providers.standard.operators.bash", bash)
    _airflow_record.clear()
    _airflow_record["tasks"] = []
    return _airflow_record


def test_the_dag_passes_names_paths_and_defaults_as_data(stubbed_airflow, tmp_path):
    pipeline = 'Churn "Model\'s" v2 $(touch pwned1) {{ 7*7 }} """ \'\'\' \\'
    source = write(
        _parameters_notebook(pipeline=pipeline),
        tmp_path / SOURCE_FOLDER / "nb \"\"\" ''' \\ {{ 7*7 }} $(touch pwned2).ipynb",
    )
    dags = tmp_path / "dags {{ 7*7 }} $(touch pwned3)"
    store = "s3://bucket/{{ 7*7 }} $(touch pwned4) 'q' \"d\" x.sh"
    tracking = "http://mlflow:5000/{% raw %}{{ 7*7 }};touch pwned5"
    exported = cli(
        "export", "airflow", str(source), "-o", str(dags),
        "--artifact-store", store, "--tracking-uri", tracking,
        cwd=tmp_path,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    [dag_file] = dags.glob("*_dag.py")
    ruff = [str(Path(sys.executable).parent / "ruff"), "--config", str(ROOT / "pyproject.toml")]
    # Still code as ruff writes it (only a literal longer than a line can't be made shorter).
    for command in (["format", "--check", "--diff"], ["check", "--ignore", "E501"]):
        linted = subprocess.run([*ruff, *command, str(dag_file)], capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr

    runpy.run_path(str(dag_file), run_name="dag")

    dag = stubbed_airflow["dag"].arguments
    assert dag["description"] == f"jupyter-mlops pipeline {pipeline}"
    assert {name: param.default for name, param in dag["params"].items()} == DEFAULTS
    assert dag["params"]["label"].schema["description"].startswith('help with """ and')
    # What a DAG run does: render each task's templated fields, then run its bash command.
    environment = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    ti = types.SimpleNamespace(xcom_pull=lambda task_ids: "run-from-xcom")
    context = {"params": dict(DEFAULTS), "ti": ti}
    bin_dir, log = _stubs(tmp_path)
    workdir = tmp_path / "worker"
    workdir.mkdir()
    for task in stubbed_airflow["tasks"]:
        command = _render(task.bash_command, context, environment)
        env = _render(task.env, context, environment)
        assert task.arguments["append_env"] is True
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=workdir,
            env={**_stub_env(bin_dir, log), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    assert not _markers(tmp_path)
    pipeline_yaml = str(dags.resolve() / "bundle" / "pipeline.yaml")
    begin, *stages, end = _calls(log)
    assert begin[:5] == ["jupyter-mlops", "begin", pipeline_yaml, "--artifact-store", store]
    assert begin[5] == "--parameters-json" and json.loads(begin[6]) == DEFAULTS
    after = ["--run-id", "run-from-xcom", "--artifact-store", store]
    assert stages == [
        ["jupyter-mlops", "stage", pipeline_yaml, "first", *after],
        ["jupyter-mlops", "stage", pipeline_yaml, "second", *after],
    ]
    assert end == ["jupyter-mlops", "end", pipeline_yaml, *after]
    rendered = _render(stubbed_airflow["tasks"][0].env, context, environment)
    assert rendered["MLFLOW_TRACKING_URI"] == tracking


@pytest.mark.slow
def test_airflow_itself_runs_the_dag_with_hostile_names_exactly(airflow, tmp_path):  # noqa: F811
    """The same, end to end: Apache Airflow runs the DAG, the real `jupyter-mlops` the stages.
    `{{ run_id }}` in the store's name would be rendered by Airflow's Jinja, and moved."""
    pipeline = 'Churn "Model\'s" $(touch pwned4)'  # no braces: papermill formats its paths
    source = write(_parameters_notebook(pipeline=pipeline), tmp_path / "nb $(touch pwned1).ipynb")
    dags = tmp_path / "dags 'q' $(touch pwned2)"
    store = tmp_path / 'store {{ run_id }} "d" $(touch pwned3)'
    exported = cli(
        "export", "airflow", str(source), "-o", str(dags), "--artifact-store", str(store),
        cwd=tmp_path,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dag_id = "Churn-Model-s-touch-pwned4"
    tested = airflow("dags", "test", dag_id, dags=dags, env={"MLFLOW_TRACKING_URI": tracking})
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output[-5000:]
    assert not _markers(tmp_path)
    parent, children = pipeline_runs(MlflowClient(tracking_uri=tracking), pipeline)
    assert parent.info.status == "FINISHED" and set(children) == {"first", "second"}
    assert {name: parent.data.params[name] for name in DEFAULTS} == {
        name: str(value) for name, value in DEFAULTS.items()
    }
    assert [path.name for path in store.iterdir()] == [pipeline]  # the store, where it was named


# --- Kubeflow --------------------------------------------------------------------------------


def _kfp_arguments(arguments: list[str], inputs: dict[str, Any], output: Path) -> list[str]:
    """A container's arguments as the Kubeflow backend fills in placeholders (string inputs)."""
    filled: list[str] = []
    for argument in arguments:
        if argument.startswith('{"IfPresent"'):
            present = json.loads(argument)["IfPresent"]
            if inputs.get(present["InputName"]) is not None:
                filled += _kfp_arguments(present["Then"], inputs, output)
            continue
        if argument == "{{$.outputs.parameters['run_id'].output_file}}":
            filled.append(str(output))
            continue
        placeholder = re.fullmatch(r"\{\{\$\.inputs\.parameters\['(\w+)'\]\}\}", argument)
        filled.append(str(inputs[placeholder.group(1)]) if placeholder else argument)
    return filled


@pytest.mark.slow
def test_the_kubeflow_containers_pass_names_and_defaults_as_data(tmp_path):
    pipeline = 'Churn "Model\'s" v2 $(touch pwned1)'
    source = write(
        _parameters_notebook(pipeline=pipeline),
        tmp_path / SOURCE_FOLDER / "nb\u2028$(touch pwned2).ipynb",
    )
    store = "s3://bucket/dir 'q' $(touch pwned3)"
    tracking = "http://mlflow:5000/;touch pwned4"
    image = "registry.example.com/churn:1\u2028injected: true"
    exported = cli(
        "export", "kubeflow", str(source), "-o", "out",
        "--artifact-store", store, "--tracking-uri", tracking, "--image", image,
        cwd=tmp_path, bin_dir=kfp_venv(),
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    [compiled] = (tmp_path / "out").glob("*.yaml")
    text = compiled.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "\\u2028injected: true" in " ".join(header)  # escaped: one comment, no key
    spec = yaml.safe_load(text)
    assert "injected" not in spec
    containers = {
        name.removeprefix("exec-"): executor["container"]
        for name, executor in spec["deploymentSpec"]["executors"].items()
    }
    assert {c["image"] for c in containers.values()} == {image}
    bin_dir, log = _stubs(tmp_path)
    run_id_file = tmp_path / "outputs" / "run_id"
    begin = containers["begin"]
    for container in [begin, containers["first"], containers["second"], containers["end"]]:
        arguments = _kfp_arguments(
            [*container["command"], *container.get("args", [])],
            {**DEFAULTS, "run_id": "run-from-begin"},
            run_id_file,
        )
        done = subprocess.run(  # a container runs its command as argv, no shell around it
            arguments, cwd=tmp_path, env=_stub_env(bin_dir, log), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr

    assert not _markers(tmp_path)
    assert run_id_file.read_text() == "stub-run-id"
    pipeline_yaml = "/pipeline/bundle/pipeline.yaml"
    begin_call, *stages, end = _calls(log)
    given = ["--artifact-store", store, "--tracking-uri", tracking]
    values = [part for name in DEFAULTS for part in ("-p", name, str(DEFAULTS[name]))]
    assert begin_call == ["jupyter-mlops", "begin", pipeline_yaml, *given, *values]
    after = ["--run-id", "run-from-begin", "--artifact-store", store]
    assert stages == [
        ["jupyter-mlops", "stage", pipeline_yaml, "first", *after],
        ["jupyter-mlops", "stage", pipeline_yaml, "second", *after],
    ]
    assert end == ["jupyter-mlops", "end", pipeline_yaml, *after]


# --- credentials in URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "logged"),
    [
        ("https://user:s3cret-token@git.example.com/team/repo.git", "https://git.example.com/team/repo.git"),
        ("https://ghp_s3cret-token@github.com/team/repo.git", "https://github.com/team/repo.git"),
        ("http://u:s3cret-token@host:8080/r.git?private_token=s3cret-token#x", "http://host:8080/r.git"),
        ("ssh://git:s3cret-token@host:22/team/repo.git", "ssh://git@host:22/team/repo.git"),
        ("git@github.com:team/repo.git", "git@github.com:team/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)  # fmt: skip
def test_a_remote_url_loses_its_credentials(remote, logged):
    assert without_credentials(remote) == logged


@pytest.mark.parametrize("option", ["--tracking-uri", "--artifact-store"])
@pytest.mark.parametrize("kind", ["airflow", "kubeflow"])
def test_an_export_writes_no_credentials_into_its_files(kind, option, tmp_path):
    write(notebook(code("x = 1", "stage:one")), tmp_path / "nb.ipynb")
    uris = {"--tracking-uri": "http://mlflow.example.com", "--artifact-store": "s3://bucket/p"}
    uris[option] = "https://user:s3cret-token@host.example.com/x"
    given = [part for pair in uris.items() for part in pair]
    refused = cli("export", kind, "nb.ipynb", "-o", "out", *given, cwd=tmp_path)
    assert refused.returncode == 2
    assert f"{option} holds credentials, which the exported files would carry" in refused.stderr
    written = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert not [path for path in written if b"s3cret-token" in path.read_bytes()]


def test_git_credentials_never_reach_mlflow(tmp_path):
    write(
        notebook(code("x = 1", "stage:one"), code("y = x + 1", "stage:two")), tmp_path / "nb.ipynb"
    )
    for command in (
        ["init", "-q"],
        ["remote", "add", "origin", "https://user:s3cret-token@git.example.com/team/repo.git"],
        ["add", "nb.ipynb"],
        ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "nb"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ran = cli("run", "nb.ipynb", "--tracking-uri", tracking, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    parent, children = pipeline_runs(MlflowClient(tracking_uri=tracking), "nb")
    tags = parent.data.tags
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.com/team/repo.git"
    for run in [parent, *children.values()]:
        logged = json.dumps([run.data.tags, run.data.params])
        assert "s3cret-token" not in logged


# --- file modes ------------------------------------------------------------------------------


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_an_atomic_write_gets_the_mode_open_gives(umask_027, tmp_path):
    fresh = tmp_path / "fresh.txt"
    atomic_write(fresh, "new")
    with open(tmp_path / "opened.txt", "w") as opened:
        opened.write("plain")
    assert (fresh.stat().st_mode & 0o777) == (tmp_path / "opened.txt").stat().st_mode & 0o777
    assert (fresh.stat().st_mode & 0o777) == 0o640
    old = tmp_path / "old.txt"
    old.write_text("old")
    old.chmod(0o600)  # as earlier versions wrote every file
    atomic_write(old, "replaced")
    assert old.read_text() == "replaced" and (old.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.txt", "old.txt", "opened.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_exported_files_are_readable_as_the_umask_allows(umask, tmp_path):
    write(_parameters_notebook(), tmp_path / "nb.ipynb")
    umasked = ["bash", "-c", f'umask {umask:03o} && exec "$0" "$@"', "jupyter-mlops"]
    for kind in ("airflow", "github-actions"):
        exported = subprocess.run(
            [*umasked, "export", kind, "nb.ipynb", "-o", "out"],
            cwd=tmp_path,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
        )
        assert exported.returncode == 0, exported.stderr
    files = [path for path in (tmp_path / "out").rglob("*") if path.is_file()]
    assert len(files) >= 7  # the DAG, the workflow, ci-params.yaml and the bundle's files
    modes = {str(path.relative_to(tmp_path)): oct(path.stat().st_mode & 0o777) for path in files}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
