"""The REST handlers (docs/REST-API.md): thin over the analysis, bundle, run manager, sweep
manager and verification manager.

Every handler is authenticated; Jupyter's APIHandler checks the XSRF token of cookie-
authenticated POST and DELETE requests. Every answer is a model of `schemas`; errors are
`ErrorBody`: the `message` the UI shows and the error's structured data, with the status the
base class's one map gives. Every response goes out with the server's secrets masked (see
`redact`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from pydantic import BaseModel, ValidationError
from tornado import web

from .._version import __version__
from ..errors import (
    BadInput,
    BadRequest,
    Conflict,
    MlopsError,
    NotFound,
    OutsideRoot,
    TooLarge,
    TooSlow,
    TrackingUnavailable,
    Unavailable,
)
from ..parameters import standard_json
from ..run.history import RUN_ID
from ..tracking import promote
from . import jobs
from .paths import relative_to_root, resolve_in_root
from .projects import Projects
from .redact import redact
from .runs import RunManager
from .schemas import (
    Analysis,
    AnalyzeRequest,
    ConvertRequest,
    ConvertResponse,
    ErrorBody,
    ErrorData,
    PromoteRequest,
    Promotion,
    Run,
    RunList,
    RunRequest,
    ServerConfig,
    Sweep,
    SweepList,
    SweepRequest,
    VerificationStarted,
    VerifyRequest,
)
from .sweeps import SweepManager
from .verifications import VerificationManager
from .worker import WorkerPool


class _Handler(ExtensionHandlerMixin, APIHandler):
    """What every handler shares: errors as JSON with their HTTP status, bodies read into
    request models, answers sent from answer models (`schemas`), secrets masked."""

    # The one map from what went wrong to the status the UI gets (most specific first).
    # Anything else is a server error: logged, and answered by Jupyter's own handler.
    STATUS: ClassVar[list[tuple[type[MlopsError], int]]] = [
        (TooLarge, 413),
        (TooSlow, 413),
        (Unavailable, 503),
        (TrackingUnavailable, 503),
        (OutsideRoot, 403),
        (NotFound, 404),
        (Conflict, 409),
        (BadInput, 400),
    ]

    @classmethod
    def status_of(cls, error: BaseException | None) -> int | None:
        """The HTTP status an error is answered with; None when it is not one of ours."""
        for kind, status in cls.STATUS:
            if isinstance(error, kind):
                return status
        return None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        status = self.status_of(error)
        if status is None:
            super().write_error(status_code, **kwargs)
            return
        assert isinstance(error, MlopsError)
        self.set_header("Content-Type", "application/json")
        self.reply(ErrorBody(message=str(error), error=ErrorData(**error.data())), status)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if self.status_of(value) is None:  # ours are answers, not server errors to log
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
    def projects(self) -> Projects:
        return self.extensionapp.projects  # type: ignore[attr-defined, no-any-return]

    @property
    def sweeps(self) -> SweepManager:
        return self.extensionapp.sweep_manager  # type: ignore[attr-defined, no-any-return]

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
            raise BadRequest("the request body is not JSON (or is nested too deeply)") from None
        try:
            return model.model_validate(data)
        except RecursionError:
            raise BadRequest("the request body is nested too deeply") from None
        except ValidationError as error:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                for e in error.errors()
            ]
            listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise BadRequest(f"bad request: {listed}", problems) from None

    def shown(self, path: Path) -> str:
        """A path as the UI shows it: relative to the server root when inside it."""
        try:
            return relative_to_root(self.root, path)
        except ValueError:
            return str(path)

    def notebook_path(self, relative: str) -> Path:
        path = resolve_in_root(self.root, relative)
        if not path.is_file():
            raise NotFound(f"no notebook at `{relative}`")
        self.check_size(path.stat().st_size, f"`{relative}`")
        return path

    def run(self, run_id: str) -> Run:
        """A run's view; BadInput for what is not a run id, NotFound for an unknown run."""
        if not RUN_ID.fullmatch(run_id):
            raise BadInput(f"`{run_id}` is not a run id (like 20261127-101500-3fa2c1)")
        view = self.runs.get(run_id)
        if view is None:
            raise NotFound(f"no run `{run_id}`")
        return view

    def sweep(self, sweep_id: str) -> Sweep:
        """A sweep's view; BadInput for what is not a sweep id, NotFound for an unknown one."""
        if not RUN_ID.fullmatch(sweep_id):
            raise BadInput(f"`{sweep_id}` is not a sweep id (like 20261203-141500-a1b2c3)")
        view = self.sweeps.get(sweep_id)
        if view is None:
            raise NotFound(f"no sweep `{sweep_id}`")
        return view

    def reply(self, answer: BaseModel, status: int = 200) -> None:
        """Send an answer model as JSON, as strict readers accept it (a NaN or infinite value
        is sent as text), with the server's secrets masked."""
        self.set_status(status)
        self.finish(redact(standard_json(answer.model_dump(mode="json"))))


