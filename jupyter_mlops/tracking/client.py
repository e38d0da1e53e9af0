"""Reaching MLflow: the tracking URI, one guarded client that fails fast, links into the UI.

Every MLflow client the package opens comes from `connect` or `open_client`, so all of them
share the fail-fast settings: a tracking server that went away is reported within seconds,
once, instead of by every call waiting out its own retries.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..artifacts import cache_folder
from ..errors import TrackingLost, TrackingUnavailable
from ..places import SQLITE, default_store, project_root

TAG_PREFIX = "jupyter_mlops."  # of every tag we set on MLflow runs and model versions

# MLflow retries an unreachable server for minutes by default; a pipeline should say so
# within seconds and keep its results (`jupyter-mlops log` uploads them later). Users' own
# settings of these variables win.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
_UNREACHABLE = (
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Connection refused",
    "Connection aborted",
    "Read timed out",
    "RemoteDisconnected",
)


def resolve_tracking_uri(
    uri: str | None = None, near: Path | None = None, otherwise: Path | None = None
) -> str:
    """`--tracking-uri`, else MLFLOW_TRACKING_URI, else a URI this process set with
    `mlflow.set_tracking_uri` (a notebook's own, in the widget's kernel), else the project's
    store (`places`): `mlflow.db` at the root of the git repository holding `near` (the
    notebook; by default the working folder), else in `otherwise` (by default the working
    folder). A relative sqlite path is made absolute.

    Stage kernels start in the notebook's folder, so a relative `sqlite:///mlflow.db` must be
    pinned to the folder the user ran from, or each stage would log to a different file.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri and _set_in_process():
        import mlflow

        uri = mlflow.get_tracking_uri()
    if not uri:
        here = Path.cwd()
        uri = default_store(project_root(near or here, otherwise or here))
    prefix = SQLITE
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def _set_in_process() -> bool:
    """Whether this process chose a tracking URI through MLflow (never imported: no)."""
    if "mlflow" not in sys.modules:
        return False
    from mlflow.tracking._tracking_service import utils

    return bool(utils.is_tracking_uri_set())


def warm_up() -> None:
    """Import MLflow and its SQL store's modules ahead of a run (`run/spare.py`): most of
    what a run spends before it can log anything."""
    import mlflow  # noqa: F401
    from mlflow.store.tracking import sqlalchemy_store  # noqa: F401
    from mlflow.tracking import MlflowClient  # noqa: F401


def model_versions(client: Any, name: str) -> list[Any]:
    """Every version of the registered model `name`.

    MLflow's filter strings have no escapes: a name with one kind of quote is quoted with the
    other; one with both is looked for among all versions (a notebook's name may be anything).
    """
    for mark in ("'", '"'):
        if mark not in name:
            return list(client.search_model_versions(f"name = {mark}{name}{mark}"))
    found, token = [], None
    while True:
        page = client.search_model_versions(max_results=1000, page_token=token)
        found += [v for v in page if v.name == name]
        token = page.token
        if not token:
            return found


def current_user() -> str:
    """Who runs this, as MLflow's own runs record it ("Created by")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


def without_credentials(url: str) -> str:
    """`url` without the user and password it may carry, for logging and showing it.

    A remote cloned as `https://user:token@host/repo.git` keeps the token in its URL, and
    the repository URL is logged as a tag that the MLflow UI shows to anyone who can read the
    experiment. Over HTTP the user part is often the token itself, so both go, as do a query
    and a fragment (`?private_token=...`); ssh keeps its user name, which is no secret
    (`ssh://git@host/repo`). scp-like remotes (`git@host:repo`) can't hold a password.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:  # a path, or scp-like `git@host:repo`
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() in ("ssh", "git+ssh", "ssh+git") and userinfo:
        host = f"{userinfo.partition(':')[0]}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# MLflow 3's UI opens in its GenAI view unless a link asks for the model-training one (the
# choice is the `workflowType` URL parameter, else the browser's last toggle, else GenAI).
TRAINING_VIEW = "?workflowType=machine_learning"


def ui_route(kind: str, *parts: str) -> str:
    """The hash route of a page of MLflow's UI, in its model-training view: `run`
    (experiment id, run id), `model` (experiment id, logged model id), `version` (registered
    name, version), `registered` (registered name). Relative, so it also serves as a link
    inside MLflow's own pages."""
    if kind == "run":
        path = f"experiments/{parts[0]}/runs/{parts[1]}"
    elif kind == "model":
        path = f"experiments/{parts[0]}/models/{parts[1]}"
    elif kind == "registered":
        path = f"models/{quote(parts[0], safe='')}"
    else:
        path = f"models/{quote(parts[0], safe='')}/versions/{parts[1]}"
    return f"#/{path}{TRAINING_VIEW}"


class MlflowLinks:
    """Links into the MLflow UI, or None everywhere when there is no UI to link to."""

    def __init__(self, ui_url: str | None) -> None:
        self.ui = ui_url.rstrip("/") if ui_url else None

    def run(self, experiment_id: str | None, run_id: str | None) -> str | None:
        if not (self.ui and experiment_id and run_id):
            return None
        return f"{self.ui}/{ui_route('run', experiment_id, run_id)}"

    def model(self, name: str, version: str) -> str | None:
        return f"{self.ui}/{ui_route('version', name, version)}" if self.ui else None


