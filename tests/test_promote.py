"""The promotion gate: `jupyter-mlops promote` and `tracking.promote`, on a real MLflow store.

One sqlite store (not ./mlflow.db) is shared by the module: a few real logged models (a
scikit-learn classifier on four columns, the same on renamed columns, a pyfunc model that
raises) are logged once, and each test registers the versions it needs under its own model
name, with the metrics of a run of its own (as a pipeline's parent run carries them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import EXAMPLES, cli
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow_helpers import MlflowServer
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from jupyter_mlops.analysis import analyze_notebook as analyze
from jupyter_mlops.errors import BadInput, NotFound
from jupyter_mlops.promote import (
    BeatsChampion,
    CheckResult,
    PromotionChecks,
    PromotionResult,
    with_promotion_section,
)
from jupyter_mlops.tracking import promote
from jupyter_mlops.tracking.client import process_store

TAG = "jupyter_mlops."
REQUIRES = ["scikit-learn"]  # given: MLflow's inference of them runs the model in a subprocess


class Raises(mlflow.pyfunc.PythonModel):
    """A model that loads but can't predict: what the smoke test is for."""

    def predict(self, context, model_input, params=None):
        raise RuntimeError("the scaler was left out of the model")


@dataclass
class Store:
    uri: str
    client: MlflowClient
    models: dict[str, str]  # kind -> logged model id
    experiment_id: str
    folder: Path

    def version(
        self,
        name: str,
        kind: str = "iris",
        promotion: dict | None = None,
        **metrics: float,
    ) -> str:
        """A new version of `name` from the logged model `kind`, whose run has `metrics`
        (and, given `promotion`, the pipeline.yaml a pipeline's parent run logs)."""
        run = self.client.create_run(self.experiment_id)
        for key, value in metrics.items():
            self.client.log_metric(run.info.run_id, key, value)
        if promotion is not None:
            spec = self.folder / "spec"
            spec.mkdir(exist_ok=True)
            (spec / "pipeline.yaml").write_text(
                yaml.safe_dump({"schema_version": 1, "name": name, "promotion": promotion})
            )
            self.client.log_artifact(run.info.run_id, str(spec / "pipeline.yaml"))
        self.client.set_terminated(run.info.run_id)
        try:
            self.client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            self.client.create_registered_model(name)
        model_id = self.models[kind]
        with process_store(self.uri):  # the SQL registry finds models:/m-... through it
            created = self.client.create_model_version(
                name, source=f"models:/{model_id}", run_id=run.info.run_id, model_id=model_id
            )
        self.client.set_registered_model_alias(name, "candidate", created.version)
        return str(created.version)

    def aliases(self, name: str) -> dict[str, str]:
        aliases = self.client.get_registered_model(name).aliases
        return {alias: str(version) for alias, version in aliases.items()}

    def tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    folder = tmp_path_factory.mktemp("promote")
    uri = f"sqlite:///{folder / 'registry.db'}"
    return make_store(uri, folder, str(folder / "art"))


def make_store(uri: str, folder: Path, artifacts: str | None, only: str | None = None) -> Store:
    """The store at `uri` with the logged models (or `only` one of them) the tests register."""
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("promote", artifact_location=artifacts)
    features, target = load_iris(return_X_y=True, as_frame=True)
    features.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    renamed = features.rename(columns={"petal_width": "petal_w"})
    models = {}
    with process_store(uri):
        for kind, frame in (("iris", features), ("renamed", renamed)):
            if only not in (None, kind):
                continue
            with mlflow.start_run(experiment_id=experiment_id):
                fitted = LogisticRegression(max_iter=500).fit(frame, target)
                info = mlflow.sklearn.log_model(
                    fitted, name=kind, input_example=frame.iloc[:5], pip_requirements=REQUIRES
                )
            models[kind] = info.model_id
        with mlflow.start_run(experiment_id=experiment_id):
            if only not in (None, "raises"):
                return Store(uri, client, models, experiment_id, folder)
            info = mlflow.pyfunc.log_model(
                name="raises",
                python_model=Raises(),
                input_example=features.iloc[:3],
                signature=infer_signature(features, target),
                pip_requirements=REQUIRES,
            )
        models["raises"] = info.model_id
    return Store(uri, client, models, experiment_id, folder)


