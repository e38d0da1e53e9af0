"""The promotion gate: a registered version's checks, then the alias, recorded on the version.

`promote` runs in whichever process asks (the CLI, the Jupyter server). It reads everything
through one client for the tracking URI it is given; the two things MLflow only resolves
through its process-wide URI (downloading `models:/NAME/N`, loading a model's metadata) run
inside `process_store`, which puts that URI back afterwards. `mlflow models serve` is a
subprocess told the URI in its own environment.

A version's metrics are those of its run (the pipeline's parent run, which carries every
stage's metrics), completed by the metrics logged against its logged model. Its declared
checks come from the pipeline.yaml that run logged, so a version is judged by the checks of
the code that trained it. Passing moves the alias (never the deprecated stages); passing or
not, the decision is recorded on the version as tags, and a pass as a section of its card.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import BadInput, NotFound
from ..promote import (
    BeatsChampion,
    CheckResult,
    PromotionChecks,
    PromotionResult,
    check_alias,
    with_promotion_section,
)
from .client import (
    TAG_PREFIX,
    GuardedClient,
    connect,
    current_user,
    model_versions,
    process_store,
    resolve_tracking_uri,
    without_credentials,
)
from .registry import CANDIDATE_ALIAS

SERVE_START_TIMEOUT = 180.0  # seconds for `mlflow models serve` to answer /ping
SERVE_REQUEST_TIMEOUT = 60.0  # seconds for /invocations to answer
SERVE_LOG_TAIL = 600  # characters of the server's log quoted when it fails


@dataclass
class _Version:
    """What the checks need to know about one registered version."""

    number: str
    run_id: str | None
    model_id: str | None
    description: str
    metrics: dict[str, float]


def promote(
    tracking_uri: str | None,
    name: str,
    version: str | None = None,
    to: str = "champion",
    checks: PromotionChecks | None = None,
    serve: bool = False,
    dry_run: bool = False,
) -> PromotionResult:
    """Check version `version` of `name` (default: the `candidate`) and, if every check
    passes, give it the alias `to`; the decision is recorded on the version unless `dry_run`.

    `checks` are laid over those the version's pipeline declared. A failing check is a
    result (`passed` False), not an error; NotFound names what exists when the model, the
    version or the candidate alias doesn't.
    """
    check_alias(to)
    uri = resolve_tracking_uri(tracking_uri)
    _refuse_a_missing_sqlite_store(uri, name)
    client = connect(uri)
    aliases = _aliases(client, name, uri)
    number = _version_number(client, name, version, aliases)
    target = _read_version(client, name, number)
    holder = aliases.get(to)
    champion = _read_version(client, name, holder) if holder else None
    wanted = (checks or PromotionChecks()).over(_declared_checks(client, target))

    results = [*_thresholds(wanted, target)]
    if wanted.beats_champion is not None:
        results.append(_beats_champion(wanted.beats_champion, target, champion, to))
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-promote-") as scratch:
        results += _model_checks(uri, name, target, champion, to, wanted, serve, Path(scratch))

    passed = all(check.passed for check in results)
    result = PromotionResult(
        name=name,
        version=number,
        to=to,
        passed=passed,
        moved=passed and not dry_run,
        checks=results,
        champion_before=holder,
        dry_run=dry_run,
    )
    if not dry_run:
        _record(client, result, target)
    return result


# --- finding the version ------------------------------------------------------------------


def _refuse_a_missing_sqlite_store(uri: str, name: str) -> None:
    """NotFound for a sqlite file that isn't there: connecting would create an empty store
    (and a promotion finds nothing in it), so a mistyped path is said as such."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_file():
        raise NotFound(
            f"no registered model `{name}`: there is no MLflow store at {uri[len(prefix) :]}; "
            "give --tracking-uri (or MLFLOW_TRACKING_URI) the store a pipeline run logged to"
        )


