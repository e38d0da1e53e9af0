"""The REST API's contract: every answer is its pydantic model (`server/schemas.py`), errors
carry their structured data with the status of the handlers' one map, and the documentation
and the TypeScript client's types are what the models give (they can't drift)."""

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, code, notebook, wait_for, write
from pydantic import BaseModel

from jupyter_mlops.errors import (
    BadInput,
    BadRequest,
    MlopsError,
    NotFound,
    StageFailed,
    TrackingLost,
)
from jupyter_mlops.parameters import standard_json
from jupyter_mlops.server import apidoc
from jupyter_mlops.server.handlers import _Handler
from jupyter_mlops.server.schemas import (
    Analysis,
    ConvertResponse,
    ErrorBody,
    Run,
    RunList,
    ServerConfig,
    Verification,
    VerificationStarted,
)


def test_the_generated_doc_and_typescript_are_what_the_models_give():
    stale = apidoc.outdated()
    assert not stale, f"{stale}: run `python -m jupyter_mlops.server.apidoc` and commit"
    assert apidoc.BEGIN in apidoc.MARKDOWN.read_text(encoding="utf-8")


def test_the_check_command_fails_on_a_drifted_doc(tmp_path, monkeypatch):
    drifted = tmp_path / "REST-API.md"
    drifted.write_text(
        apidoc.MARKDOWN.read_text(encoding="utf-8").replace("| `status` |", "| `state` |")
    )
    monkeypatch.setattr(apidoc, "MARKDOWN", drifted)
    assert apidoc.main(["--check"]) == 1
    assert apidoc.main([]) == 0 and apidoc.main(["--check"]) == 0
    assert drifted.read_text() == apidoc.MARKDOWN.read_text()
    assert "| `status` |" in drifted.read_text()


def test_the_status_map_puts_every_kind_before_its_parents():
    kinds = [kind for kind, _ in _Handler.STATUS]
    for position, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) for earlier in kinds[:position]), kind
    assert _Handler.status_of(NotFound("x")) == 404
    assert _Handler.status_of(BadInput("x")) == 400
    assert _Handler.status_of(ValueError("x")) is None  # not ours: a server error


def test_errors_carry_their_fields_as_data_across_processes():
    failed = StageFailed("stage `b` failed", stage="b", cell=4, line=2, exception="KeyError: 'x'")
    expected = {
        "kind": "StageFailed",
        "message": "stage `b` failed",
        "stage": "b",
        "cell": 4,
        "line": 2,
        "exception": "KeyError: 'x'",
        "notebook": None,
    }
    assert failed.data() == expected
    # A worker process's error reaches the server whole (a required field included).
    assert pickle.loads(pickle.dumps(failed)).data() == expected
    assert TrackingLost("refused").data()["reason"] == "refused"
    assert BadInput("no").data() == {"kind": "BadInput", "message": "no"}
    problems = [{"field": "jobs", "message": "too many"}]
    assert pickle.loads(pickle.dumps(BadRequest("bad", problems))).data()["problems"] == problems
    assert isinstance(pickle.loads(pickle.dumps(NotFound("gone"))), MlopsError)


def small(root: Path) -> Path:
    return write(
        notebook(
            code("rows: int = 3  # rows\nlimit = 1e999", "parameters"),
            code("values = list(range(rows))", "stage:make"),
            code("total = sum(values)", "stage:add", "metrics"),
        ),
        root / "work" / "small.ipynb",
    )


async def _answer(jp_fetch, method, *path, body=None, expect=200):
    response = await jp_fetch(
        "jupyter-mlops",
        *path,
        method=method,
        body=None if body is None else json.dumps(body),
        allow_nonstandard_methods=True,
        raise_error=False,
    )
    assert response.code == expect, response.body
    return response.body.decode()


def _is(model: type[BaseModel], text: str) -> dict:
    """The answer is exactly its model's JSON: nothing more, nothing less, nothing retyped."""
    data = json.loads(text)
    assert standard_json(model.model_validate(data).model_dump(mode="json")) == text
    return data


async def test_every_answer_is_its_model(jp_fetch, jp_root_dir):
    small(jp_root_dir)
    _is(ServerConfig, await _answer(jp_fetch, "GET", "config"))
    analysis = _is(
        Analysis, await _answer(jp_fetch, "POST", "analyze", body={"path": "work/small.ipynb"})
    )
    assert analysis["parameters"][1]["default"] == "Infinity"  # strict JSON, as before
    converted = await _answer(jp_fetch, "POST", "convert", body={"path": "work/small.ipynb"})
    _is(ConvertResponse, converted)

    started = _is(
        Run, await _answer(jp_fetch, "POST", "runs", body={"path": "work/small.ipynb"}, expect=202)
    )
    assert "log_tail" in started
    view = await wait_for(_Api(jp_fetch), started["id"])
    assert view["status"] == "succeeded", view
    one = _is(Run, await _answer(jp_fetch, "GET", "runs", started["id"]))
    assert "log_tail" in one and all("log_tail" in stage for stage in one["stages"])
    listing = _is(RunList, await _answer(jp_fetch, "GET", "runs"))
    [listed] = listing["runs"]
    assert "log_tail" not in listed and all("log_tail" not in s for s in listed["stages"])

    ended = await _answer(jp_fetch, "DELETE", "runs", started["id"], expect=409)
    body = _is(ErrorBody, ended)
    assert body["error"] == {"kind": "Conflict", "message": body["message"]}
    assert "already finished (succeeded)" in body["message"]

    verification = _is(
        VerificationStarted,
        await _answer(
            jp_fetch, "POST", "verifications", body={"path": "work/small.ipynb"}, expect=202
        ),
    )
    _is(Verification, await _answer(jp_fetch, "GET", "verifications", verification["id"]))
    verified = await wait_for(_Api(jp_fetch), verification["id"], collection="verifications")
    assert verified["status"] == "identical", verified
    _is(Verification, await _answer(jp_fetch, "GET", "verifications", verification["id"]))


