"""The server extension: configuration (traitlets) and wiring of handlers and runs.

Configure it in `jupyter_server_config.py`, for example::

    c.MlopsExtension.tracking_uri = "http://mlflow.internal:5000"
    c.MlopsExtension.mlflow_ui_url = "http://mlflow.internal:5000"
    c.MlopsExtension.runs_dir = "/data/mlops-runs"
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, Unicode

from ..places import RUNS_FOLDER, default_store
from ..tracking import MlflowLinks, resolve_tracking_uri
from .handlers import handlers
from .mlflow_ui import TRACKING_URI_ENV, proxied_ui_url
from .runs import RunManager
from .verifications import VerificationManager
from .worker import WorkerPool


class MlopsExtension(ExtensionApp):
    name = "jupyter_mlops"

    tracking_uri = Unicode(
        "",
        config=True,
        help="MLflow tracking URI for runs started from JupyterLab. Default: "
        "MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the server's root directory.",
    )
    mlflow_ui_url = Unicode(
        "",
        config=True,
        help="URL of an MLflow UI showing the tracking store, for links from the sidebar.",
    )
    proxy_mlflow_ui = Bool(
        True,
        config=True,
        help="Without mlflow_ui_url, link to an `mlflow ui` that jupyter-server-proxy starts "
        "on demand under <base_url>mlflow/.",
    )
    runs_dir = Unicode(
        RUNS_FOLDER,
        config=True,
        help="Where run folders go; relative paths are inside the server's root directory.",
    )

    max_concurrent_runs = Int(
        0,
        config=True,
        help="How many runs started from JupyterLab run at once; more wait in a queue "
        "(status `queued`). 0: the number of CPU cores.",
    )
    work_timeout = Float(
        60.0,
        config=True,
        help="Seconds the server spends analysing, converting or checking one notebook "
        "before it gives up on it (it happens in a worker process, never on the event loop).",
    )
    max_notebook_mb = Float(
        200.0,
        config=True,
        help="Notebooks (files or request bodies) larger than this many MB are refused with "
        "413. Saved outputs count: a notebook of charts can be tens of MB.",
    )

    def initialize_settings(self) -> None:
        assert self.serverapp is not None  # set by jupyter_server before it initializes us
        root = Path(self.serverapp.root_dir)
        default = os.environ.get("MLFLOW_TRACKING_URI") or default_store(root)
        self.resolved_tracking_uri = resolve_tracking_uri(self.tracking_uri or default)
        runs_dir = Path(self.runs_dir)
        runs_dir = (runs_dir if runs_dir.is_absolute() else root / runs_dir).resolve()
        os.environ[TRACKING_URI_ENV] = self.resolved_tracking_uri
        self.links = MlflowLinks(self.mlflow_ui_url or self._proxied_ui())
        self.run_manager = RunManager(
            root=root,
            runs_dir=runs_dir,
            tracking_uri=self.resolved_tracking_uri,
            links=self.links,
            max_running=self.max_concurrent_runs or None,
        )
        self.worker = WorkerPool(self.work_timeout)
        self.verification_manager = VerificationManager(root=root, runs_dir=runs_dir)

    def _proxied_ui(self) -> str | None:
        if not self.proxy_mlflow_ui:
            return None
        try:
            import jupyter_server_proxy  # noqa: F401
        except ImportError:
            return None
        assert self.serverapp is not None
        return proxied_ui_url(self.serverapp.base_url)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        self.worker.close()
        await asyncio.gather(self.run_manager.stop_all(), self.verification_manager.stop_all())