def _aliases(client: GuardedClient, name: str, uri: str) -> dict[str, str]:
    """The registered model's aliases (alias -> version); NotFound naming the models there are."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        names = sorted(m.name for m in client.search_registered_models(max_results=1000))
        there = (
            f"the registered models are: {', '.join(names)}"
            if names
            else "it has no registered models yet (a pipeline run registers them)"
        )
        where = without_credentials(uri)
        raise NotFound(f"no registered model `{name}` in {where}; {there}") from None
    return {alias: str(number) for alias, number in (model.aliases or {}).items()}


def _version_number(
    client: GuardedClient, name: str, version: str | None, aliases: dict[str, str]
) -> str:
    numbers = _version_numbers(client, name)
    listed = ", ".join(numbers) or "none"
    if version is None:
        if CANDIDATE_ALIAS not in aliases:
            raise NotFound(
                f"no version of `{name}` has the alias `{CANDIDATE_ALIAS}`; give --version "
                f"(its versions: {listed})"
            )
        return aliases[CANDIDATE_ALIAS]
    number = str(version).strip().removeprefix("v")
    if number not in numbers:
        raise NotFound(f"`{name}` has no version {version}; its versions: {listed}")
    return number


def _version_numbers(client: GuardedClient, name: str) -> list[str]:
    versions = model_versions(client, name)
    return sorted((str(v.version) for v in versions), key=int)


def _read_version(client: GuardedClient, name: str, number: str) -> _Version:
    found = client.get_model_version(name, number)
    model_id = getattr(found, "model_id", None) or _model_id_of(found.source or "")
    return _Version(
        number=number,
        run_id=found.run_id or None,
        model_id=model_id,
        description=found.description or "",
        metrics=_metrics(client, found.run_id, model_id),
    )


def _model_id_of(source: str) -> str | None:
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def _metrics(client: GuardedClient, run_id: str | None, model_id: str | None) -> dict[str, float]:
    """The version's run's metrics, completed by those logged against its logged model."""
    from mlflow.exceptions import MlflowException

    metrics: dict[str, float] = {}
    if model_id:
        with suppress(MlflowException):
            for metric in client.get_logged_model(model_id).metrics or []:
                metrics[metric.key] = metric.value
    if run_id:
        with suppress(MlflowException):
            metrics.update(client.get_run(run_id).data.metrics)
    return metrics


def _declared_checks(client: GuardedClient, version: _Version) -> PromotionChecks:
    """The checks in the pipeline.yaml the version's run logged; none if it logged none."""
    from mlflow.exceptions import MlflowException

    from ..bundle import declared_checks
    from ..parameters import load_yaml

    if not version.run_id:
        return PromotionChecks()
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-promote-") as scratch:
        try:
            path = client.download_artifacts(version.run_id, "pipeline.yaml", scratch)
        except (MlflowException, OSError):
            return PromotionChecks()  # registered by hand, not by a pipeline run
        text = Path(path).read_text(encoding="utf-8")
    try:
        spec = load_yaml(text)
        return declared_checks(spec if isinstance(spec, dict) else {})
    except BadInput as error:
        raise BadInput(
            f"the pipeline.yaml of run {version.run_id} (version {version.number}): {error}; "
            "fix the notebook's `jupyter_mlops.promotion` metadata and run it again"
        ) from None


# --- the checks -----------------------------------------------------------------------------


def _figure(value: float) -> str:
    return f"{value:.4g}"


def _missing_metric(metric: str, version: _Version, whose: str) -> str:
    logged = ", ".join(sorted(version.metrics)) or "none"
    return f"{whose} has no metric `{metric}` (its metrics: {logged})"


def _thresholds(checks: PromotionChecks, version: _Version) -> list[CheckResult]:
    results = []
    for kind, bounds, sign in (("min", checks.min, "≥"), ("max", checks.max, "≤")):
        for metric, bound in bounds.items():
            name = f"{kind} {metric}"
            value = version.metrics.get(metric)
            if value is None:
                missing = _missing_metric(metric, version, f"v{version.number}")
                results.append(CheckResult(name, False, missing))
                continue
            passed = value >= bound if kind == "min" else value <= bound
            relation = sign if passed else ("<" if kind == "min" else ">")
            needed = "" if passed else f", needs {sign} {_figure(bound)}"
            detail = f"{metric} is {_figure(value)} {relation} {_figure(bound)}{needed}"
            results.append(CheckResult(name, passed, detail))
    return results