def check(result: PromotionResult, name: str) -> CheckResult:
    return next(c for c in result.checks if c.name == name)


def test_the_first_promotion_passes_with_no_champion_and_is_recorded(store):
    version = store.version("first", accuracy=0.93, f1_macro=0.91)
    checks = PromotionChecks(min={"accuracy": 0.9}, beats_champion=BeatsChampion("f1_macro"))
    result = promote(store.uri, "first", checks=checks)
    assert result.passed and result.moved
    assert (result.version, result.to, result.champion_before) == (version, "champion", None)
    assert [(c.name, c.passed) for c in result.checks] == [
        ("min accuracy", True),
        ("beats champion", True),
        ("signature", True),
        ("smoke test", True),
    ]
    assert check(result, "min accuracy").detail == "accuracy is 0.93 ≥ 0.9"
    assert "no version has the alias `champion` yet" in check(result, "beats champion").detail
    smoke = check(result, "smoke test").detail
    assert smoke == "loaded through pyfunc, 5 predictions for the 5 rows of its input example"
    assert store.aliases("first") == {"candidate": version, "champion": version}
    tags = store.tags("first", version)
    assert tags[TAG + "promotion.champion"] == "passed"
    assert json.loads(tags[TAG + "promotion.checks"]) == {
        "min accuracy": True,
        "beats champion": True,
        "signature": True,
        "smoke test": True,
    }
    assert tags[TAG + "promoted_at"].endswith("+00:00") and tags[TAG + "promoted_by"]
    card = store.client.get_model_version("first", version).description.replace("&emsp;", "")
    assert card.startswith("## Promotion\n\nPromoted to `@champion` on ")
    assert "| min accuracy | ✓ passed | accuracy is 0.93 ≥ 0.9 |" in card
    # MLflow's process-wide URI and the environment are as they were
    assert "MLFLOW_TRACKING_URI" not in os.environ or os.environ["MLFLOW_TRACKING_URI"] != store.uri
    assert mlflow.get_tracking_uri() != store.uri


def test_beating_the_champion_by_the_margin_moves_the_alias_and_keeps_one_card_section(store):
    first = store.version("beats", accuracy=0.90, f1_macro=0.88)
    assert promote(store.uri, "beats").passed
    store.client.update_model_version("beats", first, description="# Card\n\ntext")
    second = store.version("beats", accuracy=0.95, f1_macro=0.90)
    store.client.update_model_version("beats", second, description="# Card\n\ntext\n")
    checks = PromotionChecks(beats_champion=BeatsChampion("f1_macro", 0.02))
    result = promote(store.uri, "beats", checks=checks)
    assert result.passed and result.champion_before == first
    detail = check(result, "beats champion").detail
    assert detail == (
        f"f1_macro is 0.9 against 0.88 for champion v{first}: better by 0.02 (higher is better), "
        "needs to be better by at least 0.02"
    )
    assert store.aliases("beats")["champion"] == second
    again = promote(store.uri, "beats", checks=checks)  # already the champion: still passes
    assert again.passed and check(again, "beats champion").detail.endswith(
        "already is the `champion`"
    )
    card = store.client.get_model_version("beats", second).description
    assert card.startswith("# Card\n\ntext\n\n## Promotion\n")
    assert card.count("## Promotion") == 1
    assert f"(before: version {first})" not in card  # the latest decision: it already was


