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

from .. import __version__
from ..analysis import analyze_notebook
from ..bundle import write_bundle
from ..errors import BadInput
from ..history import RUN_ID
from ..notebooks import parse_notebook, read_notebook
from .paths import OutsideRoot, relative_to_root, resolve_in_root
from .redact import redact
from .runs import RunManager
from .schemas import AnalyzeRequest, ConvertRequest, RunRequest, Verification, VerifyRequest
from .verifications import VerificationManager


class ApiError(web.HTTPError):
    """An error whose message the UI shows as is (it may contain `%` or quotes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)
        self.message = message


class _Handler(ExtensionHandlerMixin, APIHandler):
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        if isinstance(error, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(redact(json.dumps({"message": error.message})))
        else:
            super().write_error(status_code, **kwargs)

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
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiError(400, "the request body is not JSON") from None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in error.errors()
            )
            raise ApiError(400, f"bad request: {problems}") from None

    def notebook_path(self, relative: str) -> Path:
        try:
            path = resolve_in_root(self.root, relative)
        except OutsideRoot as error:
            raise ApiError(403, str(error)) from None
        if not path.is_file():
            raise ApiError(404, f"no notebook at `{relative}`")
        return path

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(redact(json.dumps(data, default=str)))


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
    def post(self) -> None:
        request: AnalyzeRequest = self.body(AnalyzeRequest)
        try:
            if request.notebook is not None:
                name = request.path or "notebook.ipynb"
                nb = parse_notebook(request.notebook, name)
            else:
                assert request.path is not None
                nb = read_notebook(self.notebook_path(request.path)).nb
                name = request.path
        except BadInput as error:
            raise ApiError(400, str(error)) from None
        self.reply(analyze_notebook(nb, name).to_dict())


class ConvertHandler(_Handler):
    @web.authenticated
    def post(self) -> None:
        request: ConvertRequest = self.body(ConvertRequest)
        notebook = self.notebook_path(request.path)
        relative = request.output or str(
            Path(request.path).parent / f"{Path(request.path).stem}_pipeline"
        )
        try:
            output = resolve_in_root(self.root, relative)
        except OutsideRoot as error:
            raise ApiError(403, str(error)) from None
        try:
            source = read_notebook(notebook)
            analysis = analyze_notebook(source.nb, notebook)
            bundle = write_bundle(source, analysis, output)
        except BadInput as error:
            raise ApiError(400, str(error)) from None
        files = ["pipeline.yaml", "params.yaml", "requirements.txt", *bundle.notebooks.values()]
        self.reply(
            {
                "output": relative_to_root(self.root, output),
                "files": files,
                "analysis": analysis.to_dict(),
            }
        )


class RunsHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"runs": self.runs.list(self.get_query_argument("path", None))})

    @web.authenticated
    async def post(self) -> None:
        request: RunRequest = self.body(RunRequest)
        notebook = self.notebook_path(request.path)
        try:
            run_id = await self.runs.start(
                notebook, request.parameters, request.jobs, request.from_stage, request.only
            )
        except BadInput as error:
            raise ApiError(400, str(error)) from None
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
        try:
            verification_id = await self.verifications.start(notebook)
        except BadInput as error:
            raise ApiError(400, str(error)) from None
        self.reply({"id": verification_id}, status=202)


class VerificationHandler(_Handler):
    @web.authenticated
    def get(self, verification_id: str) -> None:
        view = self.verifications.get(verification_id)
        if view is None:
            raise ApiError(404, f"no verification `{verification_id}`")
        self.reply(Verification.model_validate(view).model_dump(mode="json"))


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