class ConfigHandler(_Handler):
    """Where runs go: the runs of the notebook `?path=` (its project's store and run
    folders), else those of a notebook in the server's root folder."""

    @web.authenticated
    def get(self) -> None:
        path = self.get_query_argument("path", None)
        projects = self.projects
        places = projects.home if path is None else projects.of(resolve_in_root(self.root, path))
        self.reply(
            ServerConfig(
                version=__version__,
                tracking_uri=places.store,
                mlflow_ui_url=projects.links(places.store).ui,
                runs_dir=self.shown(places.runs_dir),
            )
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
        self.reply(Analysis.model_validate(analysis))


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
            ConvertResponse(
                output=relative_to_root(self.root, output),
                files=files,
                analysis=Analysis.model_validate(analysis),
            )
        )


class RunsHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        path = self.get_query_argument("path", None)
        notebook = None if path is None else resolve_in_root(self.root, path)
        self.reply(RunList(runs=self.runs.list(notebook)))

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
        self.reply(self.run(run_id), status=202)


class RunHandler(_Handler):
    @web.authenticated
    def get(self, run_id: str) -> None:
        self.reply(self.run(run_id))

    @web.authenticated
    def delete(self, run_id: str) -> None:
        view = self.run(run_id)
        if not self.runs.cancel(run_id):
            raise Conflict(f"run `{run_id}` has already finished ({view.status})")
        self.reply(self.run(run_id), status=202)


class SweepsHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        path = self.get_query_argument("path", None)
        notebook = None if path is None else resolve_in_root(self.root, path)
        self.reply(SweepList(sweeps=self.sweeps.list(notebook)))

    @web.authenticated
    async def post(self) -> None:
        request: SweepRequest = self.body(SweepRequest)
        notebook = self.notebook_path(request.path)
        sweep_id = await self.sweeps.start(self.worker, notebook, request)
        self.reply(self.sweep(sweep_id), status=202)


class SweepHandler(_Handler):
    @web.authenticated
    def get(self, sweep_id: str) -> None:
        self.reply(self.sweep(sweep_id))

    @web.authenticated
    def delete(self, sweep_id: str) -> None:
        view = self.sweep(sweep_id)
        if not self.sweeps.stop(sweep_id):
            raise Conflict(f"sweep `{sweep_id}` is not running ({view.status})")
        self.reply(self.sweep(sweep_id), status=202)


class SweepResumeHandler(_Handler):
    @web.authenticated
    async def post(self, sweep_id: str) -> None:
        self.sweep(sweep_id)  # 400 or 404 first
        await self.sweeps.resume(self.worker, sweep_id)
        self.reply(self.sweep(sweep_id), status=202)


class VerificationsHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        request: VerifyRequest = self.body(VerifyRequest)
        notebook = self.notebook_path(request.path)
        verification_id = await self.verifications.start(self.worker, notebook)
        self.reply(VerificationStarted(id=verification_id), status=202)


class VerificationHandler(_Handler):
    @web.authenticated
    def get(self, verification_id: str) -> None:
        view = self.verifications.get(verification_id)
        if view is None:
            raise NotFound(f"no verification `{verification_id}`")
        self.reply(view)


class PromoteHandler(_Handler):
    """The promotion gate (`jupyter-mlops promote`) for a registered version, against the
    store of the notebook `path`'s project (default: the server root project's). A failed
    check is an answer (`passed` false), not an error."""

    @web.authenticated
    async def post(self, name: str, version: str) -> None:
        request: PromoteRequest = self.body(PromoteRequest)
        if not version.isdigit():
            raise BadInput(f"`{version}` is not a model version: use its number, like 3")
        projects = self.projects
        places = (
            projects.home
            if not request.path
            else projects.of(resolve_in_root(self.root, request.path))
        )
        # The smoke test loads the model (seconds), and MLflow keeps process-wide state:
        # both belong in a worker process, not on the server's event loop.
        result = await self.worker.call(
            "the promotion checks",
            promote,
            places.store,
            name,
            version,
            request.to,
            None,  # the checks the notebook declared
            False,  # no model server started from Jupyter's
            request.dry_run,
        )
        self.reply(Promotion.model_validate(result.to_dict()))


def handlers() -> list[tuple[str, type[_Handler]]]:
    return [
        (r"/jupyter-mlops/config", ConfigHandler),
        (r"/jupyter-mlops/analyze", AnalyzeHandler),
        (r"/jupyter-mlops/convert", ConvertHandler),
        (r"/jupyter-mlops/runs", RunsHandler),
        (r"/jupyter-mlops/runs/([^/]+)", RunHandler),
        (r"/jupyter-mlops/sweeps", SweepsHandler),
        (r"/jupyter-mlops/sweeps/([^/]+)", SweepHandler),
        (r"/jupyter-mlops/sweeps/([^/]+)/resume", SweepResumeHandler),
        (r"/jupyter-mlops/verifications", VerificationsHandler),
        (r"/jupyter-mlops/verifications/([^/]+)", VerificationHandler),
        (r"/jupyter-mlops/models/([^/]+)/versions/([^/]+)/promote", PromoteHandler),
    ]