def _beats_champion(
    check: BeatsChampion, target: _Version, champion: _Version | None, alias: str
) -> CheckResult:
    name, metric = "beats champion", check.metric
    if champion is None:
        return CheckResult(name, True, f"no version has the alias `{alias}` yet: none to beat")
    if champion.number == target.number:
        return CheckResult(name, True, f"v{target.number} already is the `{alias}`")
    ours, theirs = target.metrics.get(metric), champion.metrics.get(metric)
    if ours is None:
        return CheckResult(name, False, _missing_metric(metric, target, f"v{target.number}"))
    if theirs is None:
        whose = f"{alias} v{champion.number}"
        return CheckResult(
            name, False, _missing_metric(metric, champion, whose) + ": nothing to compare with"
        )
    better = ours - theirs if check.maximize else theirs - ours
    passed = better > check.margin or math.isclose(better, check.margin, abs_tol=1e-12)
    way = "higher" if check.maximize else "lower"
    detail = (
        f"{metric} is {_figure(ours)} against {_figure(theirs)} for {alias} v{champion.number}: "
        f"{'better' if better >= 0 else 'worse'} by {_figure(abs(better))} ({way} is better), "
        f"needs to be better by at least {_figure(check.margin)}"
    )
    return CheckResult(name, passed, detail)


def _model_checks(
    uri: str,
    name: str,
    target: _Version,
    champion: _Version | None,
    alias: str,
    checks: PromotionChecks,
    serve: bool,
    scratch: Path,
) -> list[CheckResult]:
    """The checks that need the model itself: signature, smoke test, serving."""
    from mlflow.models import Model

    wants_signature = checks.check_signature
    if not (wants_signature or checks.run_smoke_test or serve):
        return []
    results: list[CheckResult] = []
    local: Path | None = None
    with process_store(uri):  # `models:/NAME/N` resolves through the process-wide registry
        try:
            local = _download(f"models:/{name}/{target.number}", scratch / "candidate")
            ours = Model.load(str(local))
        except Exception as error:  # any failure to fetch fails the gate
            failure = f"v{target.number} can't be downloaded: {_error_text(error)}"
            return [
                CheckResult(check, False, failure) for check in _model_check_names(checks, serve)
            ]
        if wants_signature:
            results.append(_signature(name, ours, target, champion, alias))
        if checks.run_smoke_test:
            results.append(_smoke_test(local, ours, target))
    if serve:
        results.append(_serve(uri, name, local, ours, target))
    return results


def _model_check_names(checks: PromotionChecks, serve: bool) -> list[str]:
    wanted = [
        ("signature", checks.check_signature),
        ("smoke test", checks.run_smoke_test),
        ("serving", serve),
    ]
    return [name for name, on in wanted if on]


def _download(model_uri: str, into: Path) -> Path:
    import mlflow

    into.mkdir(parents=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))


def _error_text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _signature(
    name: str, ours: Any, target: _Version, champion: _Version | None, alias: str
) -> CheckResult:
    """Same input columns (names and types) and the same output types as the champion."""
    from mlflow.models import Model

    check = "signature"
    if champion is None:
        return CheckResult(check, True, f"no version has the alias `{alias}` yet: none to match")
    if champion.number == target.number:
        return CheckResult(check, True, f"v{target.number} already is the `{alias}`")
    whose = f"{alias} v{champion.number}"
    try:
        theirs = Model.load(f"models:/{name}/{champion.number}").signature
    except Exception as error:
        return CheckResult(check, False, f"{whose}'s signature can't be read: {_error_text(error)}")
    if theirs is None:
        return CheckResult(check, True, f"{whose} was logged without a signature: none to match")
    if ours.signature is None:
        return CheckResult(
            check, False, f"v{target.number} was logged without a signature, but {whose} has one"
        )
    problems = signature_differences(ours.signature, theirs)
    if problems:
        return CheckResult(check, False, f"differs from {whose}'s: " + "; ".join(problems))
    inputs = _specs(ours.signature.inputs)
    outputs = ", ".join(kind for _, kind in _specs(ours.signature.outputs)) or "none"
    detail = (
        f"the same {len(inputs)} input{'s' if len(inputs) != 1 else ''} and types as "
        f"{whose}'s, and the same output ({outputs})"
    )
    return CheckResult(check, True, detail)


