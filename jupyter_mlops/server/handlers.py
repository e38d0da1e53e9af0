"""The REST handlers (docs/REST-API.md): thin over the analysis, bundle, run manager and
verification manager.

Every handler is authenticated; Jupyter's APIHandler checks the XSRF token of cookie-
authenticated POST and DELETE requests. Errors are JSON `{"message": ...}` the UI shows.
Every response goes out with the server's secrets masked (see `redact`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from .._version import __version__
from ..errors import BadInput, OutsideRoot, TooLarge, TooSlow, Unavailable
from ..parameters import standard_json
from ..run.history import RUN_ID
from . import jobs
from .paths import relative_to_root, resolve_in_root
from .redact import redact
from .runs import RunManager
from .schemas import AnalyzeRequest, ConvertRequest, RunRequest, Verification, VerifyRequest
from .verifications import VerificationManager
from .worker import WorkerPool


class ApiError(web.HTTPError):
    """An error whose message the UI shows as is (it may contain `%` or quotes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message


# The one map from what went wrong to the status the UI gets (most specific first).
STATUS: list[tuple[type[Exception], int]] = [
    (TooLarge, 413),
    (TooSlow, 413),
    (Unavailable, 503),
    (OutsideRoot, 403),
    (BadInput, 400),
]


def _api_error(error: BaseException) -> ApiError | None:
    if isinstance(error, ApiError):
        return error
    for kind, status in STATUS:
        if isinstance(error, kind):
            return ApiError(status, str(error))
    return None


class _Handler(ExtensionHandlerMixin, APIHandler):
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = _api_error(kwargs.get("exc_info", (None, None))[1])
        if error is not None:
            self.set_status(error.status_code)
            self.set_header("Content-Type", "application/json")
            self.finish(redact(json.dumps({"message": error.message})))
        else:
            super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if _api_error(value) is None:  # ours are answers, not server errors to log
            super().log_exception(typ, value, tb)

    @property
    def worker(self) -> WorkerPool:
        return self.extensionapp.worker  # type: ignore[attr-defined, no-any-return]

    @property
    def max_bytes(self) -> int:
        return int(self.extensionapp.max_notebook_mb * 1024 * 1024)  # type: ignore[attr-defined]

    def check_size(self, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise TooLarge(
                f"{what} is {size / 1024 / 1024:.1f} MB, over this server's limit of "
                f"{self.max_bytes / 1024 / 1024:g} MB (MlopsExtension.max_notebook_mb)"
            )

    @property
    def runs(self) -> RunManager:
        return self.extensionapp.run_manager  # type: ignore[attr-defined, no-any-return]

    @property
    def verifications(self) -> VerificationManager:
        return self.extensionapp.verification_manager  # type: ignore[attr-defined, no-any-return]

    @property
    def root(self) -> Path:
        return Path(self.serverapp.root_dir)

    def body(self, model: type[BaseModel]) -> Any:
        self.check_size(len(self.request.body or b""), "the request")
        try:
            data = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):
            raise ApiError(400, "the request body is not JSON (or is nested too deeply)") from None
        try:
            return model.model_validate(data)
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply") from None
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in error.errors()
            )
            raise ApiError(400, f"bad request: {problems}") from None

    def notebook_path(self, relative: str) -> Path:
        path = resolve_in_root(self.root, relative)
        if not path.is_file():
            raise ApiError(404, f"no notebook at `{relative}`")
        self.check_size(path.stat().st_size, f"`{relative}`")
        return path

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(redact(standard_json(data, default=str)))


class ConfigHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        app = self.extensionapp
        self.reply(
            {
                "version": __version__,
                "tracking_uri": app.resolved_tracking_uri,  # type: ignore[attr-defined]
                "mlflow_ui_url": app.links.ui,  # type: ignore[attr-defined]
                "runs_dir": relative_to_root(self.root, self.runs.runs_dir)
                if self.root in self.runs.runs_dir.parents
                else str(self.runs.runs_dir),
            }
        )


class AnalyzeHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        request: AnalyzeRequest = self.body(AnalyzeRequest)
        if request.notebook is not None:
            name = request.path or "notebook.ipynb"
            analysis = await self.worker.call(
                "analysis", jobs.analyze, request.notebook, None, name
            )
        else:
            assert request.path is not None
            path = self.notebook_path(request.path)
            analysis = await self.worker.call("analysis", jobs.analyze, None, path, request.path)
        self.reply(analysis)


class ConvertHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        request: ConvertRequest = self.body(ConvertRequest)
        notebook = self.notebook_path(request.path)
        relative = request.output or str(
            Path(request.path).parent / f"{Path(request.path).stem}_pipeline"
        )
        output = resolve_in_root(self.root, relative)
        files, analysis = await self.worker.call("conversion", jobs.convert, notebook, output)
        self.reply(
            {"output": relative_to_root(self.root, output), "files": files, "analysis": analysis}
        )


class RunsHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"runs": self.runs.list(self.get_query_argument("path", None))})

    @web.authenticated
    async def post(self) -> None:
        request: RunRequest = self.body(RunRequest)
        notebook = self.notebook_path(request.path)
        run_id = await self.runs.start(
            self.worker,
            notebook,
            request.parameters,
            request.jobs,
            request.from_stage,
            request.only,
        )
        self.reply(self.runs.get(run_id), status=202)


class RunHandler(_Handler):
    def run_id(self, run_id: str) -> str:
        if not RUN_ID.fullmatch(run_id):
            raise ApiError(400, f"`{run_id}` is not a run id (like 20261127-101500-3fa2c1)")
        return run_id

    @web.authenticated
    def get(self, run_id: str) -> None:
        view = self.runs.get(self.run_id(run_id))
        if view is None:
            raise ApiError(404, f"no run `{run_id}`")
        self.reply(view)

    @web.authenticated
    def delete(self, run_id: str) -> None:
        view = self.runs.get(self.run_id(run_id))
        if view is None:
            raise ApiError(404, f"no run `{run_id}`")
        if not self.runs.cancel(run_id):
            raise ApiError(409, f"run `{run_id}` has already finished ({view['status']})")
        self.reply(self.runs.get(run_id), status=202)


class VerificationsHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        request: VerifyRequest = self.body(VerifyRequest)
        notebook = self.notebook_path(request.path)
        verification_id = await self.verifications.start(self.worker, notebook)
        self.reply({"id": verification_id}, status=202)


class VerificationHandler(_Handler):
    @web.authenticated
    def get(self, verification_id: str) -> None:
        view = self.verifications.get(verification_id)
        if view is None:
            raise ApiError(404, f"no verification `{verification_id}`")
        try:
            checked = Verification.model_validate(view)
        except ValidationError:  # a report.json that isn't the command's
            view = {**view, "status": "failed", "report": None}
            view["error"] = "its report.json is not a verification report"
            checked = Verification.model_validate(view)
        self.reply(checked.model_dump(mode="json"))


def handlers() -> list[tuple[str, type[_Handler]]]:
    return [
        (r"/jupyter-mlops/config", ConfigHandler),
        (r"/jupyter-mlops/analyze", AnalyzeHandler),
        (r"/jupyter-mlops/convert", ConvertHandler),
        (r"/jupyter-mlops/runs", RunsHandler),
        (r"/jupyter-mlops/runs/([^/]+)", RunHandler),
        (r"/jupyter-mlops/verifications", VerificationsHandler),
        (r"/jupyter-mlops/verifications/([^/]+)", VerificationHandler),
    ]
