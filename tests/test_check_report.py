"""`jupyter-mlops check` as a user reads it: the report names everything she needs to review."""

import json

from conftest import EXAMPLES, cli


def test_the_report_lists_stages_edges_and_typed_parameters(tmp_path):
    result = cli("check", str(EXAMPLES / "wine_classifier.ipynb"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    parameters = {line.split()[0]: line for line in lines if "  = " in line}
    assert parameters["n_estimators"].split("=")[0].split()[1:] == ["int"]
    assert "= 200  # trees in the forest" in parameters["n_estimators"]
    assert parameters["max_depth"].split("=")[0].split()[1:] == ["int", "|", "None"]
    assert "Setup cells: 1" in lines
    stage_lines = [line.split()[1] for line in lines if line[:4].strip().rstrip(".").isdigit()]
    assert stage_lines == ["load", "split", "train", "evaluate", "report"]
    assert "       takes: X_train (split), y_train (split)" in lines
    assert "       model: model (input example from `X_train`)" in lines
    assert "  train -> evaluate: model" in lines
    assert lines[-1] == "✓ no errors, 0 warning(s)"


def test_the_json_form_says_the_same(tmp_path):
    result = cli("check", str(EXAMPLES / "wine_classifier.ipynb"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [stage["name"] for stage in report["stages"]] == [
        "load",
        "split",
        "train",
        "evaluate",
        "report",
    ]
    max_depth = next(p for p in report["parameters"] if p["name"] == "max_depth")
    assert (max_depth["type"], max_depth["optional"], max_depth["default"]) == ("int", True, None)