def signature_differences(ours: Any, theirs: Any) -> list[str]:
    """What in signature `ours` a caller of `theirs` would trip on (empty: compatible)."""
    problems = []
    mine, others = _specs(ours.inputs), _specs(theirs.inputs)
    named = all(n for n, _ in mine + others)
    if named:
        have, want = dict(mine), dict(others)
        problems += [f"input `{n}` is missing" for n in want if n not in have]
        problems += [f"input `{n}` is new" for n in have if n not in want]
        problems += [
            f"input `{n}` is {have[n]}, was {want[n]}"
            for n in want
            if n in have and have[n] != want[n]
        ]
    elif [k for _, k in mine] != [k for _, k in others]:
        problems.append(
            f"inputs are {', '.join(k for _, k in mine)}, were {', '.join(k for _, k in others)}"
        )
    out, was = [k for _, k in _specs(ours.outputs)], [k for _, k in _specs(theirs.outputs)]
    if out != was:
        problems.append(f"output is {', '.join(out) or 'none'}, was {', '.join(was) or 'none'}")
    return problems


def _specs(schema: Any) -> list[tuple[str, str]]:
    """A schema's entries as (name or '', type text): `double`, `tensor float64 (-1, 13)`."""
    if schema is None:
        return []
    entries = []
    for spec in schema.inputs:
        data = spec.to_dict()
        kind = str(data.get("type"))
        tensor = data.get("tensor-spec")
        if tensor:
            kind = f"tensor {tensor.get('dtype')} {tuple(tensor.get('shape') or ())}"
        entries.append((str(data.get("name") or ""), kind))
    return entries


def _rows(value: Any) -> int:
    """How many rows an input example or a prediction has (a dict or scalar is one)."""
    if isinstance(value, dict) or not hasattr(value, "__len__") or isinstance(value, str):
        return 1
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape else len(value)


def _smoke_test(local: Path, meta: Any, target: _Version) -> CheckResult:
    """Load through pyfunc, predict on the saved input example: a prediction per row."""
    import mlflow

    check = "smoke test"
    try:
        example = meta.load_input_example(str(local))
    except Exception as error:
        return CheckResult(check, False, f"its input example can't be read: {_error_text(error)}")
    if example is None:
        return CheckResult(
            check,
            False,
            f"v{target.number} was logged without an input example, so there is nothing to "
            "predict on; log it with `input_example=` or pass --no-smoke-test",
        )
    try:
        model = mlflow.pyfunc.load_model(str(local))
    except Exception as error:
        return CheckResult(check, False, f"loading through pyfunc failed: {_error_text(error)}")
    rows = _rows(example)
    try:
        predictions = model.predict(example)
    except Exception as error:
        return CheckResult(
            check,
            False,
            f"predicting on the {rows}-row input example failed: {_error_text(error)}",
        )
    answered = _rows(predictions)
    passed = answered == rows
    return CheckResult(
        check,
        passed,
        f"loaded through pyfunc, {answered} prediction{'s' if answered != 1 else ''} "
        f"for the {rows} row{'s' if rows != 1 else ''} of its input example",
    )


# --- `mlflow models serve` -------------------------------------------------------------------


