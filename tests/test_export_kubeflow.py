"""The Kubeflow export: compiled by the kfp SDK (in its own virtualenv: kfp pins protobuf
below this environment's), then loaded back with the SDK and checked task by task."""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest
from cached_venv import kfp_venv
from conftest import EXAMPLES, cli, code, notebook, write

WINE_STAGES = {
    "load": ["begin"],
    "split": ["begin", "load"],
    "train": ["begin", "split"],
    "evaluate": ["begin", "split", "train"],
    "report": ["begin", "split", "train"],
}
# Loads a compiled pipeline with the SDK and prints what the test checks, as JSON.
LOAD = """
import json, sys
from google.protobuf import json_format
from kfp import components

pipeline = components.load_component_from_file(sys.argv[1])
inputs = {
    name: {"type": spec.type, "default": spec.default, "optional": spec.optional}
    for name, spec in pipeline.component_spec.inputs.items()
}
spec = json_format.MessageToDict(pipeline.pipeline_spec)
print(json.dumps({"name": pipeline.name, "inputs": inputs, "spec": spec}))
"""


@pytest.mark.slow
def test_the_compiled_pipeline_loads_back_with_one_task_per_stage(tmp_path):
    kfp_bin = kfp_venv()
    exported = cli(
        "export",
        "kubeflow",
        str(EXAMPLES / "wine_classifier.ipynb"),
        "-o",
        str(tmp_path),
        "--artifact-store",
        "s3://pipelines/kubeflow",
        "--tracking-uri",
        "http://mlflow.mlflow.svc:5000",
        "--image",
        "registry.example.com/wine:1",
        cwd=tmp_path,
        bin_dir=kfp_bin,
    )
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "wine-classifier.yaml"
    assert (tmp_path / "bundle" / "stages" / "01_load.ipynb").is_file()  # what the image holds
    loaded = subprocess.run(
        [str(kfp_bin / "python"), "-c", LOAD, str(path)], capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    pipeline = json.loads(loaded.stdout)
    assert pipeline["name"] == "wine-classifier"
    assert pipeline["inputs"] == {
        "test_size": {"type": "Float", "default": 0.3, "optional": True},
        "n_components": {"type": "Integer", "default": 2, "optional": True},
        "n_estimators": {"type": "Integer", "default": 200, "optional": True},
        "max_depth": {"type": "Integer", "default": None, "optional": True},
        "random_state": {"type": "Integer", "default": 42, "optional": True},
    }
    spec = pipeline["spec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"begin", *WINE_STAGES, "end"}
    for stage, upstream in WINE_STAGES.items():
        assert sorted(tasks[stage]["dependentTasks"]) == upstream
        run_id = tasks[stage]["inputs"]["parameters"]["run_id"]["taskOutputParameter"]
        assert run_id == {"outputParameterKey": "run_id", "producerTask": "begin"}
    assert sorted(tasks["end"]["dependentTasks"]) == sorted(["begin", *WINE_STAGES])
    assert tasks["end"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert all(not task["cachingOptions"].get("enableCache") for task in tasks.values())

    executors = spec["deploymentSpec"]["executors"]
    containers = {name.removeprefix("exec-"): e["container"] for name, e in executors.items()}
    assert {c["image"] for c in containers.values()} == {"registry.example.com/wine:1"}
    store = ["--artifact-store", "s3://pipelines/kubeflow"]
    run_id = ["--run-id", "{{$.inputs.parameters['run_id']}}"]
    assert containers["train"]["command"] == [
        "jupyter-mlops",
        "stage",
        "/pipeline/bundle/pipeline.yaml",
        "train",
        *run_id,
        *store,
    ]
    assert containers["end"]["command"] == [
        "jupyter-mlops",
        "end",
        "/pipeline/bundle/pipeline.yaml",
        *run_id,
        *store,
    ]
    begin = containers["begin"]
    assert begin["command"][:2] == ["sh", "-c"]
    assert 'jupyter-mlops begin "$@"' in begin["command"][2]
    assert begin["args"][:6] == [
        "{{$.outputs.parameters['run_id'].output_file}}",
        "/pipeline/bundle/pipeline.yaml",
        *store,
        "--tracking-uri",
        "http://mlflow.mlflow.svc:5000",
    ]
    assert begin["args"][6:9] == ["-p", "test_size", "{{$.inputs.parameters['test_size']}}"]
    optional = json.loads(begin["args"][15])  # max_depth: passed only when a run sets it
    assert optional["IfPresent"] == {
        "InputName": "max_depth",
        "Then": ["-p", "max_depth", "{{$.inputs.parameters['max_depth']}}"],
    }
    outputs = spec["components"]["comp-begin"]["outputDefinitions"]["parameters"]
    assert outputs == {"run_id": {"parameterType": "STRING"}}


@pytest.mark.skipif(importlib.util.find_spec("kfp") is not None, reason="kfp is installed")
def test_without_kfp_the_export_says_how_to_get_it(tmp_path):
    write(notebook(code("x = 1", "stage:one")), tmp_path / "one.ipynb")
    refused = cli(
        "export", "kubeflow", "one.ipynb", "-o", "out", "--artifact-store", "s3://b/p", cwd=tmp_path
    )
    assert refused.returncode == 2
    assert "pip install kfp" in refused.stderr


def test_kubeflow_needs_a_store_every_pod_reaches(tmp_path):
    write(notebook(code("x = 1", "stage:one")), tmp_path / "one.ipynb")
    refused = cli("export", "kubeflow", "one.ipynb", "-o", "out", cwd=tmp_path)
    assert refused.returncode == 2
    assert "pass --artifact-store with a URL every pod can reach" in refused.stderr
