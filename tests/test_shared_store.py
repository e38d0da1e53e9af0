"""A shared artifact store behind an fsspec URL, against a real S3 protocol server (moto)."""

import boto3
import numpy as np
import pytest
from conftest import cli, code, notebook, write
from mlflow_helpers import client_for, pipeline_runs
from s3_server import s3  # noqa: F401 (fixture)

from jupyter_mlops.artifacts import StageRecord, open_store
from jupyter_mlops.run.runstate import read_run


def test_remote_store_round_trip(s3, tmp_path):  # noqa: F811
    store = open_store("s3://pipelines/unit/run-1")
    shared = np.arange(10.0)
    digest, variables = store.write_values("make", {"a": shared, "b": [shared, 1]})
    store.write_record(StageRecord("make", digest, variables))
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="pipelines")["Contents"]}
    assert f"unit/run-1/objects/{digest}/buffers.bin" in keys
    assert "unit/run-1/stages/make.json" in keys
    fresh = open_store("s3://pipelines/unit/run-1")  # another machine: empty object cache
    fresh.root = tmp_path / "other-machine-cache"
    loaded = fresh.load("make", ["a", "b"])
    assert loaded["b"][0] is loaded["a"] and loaded["a"].sum() == 45
    assert not open_store("s3://pipelines/unit/run-2").has_record("make")


@pytest.mark.slow
def test_a_pipeline_hands_over_through_s3(s3, workdir):  # noqa: F811
    write(
        notebook(
            code("import numpy as np", "setup"),
            code("data = np.ones((100, 3))", "stage:make"),
            code("total = float(data.sum())", "stage:use", "metrics"),
        ),
        workdir / "shared.ipynb",
    )
    result = cli(
        "run", "shared.ipynb", "--artifact-store", "s3://pipelines/runs", cwd=workdir, env=s3
    )
    assert result.returncode == 0, result.stderr
    run_dir = next((workdir / "mlops-runs" / "shared").iterdir())
    state = read_run(run_dir)
    assert state.artifact_store == f"s3://pipelines/runs/shared/{state.id}"
    assert not (run_dir / "artifacts").exists()
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="pipelines")["Contents"]]
    assert f"runs/shared/{state.id}/stages/make.json" in keys
    assert any(k.startswith(f"runs/shared/{state.id}/objects/") for k in keys)
    _, children = pipeline_runs(client_for(workdir), "shared")
    assert children["use"].data.metrics["total"] == 300.0
    again = cli(
        "run",
        "shared.ipynb",
        "--artifact-store",
        "s3://pipelines/runs",
        "--from",
        "use",
        cwd=workdir,
        env=s3,
    )
    assert again.returncode == 0, again.stderr
