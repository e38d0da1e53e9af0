"""The Airflow export, for real: Apache Airflow 3 in its own virtualenv runs `airflow dags test`
on the exported DAG, and what it logged is read back through MlflowClient."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from cached_venv import airflow_venv
from conftest import EXAMPLES, ROOT, cli, code, notebook, write
from mlflow import MlflowClient
from mlflow_helpers import pipeline_runs
from s3_server import s3  # noqa: F401 (fixture)

WINE_STAGES = {"load", "split", "train", "evaluate", "report"}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory):
    """Runs `airflow ARGS` with the cached Airflow venv and a migrated AIRFLOW_HOME."""
    bin_dir = airflow_venv()
    home = tmp_path_factory.mktemp("airflow-home")

    def run(*args: str, dags: Path, env: dict[str, str] | None = None):
        merged = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        merged.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PATH=f"{bin_dir}:{merged['PATH']}",  # the workers' `jupyter-mlops`
            **(env or {}),
        )
        return subprocess.run(
            [str(bin_dir / "airflow"), *args],
            cwd=dags,
            env=merged,
            capture_output=True,
            text=True,
            timeout=900,
        )

    migrated = run("db", "migrate", dags=home)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return run


@pytest.mark.slow
def test_the_dag_runs_the_pipeline_through_s3_into_mlflow(airflow, s3, tmp_path):  # noqa: F811
    dags = tmp_path / "dags"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exported = cli(
        "export",
        "airflow",
        str(EXAMPLES / "wine_classifier.ipynb"),
        "-o",
        str(dags),
        "--artifact-store",
        "s3://pipelines/airflow",
        "--tracking-uri",
        tracking,
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    assert (dags / "bundle" / "pipeline.yaml").is_file()

    tested = airflow("dags", "test", "wine-classifier", "-c", '{"n_estimators": 20}', dags=dags)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output[-5000:]
    assert "state=success" in output
    closing = output[output.index("[DAG TEST] starting task_id=end") :]
    print("\n".join(line[:240] for line in closing.splitlines()))  # for the record

    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("wine-classifier")
    assert len(client.search_runs([experiment.experiment_id])) == 1 + len(WINE_STAGES)
    parent, children = pipeline_runs(client, "wine-classifier")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["n_estimators"] == "20"  # the DAG run's conf reached `begin`
    assert set(children) == WINE_STAGES
    assert {c.info.status for c in children.values()} == {"FINISHED"}
    version = client.get_model_version_by_alias("wine-classifier", "candidate")
    assert version.tags["jupyter_mlops.stage_run"] == children["train"].info.run_id
    assert version.status == "READY"
    print(f"MLflow: 1 parent run, {len(children)} stage runs, model version {version.version}")
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="pipelines")["Contents"]]
    records = {k.rsplit("/", 1)[1] for k in keys if "/stages/" in k}
    assert all(k.startswith("airflow/wine-classifier/") for k in keys)
    assert records == {f"{stage}.json" for stage in WINE_STAGES}  # handed over through S3


@pytest.mark.slow
def test_a_failed_stage_fails_the_dag_run_and_the_mlflow_run(airflow, tmp_path):
    write(
        notebook(
            code("x = 1", "stage:one"),
            code("raise ValueError('bad')", "stage:two"),
            code("y = x + 1", "stage:three", "after:two"),
        ),
        tmp_path / "fails.ipynb",
    )
    dags = tmp_path / "dags"
    assert cli("export", "airflow", "fails.ipynb", "-o", str(dags), cwd=tmp_path).returncode == 0
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tested = airflow("dags", "test", "fails", dags=dags, env={"MLFLOW_TRACKING_URI": tracking})
    output = tested.stdout + tested.stderr
    assert tested.returncode == 1, output[-5000:]
    assert "error: stage `two` failed in cell 1 of fails.ipynb, line 1: ValueError: bad" in output
    assert "state=failed" in output
    parent, children = pipeline_runs(MlflowClient(tracking_uri=tracking), "fails")
    assert parent.info.status == "FAILED"  # `end` ran although a stage had failed
    assert children["one"].info.status == "FINISHED"
    assert children["two"].info.status == "FAILED"
    assert "three" not in children  # upstream failed: never started
    assert (dags / "mlops-artifacts" / "fails").is_dir()  # the default store, beside the DAG


def test_the_dag_spells_out_stages_edges_and_typed_params(tmp_path):
    write(
        notebook(
            code(
                'label: str = "say \\"hi\\""\nflag: bool = True\nsizes: list = [1, 2]\n'
                "limit: float | None = None  # " + "a very long help text that goes on and on " * 3,
                "parameters",
            ),
            code("a = sizes[0]", "stage:first"),
            code("b = a if flag else limit", "stage:second"),
            pipeline='Shapes "v2" \\o',
        ),
        tmp_path / "shapes.ipynb",
    )
    exported = cli("export", "airflow", "shapes.ipynb", "-o", "out", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    dag = tmp_path / "out" / "shapes_v2_o_dag.py"
    source = dag.read_text()
    assert 'dag_id="Shapes-v2-o",' in source
    assert "description='jupyter-mlops pipeline Shapes \"v2\" \\\\o'," in source
    assert 'STAGES = {"first": [], "second": ["first"]}' in source
    assert 'label": Param(\n            \'say "hi"\',\n            type="string",' in source
    assert 'type=["null", "number"]' in source and 'type="boolean"' in source
    assert 'Param(\n            [1, 2],\n            type="array",' in source
    ruff = [str(Path(sys.executable).parent / "ruff"), "--config", str(ROOT / "pyproject.toml")]
    for command in (["format", "--check", "--diff"], ["check"]):
        linted = subprocess.run([*ruff, *command, str(dag)], capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout + linted.stderr
    again = cli("export", "airflow", "shapes.ipynb", "-o", "out", cwd=tmp_path)
    assert again.returncode == 0 and dag.read_text() == source


def test_a_stage_named_like_a_bookend_task_is_refused(tmp_path):
    write(notebook(code("x = 1", "stage:begin")), tmp_path / "clash.ipynb")
    refused = cli("export", "airflow", "clash.ipynb", "-o", "out", cwd=tmp_path)
    assert refused.returncode == 2
    assert "stage `begin` has the name of the DAG's own `begin` task" in refused.stderr