def test_falling_short_of_the_margin_or_a_threshold_fails_and_moves_nothing(store, workdir):
    champion = store.version("short", accuracy=0.90, f1_macro=0.88, rmse=3.0)
    assert promote(store.uri, "short").passed
    candidate = store.version("short", accuracy=0.85, f1_macro=0.885, rmse=3.5)
    result = cli(
        "promote", "short", "--tracking-uri", store.uri,
        "--min", "accuracy=0.9", "--max", "rmse=3.2", "--beats-champion", "f1_macro:0.01",
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "✗ min accuracy: accuracy is 0.85 < 0.9, needs ≥ 0.9"
    assert lines[1] == "✗ max rmse: rmse is 3.5 > 3.2, needs ≤ 3.2"
    assert lines[2] == (
        f"✗ beats champion: f1_macro is 0.885 against 0.88 for champion v{champion}: "
        "better by 0.005 (higher is better), needs to be better by at least 0.01"
    )
    assert lines[3].startswith("✓ signature: the same 4 inputs and types as champion")
    assert lines[-1] == "not promoted: 3 of 5 checks failed; @champion not moved"
    assert store.aliases("short")["champion"] == champion
    tags = store.tags("short", candidate)
    assert tags[TAG + "promotion.champion"] == "failed"
    assert TAG + "promoted_at" not in tags
    assert "## Promotion" not in (
        store.client.get_model_version("short", candidate).description or ""
    )


def test_a_lower_is_better_metric_and_a_missing_metric(store):
    store.version("lower", rmse=3.0)
    assert promote(store.uri, "lower").passed
    store.version("lower", rmse=2.5)
    result = promote(
        store.uri, "lower", checks=PromotionChecks(beats_champion=BeatsChampion("rmse", 0.4))
    )
    assert check(result, "beats champion").passed, check(result, "beats champion").detail
    assert "better by 0.5 (lower is better)" in check(result, "beats champion").detail
    missing = promote(store.uri, "lower", checks=PromotionChecks(min={"accuracy": 0.5}))
    assert not missing.passed
    assert check(missing, "min accuracy").detail.endswith(
        "has no metric `accuracy` (its metrics: rmse)"
    )


def test_a_signature_that_differs_from_the_champions_fails(store):
    store.version("signed", accuracy=0.9)
    assert promote(store.uri, "signed").passed
    store.version("signed", kind="renamed", accuracy=0.95)
    result = promote(store.uri, "signed", dry_run=True)
    assert not result.passed and not result.moved
    detail = check(result, "signature").detail
    assert detail == (
        "differs from champion v1's: input `petal_width` is missing; input `petal_w` is new"
    )
    assert check(result, "smoke test").passed
    without = promote(store.uri, "signed", checks=PromotionChecks(signature=False), dry_run=True)
    assert without.passed and "signature" not in [c.name for c in without.checks]


def test_a_model_that_cant_predict_fails_the_smoke_test(store):
    store.version("broken", kind="raises", accuracy=0.99)
    result = promote(store.uri, "broken")
    assert not result.passed
    detail = check(result, "smoke test").detail
    assert detail == (
        "predicting on the 3-row input example failed: "
        "RuntimeError: the scaler was left out of the model"
    )
    assert "champion" not in store.aliases("broken")
    assert store.tags("broken", "1")[TAG + "promotion.champion"] == "failed"


def test_a_dry_run_moves_and_records_nothing(store, workdir):
    version = store.version("dry", accuracy=0.91)
    result = cli("promote", "dry", "--tracking-uri", store.uri, "--dry-run", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["passed"] and answer["dry_run"] and not answer["moved"]
    assert answer["version"] == version and answer["champion_before"] is None
    assert {c["name"] for c in answer["checks"]} == {"signature", "smoke test"}
    assert "champion" not in store.aliases("dry")
    assert not any(key.startswith(TAG) for key in store.tags("dry", version))


def test_declared_checks_come_from_the_versions_pipeline_yaml_and_flags_override_them(store):
    declared = {"min": {"accuracy": 0.95}, "smoke_test": False}
    store.version("declared", promotion=declared, accuracy=0.93)
    result = promote(store.uri, "declared", dry_run=True)
    assert [(c.name, c.passed) for c in result.checks] == [
        ("min accuracy", False),
        ("signature", True),
    ]
    lowered = promote(
        store.uri, "declared", checks=PromotionChecks(min={"accuracy": 0.9}), dry_run=True
    )
    assert lowered.passed
    bad = store.version("declared", promotion={"minimum": {"accuracy": 0.9}}, accuracy=0.9)
    with pytest.raises(BadInput, match=r"unknown key `promotion.minimum`; the keys are min"):
        promote(store.uri, "declared", version=bad, dry_run=True)


def test_unknown_models_and_versions_are_usage_errors_naming_what_exists(store, workdir):
    store.version("known", accuracy=0.9)
    with pytest.raises(NotFound, match=r"no registered model `unknown` in sqlite:///.*known"):
        promote(store.uri, "unknown")
    result = cli("promote", "known", "--version", "7", "--tracking-uri", store.uri, cwd=workdir)
    assert result.returncode == 2
    assert "Usage: jupyter-mlops promote [OPTIONS] NAME" in result.stderr
    assert "Error: `known` has no version 7; its versions: 1" in result.stderr
    store.client.delete_registered_model_alias("known", "candidate")
    with pytest.raises(NotFound, match="no version of `known` has the alias `candidate`"):
        promote(store.uri, "known")
    with pytest.raises(BadInput, match="can't promote to the alias 'latest'"):
        promote(store.uri, "known", version="1", to="latest")
    missing = workdir / "elsewhere.db"
    with pytest.raises(NotFound, match=f"`known`: there is no MLflow store at {missing}; give"):
        promote(f"sqlite:///{missing}", "known")
    assert not missing.exists()


def test_checks_are_validated_with_the_key_named():
    with pytest.raises(BadInput, match=r"unknown key `jupyter_mlops.promotion.minimum`"):
        PromotionChecks.from_dict({"minimum": {"accuracy": 0.9}})
    with pytest.raises(BadInput, match=r"`jupyter_mlops.promotion.min.accuracy` must be a number"):
        PromotionChecks.from_dict({"min": {"accuracy": "high"}})
    with pytest.raises(BadInput, match=r"margin` is -0.1: give a margin of 0 or more"):
        PromotionChecks.from_dict({"beats_champion": {"metric": "f1", "margin": -0.1}})
    declared = {
        "min": {"accuracy": 0.9},
        "beats_champion": {"metric": "f1_macro", "margin": 0.0},
        "signature": True,
    }
    assert PromotionChecks.from_dict(declared).to_dict() == declared
    over = PromotionChecks(min={"f1": 0.5}, smoke_test=False).over(
        PromotionChecks.from_dict(declared)
    )
    assert over.min == {"accuracy": 0.9, "f1": 0.5} and over.smoke_test is False
    assert over.signature is True and over.beats_champion == BeatsChampion("f1_macro")


def test_the_notebook_declares_checks_and_the_bundle_carries_them(tmp_path):
    from conftest import code, notebook, write

    from jupyter_mlops.bundle import read_bundle
    from jupyter_mlops.pipeline import convert

    promotion = {"min": {"accuracy": 0.9}, "beats_champion": {"metric": "f1_macro"}}
    nb = notebook(code("x = 1", "stage:one"), promotion=promotion)
    analysis = analyze(nb)
    expected = {"min": {"accuracy": 0.9}, "beats_champion": {"metric": "f1_macro", "margin": 0.0}}
    assert analysis.settings.promotion == expected
    assert analysis.to_dict()["settings"]["promotion"] == expected
    assert "promotion" not in analyze(notebook(code("x = 1", "stage:one"))).to_dict()["settings"]
    convert(write(nb, tmp_path / "nb.ipynb"), tmp_path / "bundle", lambda _: None)
    assert yaml.safe_load((tmp_path / "bundle/pipeline.yaml").read_text())["promotion"] == expected
    assert read_bundle(tmp_path / "bundle").promotion == expected
    bad = analyze(notebook(code("x = 1", "stage:one"), promotion={"smoke": True}))
    assert [d.code for d in bad.errors] == ["bad-settings"]
    assert "unknown key `jupyter_mlops.promotion.smoke`" in bad.errors[0].message


def test_the_card_keeps_one_promotion_section():
    from datetime import UTC, datetime

    result = PromotionResult(
        "m", "2", "champion", True, True, [CheckResult("a", True, "x | y")], "1"
    )
    when = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    card = with_promotion_section("# Card\n\n## Metrics\n\nm\n", result, when, "ann")
    assert card.endswith(
        "## Promotion\n\nPromoted to `@champion` on 2026-01-02 03:04 UTC by ann "
        "(before: version 1).\n\n| check&emsp; | result&emsp; | figures |\n|---|---|---|\n"
        "| a&emsp; | ✓ passed&emsp; | x \\| y |\n"
    )
    middle = card + "\n## Later\n\nkept\n"
    again = with_promotion_section(middle, result, when, "bob")
    assert again.count("## Promotion") == 1 and "by bob" in again and "by ann" not in again
    assert again.endswith("## Later\n\nkept\n") and again.startswith("# Card\n\n## Metrics\n")


@pytest.mark.slow
def test_serve_starts_mlflow_models_serve_and_posts_the_input_example(store):
    store.version("served", accuracy=0.9)
    result = promote(store.uri, "served", serve=True, dry_run=True)
    serving = check(result, "serving")
    assert serving.passed, serving.detail
    assert serving.detail.startswith("`mlflow models serve` on 127.0.0.1:")
    assert serving.detail.endswith(
        "answered 5 predictions for the 5 rows of its serving input example"
    )


@pytest.mark.slow
def test_promotion_through_a_tracking_server(tmp_path):
    """Over HTTP, artifacts proxied by the server (`mlflow-artifacts:`): the model is fetched
    and loaded through it, the alias and the decision recorded there."""
    with MlflowServer(tmp_path / "server") as uri:
        _promote_through(uri, tmp_path)


def _promote_through(uri: str, tmp_path: Path) -> None:
    served = make_store(uri, tmp_path, None, only="iris")
    version = served.version("remote", accuracy=0.92)
    result = promote(uri, "remote", checks=PromotionChecks(min={"accuracy": 0.9}))
    assert result.passed, result.checks
    assert check(result, "smoke test").detail.startswith("loaded through pyfunc, 5 predictions")
    assert served.aliases("remote")["champion"] == version
    assert served.tags("remote", version)[TAG + "promotion.champion"] == "passed"
    assert mlflow.get_tracking_uri() != uri and os.environ.get("MLFLOW_TRACKING_URI") != uri


@pytest.mark.slow
def test_the_wine_example_is_promoted_end_to_end(workdir):
    """The wine example, its notebook declaring checks, run twice into a non-default store:
    the first version becomes champion, the second is judged against it."""
    nb = json.loads((EXAMPLES / "wine_classifier.ipynb").read_text())
    declared = {"min": {"accuracy": 0.8}, "beats_champion": {"metric": "f1_macro"}}
    nb["metadata"]["jupyter_mlops"]["promotion"] = declared
    source = workdir / "wine_classifier.ipynb"
    source.write_text(json.dumps(nb))
    uri = f"sqlite:///{workdir / 'a.db'}"
    ran = cli("run", str(source), "--tracking-uri", uri, cwd=workdir)
    assert ran.returncode == 0, ran.stderr
    promoted = cli("promote", "wine-classifier", "--tracking-uri", uri, cwd=workdir)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    lines = promoted.stdout.splitlines()
    assert lines[0].startswith("✓ min accuracy: accuracy is ") and lines[0].endswith(" ≥ 0.8")
    assert lines[1] == "✓ beats champion: no version has the alias `champion` yet: none to beat"
    assert "✓ smoke test: loaded through pyfunc, 5 predictions for the 5 rows" in promoted.stdout
    assert lines[-1] == "promoted `wine-classifier` v1 to @champion"
    assert promoted.stderr == ""
    client = MlflowClient(tracking_uri=uri)
    assert str(client.get_registered_model("wine-classifier").aliases["champion"]) == "1"
    card = client.get_model_version("wine-classifier", "1").description.replace("&emsp;", "")
    assert card.count("## Promotion") == 1 and "| smoke test | ✓ passed |" in card
    assert not (workdir / "mlflow.db").exists()  # nothing went to the default store

    rerun = cli("run", str(source), "-p", "n_estimators", "20", "--tracking-uri", uri, cwd=workdir)
    assert rerun.returncode == 0, rerun.stderr
    second = cli(
        "promote", "wine-classifier", "--tracking-uri", uri, "--json",
        "--beats-champion", "f1_macro:0.5", cwd=workdir,
    )  # fmt: skip
    assert second.returncode == 1, second.stderr
    answer = json.loads(second.stdout)
    assert (answer["version"], answer["champion_before"], answer["passed"]) == ("2", "1", False)
    beats = next(c for c in answer["checks"] if c["name"] == "beats champion")
    assert not beats["passed"] and "for champion v1: " in beats["detail"]
    assert beats["detail"].endswith("needs to be better by at least 0.5")
    assert next(c for c in answer["checks"] if c["name"] == "signature")["passed"]
    assert str(client.get_registered_model("wine-classifier").aliases["champion"]) == "1"


def test_predictions_are_counted_per_row():
    from jupyter_mlops.tracking.promotion import _rows, _serving_rows

    assert _rows(pd.DataFrame({"a": [1, 2, 3]})) == 3
    assert _rows(np.zeros((4, 2))) == 4 and _rows([1, 2]) == 2 and _rows({"a": 1}) == 1
    payload = json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}})
    assert _serving_rows(payload.encode()) == 2
