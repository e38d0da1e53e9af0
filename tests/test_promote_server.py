"""The promotion gate over REST (`POST models/{name}/versions/{version}/promote`), through a
real Jupyter server: versions registered by real runs started from it, the checks run in the
server's worker processes against its own tracking store, the alias checked in MLflow.

A failed check is an answer (200, `passed` false), never an HTTP error; an unknown model or
version is a 404 through the handlers' one error map.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import code, notebook, wait_for, write
from mlflow import MlflowClient

from jupyter_mlops.server.schemas import ErrorBody, Promotion

REQUEST_TIMEOUT = 300  # seconds


@pytest.fixture(autouse=True)
def own_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's store is sqlite:///<root>/mlflow.db, whatever the caller's environment."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def classifier(root: Path, model_name: str, least_accuracy: float) -> Path:
    """A notebook registering `model_name`, whose declared gate wants `least_accuracy`."""
    return write(
        notebook(
            code(
                "from sklearn.datasets import load_iris\n"
                "from sklearn.tree import DecisionTreeClassifier",
                "setup",
            ),
            code("X, y = load_iris(return_X_y=True, as_frame=True)", "stage:data"),
            code(
                "clf = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)",
                "stage:train",
                "model:clf",
            ),
            code("accuracy = clf.score(X, y)", "metrics"),
            model_name=model_name,
            promotion={"min": {"accuracy": least_accuracy}},
        ),
        root / f"{model_name}.ipynb",
    )


async def promote(api, name: str, version: str, expect: int = 200, **body: object) -> dict:
    """The endpoint's answer, checked to be exactly its model's JSON (nothing more or less)."""
    path = ("models", name, "versions", version, "promote")
    # The first request starts the server's worker processes, which then import MLflow.
    answer = await api("POST", *path, body=body, expect=expect, request_timeout=REQUEST_TIMEOUT)
    model = Promotion if expect == 200 else ErrorBody
    assert model.model_validate(answer).model_dump(mode="json") == answer
    return answer


async def test_unknown_models_versions_and_bodies_are_errors_of_the_map(api):
    missing = await promote(api, "nothing-here", "1", expect=404)
    assert missing["error"]["kind"] == "NotFound" and "nothing-here" in missing["message"]
    bad = await promote(api, "nothing-here", "latest", expect=400)
    assert bad["error"]["kind"] == "BadInput"
    assert bad["message"] == "`latest` is not a model version: use its number, like 3"
    unknown = await api(
        "POST",
        "models/m/versions/1/promote",
        body={"to": "champion", "serve": True},
        expect=400,
        request_timeout=REQUEST_TIMEOUT,
    )
    assert unknown["error"]["kind"] == "BadRequest"
    assert unknown["error"]["problems"][0]["field"] == "serve"


@pytest.mark.slow
async def test_check_then_promote_through_the_server(api, jp_root_dir):
    classifier(jp_root_dir, "passing", 0.5)
    classifier(jp_root_dir, "failing", 2.0)  # no accuracy reaches it
    started = [
        await api("POST", "runs", body={"path": f"{name}.ipynb"}, expect=202)
        for name in ("passing", "failing")
    ]
    runs = await asyncio.gather(*(wait_for(api, run["id"]) for run in started))
    for run in runs:
        assert run["status"] == "succeeded", run
    [passing] = runs[0]["models"]
    [failing] = runs[1]["models"]
    client = MlflowClient((await api("GET", "config"))["tracking_uri"])

    # The dry run: every check, nothing moved.
    checked = await promote(api, "passing", passing["version"], to="champion", dry_run=True)
    assert checked["passed"] and not checked["moved"] and checked["dry_run"]
    assert (checked["name"], checked["version"], checked["to"]) == (
        "passing",
        passing["version"],
        "champion",
    )
    assert checked["champion_before"] is None
    names = [check["name"] for check in checked["checks"]]
    assert "min accuracy" in names and "smoke test" in names
    assert all(check["passed"] and check["detail"] for check in checked["checks"])
    assert "champion" not in client.get_registered_model("passing").aliases

    # A failed check is an answer, not an error: promoting for real moves nothing.
    refused = await promote(api, "failing", failing["version"])
    assert not refused["passed"] and not refused["moved"] and not refused["dry_run"]
    [low] = [check for check in refused["checks"] if check["name"] == "min accuracy"]
    assert not low["passed"] and "2" in low["detail"]
    assert "champion" not in client.get_registered_model("failing").aliases

    # Promoting for real (the body's defaults: to champion, not a dry run).
    promoted = await promote(api, "passing", passing["version"])
    assert promoted["passed"] and promoted["moved"] and not promoted["dry_run"]
    alias = client.get_model_version_by_alias("passing", "champion")
    assert str(alias.version) == passing["version"]

    # An unknown version of a known model: 404, naming the versions there are.
    missing = await promote(api, "passing", "99", expect=404)
    assert missing["error"]["kind"] == "NotFound" and passing["version"] in missing["message"]