def _serve(uri: str, name: str, local: Path | None, meta: Any, target: _Version) -> CheckResult:
    """Start `mlflow models serve` on the version, post its serving input example to
    /invocations, and stop the server whatever happened."""
    from mlflow.models.utils import SERVING_INPUT_FILENAME

    check = "serving"
    info = meta.saved_input_example_info or {}
    payload_path = local / info.get("serving_input_path", SERVING_INPUT_FILENAME) if local else None
    if payload_path is None or not payload_path.is_file():
        return CheckResult(
            check,
            False,
            f"v{target.number} has no {SERVING_INPUT_FILENAME} (it was logged without an "
            "input example), so there is nothing to post to the server",
        )
    payload = payload_path.read_bytes()
    rows = _serving_rows(payload)
    port = _free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", f"models:/{name}/{target.number}",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    environment = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers are stopped with it, as one group
        )
        try:
            detail = _ask_server(server, port, payload, rows)
        finally:
            _stop(server)
        if detail is None:
            return CheckResult(check, True, _served(port, rows, rows))
        if isinstance(detail, int):
            return CheckResult(check, False, _served(port, detail, rows))
        log.seek(0)
        tail = " ".join(log.read().decode(errors="replace")[-SERVE_LOG_TAIL:].split())
        return CheckResult(check, False, f"{detail}{'; its log ends: ' + tail if tail else ''}")


def _served(port: int, answered: int, rows: int) -> str:
    return (
        f"`mlflow models serve` on 127.0.0.1:{port} answered {answered} prediction"
        f"{'s' if answered != 1 else ''} for the {rows} row{'s' if rows != 1 else ''} "
        "of its serving input example"
    )


def _ask_server(server: subprocess.Popen[bytes], port: int, payload: bytes, rows: int) -> Any:
    """None when it answered a prediction per row; the number it answered if not; else a
    sentence saying what went wrong."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while True:
        if server.poll() is not None:
            return f"`mlflow models serve` exited with code {server.returncode} before answering"
        with suppress(OSError), urllib.request.urlopen(f"{base}/ping", timeout=5) as reply:
            if reply.status == 200:
                break
        if time.monotonic() > deadline:
            return f"`mlflow models serve` did not answer /ping within {SERVE_START_TIMEOUT:.0f} s"
        time.sleep(0.5)
    request = urllib.request.Request(
        f"{base}/invocations", data=payload, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=SERVE_REQUEST_TIMEOUT) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        body = " ".join(error.read().decode(errors="replace").split())[:300]
        return f"/invocations answered HTTP {error.code}: {body}"
    except (OSError, ValueError) as error:
        return f"/invocations gave no answer: {_error_text(error)}"
    predictions = answer.get("predictions") if isinstance(answer, dict) else answer
    answered = _rows(predictions) if predictions is not None else 0
    return None if answered == rows else answered


def _serving_rows(payload: bytes) -> int:
    """The rows of a serving payload (`dataframe_split`, `dataframe_records`, `inputs`...)."""
    with suppress(ValueError):
        data = json.loads(payload)
        if isinstance(data, dict):
            if "dataframe_split" in data:
                return len(data["dataframe_split"].get("data") or [])
            for key in ("dataframe_records", "instances", "inputs"):
                if key in data:
                    return _rows(data[key])
    return 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group): TERM, then KILL."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(server.pid, sent)
        try:
            server.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


# --- recording the decision -----------------------------------------------------------------


def _record(client: GuardedClient, result: PromotionResult, target: _Version) -> None:
    """The decision as tags on the version; a pass also moves the alias and adds to the card."""
    name, number = result.name, result.version
    outcome = {
        f"{TAG_PREFIX}promotion.{result.to}": "passed" if result.passed else "failed",
        f"{TAG_PREFIX}promotion.checks": json.dumps(
            {check.name: check.passed for check in result.checks}, separators=(",", ":")
        ),
    }
    if result.passed:
        when = datetime.now(UTC)
        user = current_user()
        outcome[f"{TAG_PREFIX}promoted_at"] = when.isoformat(timespec="seconds")
        outcome[f"{TAG_PREFIX}promoted_by"] = user
        client.set_registered_model_alias(name, result.to, number)
        card = with_promotion_section(target.description, result, when, user)
        client.update_model_version(name, number, description=card)
    for key, value in outcome.items():
        client.set_model_version_tag(name, number, key, value)
