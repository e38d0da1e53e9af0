"""Running in CI: the JUnit report of a run."""

import xml.etree.ElementTree as ET

# pytester restores sys.modules after its test: modules it would see imported for the first
# time (SQLAlchemy, under MLflow) must already be loaded, or later tests get two copies.
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import pytest
from conftest import cli, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

pytestmark = pytest.mark.slow


def test_junit_report_has_a_case_per_stage(workdir):
    write(
        notebook(
            code("x = 1", "stage:load"),
            code("y = x + 1\nraise KeyError('missing column')", "stage:train"),
            code("z = y", "stage:report"),
        ),
        workdir / "ci.ipynb",
    )
    result = cli("run", "ci.ipynb", "--junit-xml", "reports/junit.xml", cwd=workdir)
    assert result.returncode == 1
    suite = ET.parse(workdir / "reports" / "junit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "ci"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == ["load", "train", "report"]
    assert float(cases["load"].get("time")) > 0
    failure = cases["train"].find("failure")
    assert "KeyError: 'missing column'" in failure.get("message")
    assert "source cell: 1, line 2" in failure.text
    assert "Traceback" in failure.text or "KeyError" in failure.text
    assert "02_train.ipynb" in failure.text
    assert cases["report"].find("skipped") is not None
    assert cases["load"].find("failure") is None

    write(notebook(code("x = 1", "stage:only")), workdir / "ok.ipynb")
    assert cli("run", "ok.ipynb", "--junit-xml", "ok.xml", cwd=workdir).returncode == 0
    suite = ET.parse(workdir / "ok.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("tests") == "1"


def test_pre_commit_hook_checks_tagged_notebooks_only(tmp_path):
    import shlex

    import yaml
    from conftest import ROOT

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "jupyter-mlops-check" and hook["language"] == "python"
    assert hook["files"] == r"\.ipynb$"
    entry = shlex.split(hook["entry"])
    assert entry[0] == "jupyter-mlops"
    plain = write(notebook(code("print('exploring')")), tmp_path / "scratch.ipynb")
    good = write(
        notebook(code("x = 1", "stage:one"), code("y = x", "stage:two")), tmp_path / "good.ipynb"
    )
    bad = write(notebook(code("print(nowhere)", "stage:one")), tmp_path / "bad.ipynb")
    ok = cli(*entry[1:], str(plain), str(good), cwd=tmp_path)  # as pre-commit calls it
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "scratch.ipynb" not in ok.stdout and "good.ipynb" in ok.stdout
    failing = cli(*entry[1:], str(plain), str(good), str(bad), cwd=tmp_path)
    assert failing.returncode == 1 and "nowhere" in failing.stdout


def test_pytest_plugin_runs_stages_as_tests(pytester, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = pytester.path / "notebooks"
    write(
        notebook(
            code("rows: int = 100", "parameters"),
            code("data = list(range(rows))", "stage:load"),
            code(
                "assert len(data) < 50, f'too many rows: {len(data)}'\nkept = data", "stage:check"
            ),
            code("total = sum(kept)", "stage:report"),
            code("other = 1", "stage:side"),
        ),
        folder / "smoke.ipynb",
    )
    write(notebook(code("print('scratch')")), folder / "scratch.ipynb")
    failing = pytester.runpytest_subprocess("--mlops", str(folder), "-p", "no:cacheprovider")
    failing.assert_outcomes(passed=2, failed=1, skipped=1)
    output = failing.stdout.str()
    assert "stage `check` failed in cell 2 of smoke.ipynb, line 1" in output
    assert "AssertionError: too many rows: 100" in output
    assert (
        "upstream stage `check` did not succeed"
        in pytester.runpytest_subprocess(
            "--mlops", str(folder), "-p", "no:cacheprovider", "-rs"
        ).stdout.str()
    )
    (pytester.path / "smoke.yaml").write_text("rows: 10\n")
    passing = pytester.runpytest_subprocess(
        "--mlops", str(folder / "smoke.ipynb"), "--mlops-params", "smoke.yaml", "-v"
    )
    passing.assert_outcomes(passed=4)
    assert "smoke.ipynb::load PASSED" in passing.stdout.str()
    parent, children = pipeline_runs(client_for(pytester.path), "smoke")
    assert parent.info.status == "FINISHED" and parent.data.params["rows"] == "10"
    assert set(children) == {"load", "check", "report", "side"}
