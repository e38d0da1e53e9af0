"""The server extension: configuration (traitlets) and wiring of handlers and runs.

By default each notebook's runs go to its own project's store and run folders (`places`):
the top level of its git repository, else the server's root folder. Configure it in
`jupyter_server_config.py` for one store and one runs folder for everything, for example::

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

from ..places import PlacesRule
from ..tracking import resolve_tracking_uri
from .handlers import handlers
from .mlflow_ui import TRACKING_URI_ENV, ProxiedUis
from .projects import Projects
from .runs import RunManager
from .sweeps import SweepManager
from .verifications import VerificationManager
from .worker import WorkerPool


class MlopsExtension(ExtensionApp):
    name = "jupyter_mlops"

    tracking_uri = Unicode(
        "",
        config=True,
        help="MLflow tracking URI for every run started from JupyterLab. Default: "
        "MLFLOW_TRACKING_URI, else each notebook's project's own: sqlite:///mlflow.db at the "
        "top level of its git repository (even above the server's root directory), else in "
        "the server's root directory, the same store as `jupyter-mlops run` uses.",
    )
    mlflow_ui_url = Unicode(
        "",
        config=True,
        help="URL of an MLflow UI showing the tracking store, for links from the sidebar: "
        "one UI for every run, so set it with tracking_uri.",
    )
    proxy_mlflow_ui = Bool(
        True,
        config=True,
        help="Without mlflow_ui_url, link to an `mlflow ui` that jupyter-server-proxy starts "
        "on demand for each store: under <base_url>mlflow/ for the store of the server's root "
        "directory's project, under <base_url>mlflow-<hash of the store>/ for another's.",
    )
    runs_dir = Unicode(
        "",
        config=True,
        help="Where the run folders of every run started from JupyterLab go; relative paths "
        "are inside the server's root directory. Default: each notebook's project's own, "
        "mlops-runs/ at the top level of its git repository, else in the server's root "
        "directory, as for `jupyter-mlops run`.",
    )

    max_concurrent_runs = Int(
        0,
        config=True,
        help="How many runs started from JupyterLab run at once (a sweep counts as one run: "
        "its trials run one after another); more wait in a queue (status `queued`). 0: the "
        "number of CPU cores.",
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
        explicit = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        runs_dir = None
        if self.runs_dir:
            runs_dir = Path(self.runs_dir)
            runs_dir = (runs_dir if runs_dir.is_absolute() else root / runs_dir).resolve()
        rule = PlacesRule(root, resolve_tracking_uri(explicit) if explicit else None, runs_dir)
        home = rule.of(root, fresh=True)  # the server root's project: its UI is <base>mlflow/
        os.environ[TRACKING_URI_ENV] = home.store
        self.projects = Projects(root, rule, self.mlflow_ui_url or None, self._proxied(home.store))
        self.run_manager = RunManager(
            root=root, projects=self.projects, max_running=self.max_concurrent_runs or None
        )
        self.sweep_manager = SweepManager(root, self.projects, self.run_manager)
        self.worker = WorkerPool(self.work_timeout)
        self.verification_manager = VerificationManager(root=root, projects=self.projects)

    def _proxied(self, home_store: str) -> ProxiedUis | None:
        if not self.proxy_mlflow_ui or self.mlflow_ui_url:
            return None
        try:
            import jupyter_server_proxy  # noqa: F401
        except ImportError:
            return None
        assert self.serverapp is not None
        return ProxiedUis(self.serverapp.base_url, home_store, self.serverapp.web_app.add_handlers)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        self.worker.close()
        await asyncio.gather(self.run_manager.stop_all(), self.verification_manager.stop_all())
