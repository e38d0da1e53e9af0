"""Exports to CI and schedulers: the generated files work, and the checked-in ones don't drift."""

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cached_venv import kfp_venv
from conftest import EXAMPLES, ROOT, cli
from test_injection import substituted

CHECKED_IN = EXAMPLES / "exports"
# How each checked-in export under example_notebooks/exports/ is made, from the repository
# root. A test regenerates them all and compares, so they never drift from the code.
REGENERATE = {
    "airflow": [
        "export",
        "airflow",
        "example_notebooks/wine_classifier.ipynb",
        "-o",
        "example_notebooks/exports/airflow",
        "--schedule",
        "0 3 * * 1",
    ],
    "github-actions": [
        "export",
        "github-actions",
        "example_notebooks/wine_classifier.ipynb",
        "-o",
        "example_notebooks/exports/github-actions",
        "--schedule",
        "0 3 * * 1",
    ],
    "kubeflow": [
        "export",
        "kubeflow",
        "example_notebooks/wine_classifier.ipynb",
        "-o",
        "example_notebooks/exports/kubeflow",
        "--artifact-store",
        "s3://mlops-artifacts/pipelines",
    ],
}
# Exporters whose SDK this environment lacks run from that SDK's cached venv (slow at first).
SDK_VENVS = {"kubeflow": kfp_venv}
ENVIRONMENT_SPECIFIC = {"requirements.txt"}  # pins this machine's installed versions


def _repo_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "example_notebooks").mkdir(parents=True)
    for notebook in EXAMPLES.glob("*.ipynb"):
        shutil.copy(notebook, repo / "example_notebooks" / notebook.name)
    return repo


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right)
    found = [f"only in one: {n}" for n in comparison.left_only + comparison.right_only]
    found += [n for n in comparison.diff_files if n not in ENVIRONMENT_SPECIFIC]
    for name in comparison.common_dirs:
        found += [f"{name}/{d}" for d in _differences(left / name, right / name)]
    return found


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, marks=pytest.mark.slow) if k in SDK_VENVS else k for k in sorted(REGENERATE)],
)
def test_checked_in_exports_match_the_code(kind, tmp_path):
    repo = _repo_copy(tmp_path)
    venv = SDK_VENVS.get(kind)
    result = cli(*REGENERATE[kind], cwd=repo, bin_dir=venv() if venv else None)
    assert result.returncode == 0, result.stderr
    differences = _differences(repo / "example_notebooks" / "exports" / kind, CHECKED_IN / kind)
    command = " ".join(["jupyter-mlops", *REGENERATE[kind]])
    assert not differences, f"regenerate with `{command}` from {ROOT}: {differences}"


@pytest.mark.slow
def test_github_actions_workflow_runs_the_pipeline(tmp_path):
    repo = _repo_copy(tmp_path)
    result = cli(
        "export",
        "github-actions",
        "example_notebooks/wine_classifier.ipynb",
        "-o",
        ".",
        "--schedule",
        "0 3 * * 1",
        cwd=repo,
    )
    assert result.returncode == 0, result.stderr
    workflow = yaml.safe_load((repo / ".github/workflows/wine-classifier.yml").read_text())
    triggers = workflow["on"]
    assert triggers["schedule"] == [{"cron": "0 3 * * 1"}]
    assert "example_notebooks/wine_classifier.ipynb" in triggers["push"]["paths"]
    assert "workflow_dispatch" in triggers
    steps = {
        step.get("name", step.get("uses")): step for step in workflow["jobs"]["pipeline"]["steps"]
    }
    install = steps["Install the pipeline's requirements"]
    assert install["run"] == 'pip install -r "$MLOPS_REQUIREMENTS"'
    assert install["env"] == {"MLOPS_REQUIREMENTS": "bundle/requirements.txt"}
    upload = steps["Upload the run folder and the report"]
    assert upload["if"] == "always()" and "reports/" in upload["with"]["path"]
    smoke = yaml.safe_load((repo / "ci-params.yaml").read_text())
    smoke["n_estimators"] = 5
    (repo / "ci-params.yaml").write_text(yaml.safe_dump(smoke))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    # Run the workflow's own commands, as the runner would on a push (not a schedule).
    for name in ("Check the notebook's tags", "Run the pipeline"):
        step_env = {k: substituted(v) for k, v in steps[name].get("env", {}).items()}
        done = subprocess.run(
            ["bash", "-c", substituted(steps[name]["run"])],
            cwd=repo,
            env={**env, **step_env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
    report = (repo / "reports" / "pipeline-junit.xml").read_text()
    assert 'tests="5"' in report and 'failures="0"' in report