class _Api:
    """`conftest.wait_for`'s caller: GET answers as JSON."""

    def __init__(self, jp_fetch):
        self.jp_fetch = jp_fetch

    async def __call__(self, method, *path):
        return json.loads(await _answer(self.jp_fetch, method, *path))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("GET", ("runs", "20261127-101500-3fa2c1"), None, 404, "NotFound"),
        ("GET", ("runs", "not-a-run"), None, 400, "BadInput"),
        ("POST", ("runs",), {"path": "../outside.ipynb"}, 403, "OutsideRoot"),
        ("POST", ("runs",), {"path": "work/small.ipynb", "jobs": 0}, 400, "BadRequest"),
        (
            "POST",
            ("runs",),
            {"path": "work/small.ipynb", "parameters": {"rows": "x"}},
            400,
            "BadInput",
        ),
        ("POST", ("analyze",), {"path": "work/missing.ipynb"}, 404, "NotFound"),
        ("GET", ("verifications", "nope"), None, 404, "NotFound"),
        ("GET", ("sweeps", "20261127-101500-3fa2c1"), None, 404, "NotFound"),
        ("GET", ("sweeps", "not-a-sweep"), None, 400, "BadInput"),
        ("DELETE", ("sweeps", "20261127-101500-3fa2c1"), None, 404, "NotFound"),
        ("POST", ("sweeps", "20261127-101500-3fa2c1", "resume"), None, 404, "NotFound"),
        ("POST", ("sweeps",), {"path": "../x.ipynb", "values": {}}, 403, "OutsideRoot"),
        (
            "POST",
            ("sweeps",),
            {"path": "work/small.ipynb", "values": {"row": "1,2"}},
            400,
            "BadInput",
        ),
        (
            "POST",
            ("sweeps",),
            {"path": "work/small.ipynb", "values": {"rows": "1:9"}, "maximize": True},
            400,
            "BadInput",
        ),
        (
            "POST",
            ("sweeps",),
            {"path": "work/small.ipynb", "values": {"rows": "1,2"}, "random": 0},
            400,
            "BadRequest",
        ),
    ],
)
async def test_errors_answer_their_status_and_data(
    jp_fetch, jp_root_dir, method, path, body, status, kind
):
    small(jp_root_dir)
    error = _is(ErrorBody, await _answer(jp_fetch, method, *path, body=body, expect=status))
    assert error["error"]["kind"] == kind
    assert error["error"]["message"] == error["message"] and error["message"]
    if path == ("sweeps",) and kind == "BadInput":  # the parameter it is about, by name
        said = "did you mean `rows`" if "row" in body["values"] else "--random N"
        assert said in error["message"], error
        assert not (jp_root_dir / "mlops-runs").exists()  # nothing started
    elif kind == "BadRequest" and path == ("sweeps",):
        assert error["error"]["problems"][0]["field"] == "random"
    elif kind == "BadRequest":  # which field, for a form to mark
        assert error["error"]["problems"] == [
            {"field": "jobs", "message": "Input should be greater than or equal to 1"}
        ]
        assert error["message"] == "bad request: jobs: Input should be greater than or equal to 1"


@pytest.fixture(scope="module")
def tsc() -> list[str]:
    found = shutil.which("npx")
    if found is None or not (ROOT / "node_modules" / ".bin" / "tsc").exists():
        message = "needs npx and node_modules: `pip install -e .` builds the extension"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return [found, "--no-install", "tsc"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changed", "to"),
    [
        (None, None),
        (  # an answer the UI misreads (Run's `mlflow`)
            "  run_dir: string;\n  mlflow: MlflowRun;",
            "  run_dir: string;\n  mlflow: string;",
        ),
        ("  message: string;\n  error: ErrorData;", "  message: number;\n  error: ErrorData;"),
        (  # a request refused (AnalyzeRequest's `path`)
            "  notebook?: Record<string, unknown> | null;\n  path?: string | null;\n}",
            "  notebook?: Record<string, unknown> | null;\n  path?: number | null;\n}",
        ),
    ],
)
def test_typescript_client_types_are_checked_against_the_models(tsc, tmp_path, changed, to):
    """api.ts compiles against the generated types (most of its types are them), and stops
    compiling where it reads them its own way and they say the server sends (or accepts)
    something other than what the client reads (or sends)."""
    source = ROOT / "labextension" / "src"
    (tmp_path / "generated").mkdir()
    for name in ("api.ts", "errors.ts"):
        shutil.copy(source / name, tmp_path / name)
    types = apidoc.typescript()
    if changed is not None:
        assert types.count(changed) == 1, changed
        types = types.replace(changed, to)
    (tmp_path / "generated" / "api-types.ts").write_text(types)
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    config = json.loads((ROOT / "tsconfig.json").read_text())["compilerOptions"]
    config = {**config, "noEmit": True, "rootDir": str(tmp_path), "declaration": False}
    (tmp_path / "tsconfig.json").write_text(
        json.dumps({"compilerOptions": config, "files": ["api.ts"]})
    )
    result = subprocess.run(
        [*tsc, "-p", str(tmp_path / "tsconfig.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if changed is None:
        assert result.returncode == 0, result.stdout[-4000:]
    else:
        assert result.returncode != 0
        assert "api.ts" in result.stdout and "does not satisfy the constraint" in result.stdout
