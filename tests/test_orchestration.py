"""A pipeline run as separate scheduler tasks (begin, stage..., end) in separate processes."""

import pytest
from conftest import EXAMPLES, cli, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs

pytestmark = pytest.mark.slow


def test_tasks_share_one_parent_run_and_register_the_model(workdir):
    assert (
        cli(
            "convert", str(EXAMPLES / "wine_classifier.ipynb"), "-o", "bundle", cwd=workdir
        ).returncode
        == 0
    )
    store = str(workdir / "shared-store")
    begun = cli(
        "begin",
        "bundle/pipeline.yaml",
        "--artifact-store",
        store,
        "--parameters-json",
        '{"n_estimators": 20}',
        cwd=workdir,
    )
    assert begun.returncode == 0, begun.stderr
    run_id = begun.stdout.strip().splitlines()[-1]
    early = cli(
        "stage",
        "bundle/pipeline.yaml",
        "train",
        "--run-id",
        run_id,
        "--artifact-store",
        store,
        cwd=workdir,
    )
    assert early.returncode == 2 and "stage `split` has not finished" in early.stderr
    for stage in ("load", "split", "train", "evaluate", "report"):
        task = cli(
            "stage",
            "bundle/pipeline.yaml",
            stage,
            "--run-id",
            run_id,
            "--artifact-store",
            store,
            cwd=workdir,
        )
        assert task.returncode == 0, task.stderr
    ended = cli(
        "end", "bundle/pipeline.yaml", "--run-id", run_id, "--artifact-store", store, cwd=workdir
    )
    assert ended.returncode == 0, ended.stderr
    assert "wine-classifier v1" in ended.stdout
    client = client_for(workdir)
    parent, children = pipeline_runs(client, "wine-classifier")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["n_estimators"] == "20"
    assert set(children) == {"load", "split", "train", "evaluate", "report"}
    assert all(c.info.status == "FINISHED" for c in children.values())
    assert children["train"].data.params["n_estimators"] == "20"
    version = client.get_model_version_by_alias("wine-classifier", "candidate")
    assert version.run_id == parent.info.run_id  # it carries every stage's metrics
    assert version.tags["jupyter_mlops.stage_run"] == children["train"].info.run_id
    assert "accuracy" in version.description


def test_a_failed_task_fails_the_pipeline_run(workdir):
    write(
        notebook(code("x = 1", "stage:one"), code("raise ValueError('bad')", "stage:two")),
        workdir / "fails.ipynb",
    )
    cli("convert", "fails.ipynb", "-o", "bundle", cwd=workdir)
    store = str(workdir / "store")
    run_id = cli(
        "begin", "bundle/pipeline.yaml", "--artifact-store", store, cwd=workdir
    ).stdout.strip()
    assert (
        cli(
            "stage",
            "bundle/pipeline.yaml",
            "one",
            "--run-id",
            run_id,
            "--artifact-store",
            store,
            cwd=workdir,
        ).returncode
        == 0
    )
    failed = cli(
        "stage",
        "bundle/pipeline.yaml",
        "two",
        "--run-id",
        run_id,
        "--artifact-store",
        store,
        cwd=workdir,
    )
    assert failed.returncode == 1 and "ValueError: bad" in failed.stderr
    ended = cli(
        "end", "bundle/pipeline.yaml", "--run-id", run_id, "--artifact-store", store, cwd=workdir
    )
    assert ended.returncode == 1
    parent, children = pipeline_runs(client_for(workdir), "fails")
    assert parent.info.status == "FAILED" and children["two"].info.status == "FAILED"
    unknown = cli(
        "stage",
        "bundle/pipeline.yaml",
        "one",
        "--run-id",
        "nope",
        "--artifact-store",
        store,
        cwd=workdir,
    )
    assert unknown.returncode == 2 and "no pipeline run `nope`" in unknown.stderr