def set_fail_fast_defaults() -> None:
    """FAIL_FAST into the environment, for this process and the stage kernels it starts.

    Call it from the main thread: os.environ isn't safe to change while others read it.
    """
    for key, value in FAIL_FAST.items():
        os.environ.setdefault(key, value)


def quiet_logs(level: int = logging.WARNING) -> None:
    """Quiet MLflow's own loggers (a new store announcing its tables), and the run links it
    prints to standard output as a tracking server's run ends (our summary, on standard
    output, says where the run is).

    MLflow configures its loggers when imported, so it is imported first: a level set
    before that would be reset.
    """
    import mlflow  # noqa: F401

    logging.getLogger("mlflow").setLevel(level)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_PROCESS_STORE = threading.RLock()  # a registration may load a model inside it


@contextmanager
def process_store(tracking_uri: str) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URI set to `tracking_uri` meanwhile.

    Some MLflow calls resolve what they are given through the process-wide URI rather than
    their client's: the SQL registry looks up a logged model (`models:/m-...`) there when a
    version is created, and `mlflow.pyfunc.load_model` resolves `models:/` URIs there. So a
    run given `--tracking-uri` would look in ./mlflow.db. Everything is put back as it was,
    the environment included (MLflow's setters also write MLFLOW_TRACKING_URI into os.environ,
    which every later subprocess, stage kernels and servers, would inherit).

    The URIs are set as `mlflow.set_tracking_uri` sets them, minus its reset of MLflow's
    tracing: nothing here traces, and that reset imports OpenTelemetry's exporters the
    first time (0.5-0.8 s at the end of every run that registers a model); a process that
    traces keeps its tracer as it was.
    """
    from mlflow.tracking._model_registry import utils as registry_state
    from mlflow.tracking._tracking_service import utils as tracking_state

    with _PROCESS_STORE:
        environment = {name: os.environ.get(name) for name in _URI_VARIABLES}
        tracking, registry = tracking_state._tracking_uri, registry_state._registry_uri
        tracking_state._tracking_uri = tracking_uri  # type: ignore[assignment]  # None until set
        registry_state._registry_uri = tracking_uri  # type: ignore[assignment]
        for name in _URI_VARIABLES:
            os.environ[name] = tracking_uri
        try:
            yield
        finally:
            tracking_state._tracking_uri, registry_state._registry_uri = tracking, registry
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class GuardedClient:
    """An MlflowClient whose calls, once the server is unreachable, all fail at once with
    TrackingLost instead of each waiting out its own retries."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.lost: str | None = None

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.lost is not None:
                raise TrackingLost(self.lost)
            try:
                return attribute(*args, **kwargs)
            except Exception as error:
                text = str(error)
                if not any(sign in text for sign in _UNREACHABLE):
                    raise
                self.lost = next(s for s in _UNREACHABLE if s in text).lower()
                raise TrackingLost(self.lost) from None

        return call


def open_client(tracking_uri: str) -> GuardedClient:
    """A guarded client for `tracking_uri`, without checking the store is there.

    The caller sets the fail-fast defaults (`set_fail_fast_defaults`) beforehand.
    """
    from mlflow import MlflowClient

    return GuardedClient(MlflowClient(tracking_uri=tracking_uri))


def connect(tracking_uri: str) -> GuardedClient:
    """A guarded client for a store that answers; within seconds, TrackingUnavailable if not.

    A new sqlite store gets its tables here, one process at a time.
    """
    set_fail_fast_defaults()
    with _sqlite_setup_lock(tracking_uri):
        client = open_client(tracking_uri)
        try:
            client.search_experiments(max_results=1)  # creates a new store's tables
        except TrackingLost as lost:
            raise TrackingUnavailable(
                f"can't reach the MLflow tracking server at {tracking_uri} "
                f"({lost.reason}); nothing was run. Check --tracking-uri or "
                "MLFLOW_TRACKING_URI, or start the server"
            ) from None
    return client


@contextmanager
def _sqlite_setup_lock(uri: str) -> Iterator[None]:
    """Let one process at a time create a new sqlite store's tables.

    MLflow migrates a new sqlite database on first use; runs started at the same moment
    (CI matrix jobs, a user clicking twice) would otherwise race and fail half-way.
    """
    prefix = SQLITE
    if not uri.startswith(prefix):
        yield
        return
    database = Path(uri[len(prefix) :])
    database.parent.mkdir(parents=True, exist_ok=True)
    # The lock file lives in this user's cache, keyed by the database's path, not beside the
    # database (it would be left in her folder for good), and it is a file opened for
    # writing (on NFS an exclusive flock needs one: a folder can't be locked there).
    key = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:32]
    lock_path = cache_folder() / "locks" / f"{key}.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_path, "a")  # noqa: SIM115 (held across the yield)
    except OSError:  # no writable cache (a read-only home): unlocked, as MLflow itself is
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
