"""Running in CI: the JUnit report of a run."""

import xml.etree.ElementTree as ET

import pytest
from conftest import cli, code, notebook, write

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
