"""MLflow UIs behind jupyter-server-proxy, for when no MLflow UI URL is configured: one per
tracking store the server shows.

jupyter-server-proxy starts ``mlflow ui`` on first use, on a free port on 127.0.0.1, and
serves it under the Jupyter server's base URL behind Jupyter's own authentication, so the
sidebar's links work on a laptop and through JupyterHub alike.

- The store of the server root's project is shown under ``<base_url>mlflow/``: the proxy's
  entry point (`mlflow_ui_process`), in JupyterLab's launcher too. The extension publishes
  that store in ``JUPYTER_MLOPS_TRACKING_URI`` before the proxy starts the process.
- Every other project's store (a server started above several repositories, or in a
  repository's subfolder while a notebook is in another repository) gets a route of its own,
  ``<base_url>mlflow-<hash of the store>/``, added to the running server the first time a
  link into it is made (`ProxiedUis`), with the proxy's own handler classes: its process too
  starts on first use, and stops with the server as the proxy's do. The hash is the store's,
  so a link stays the same as long as the store does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

TRACKING_URI_ENV = "JUPYTER_MLOPS_TRACKING_URI"
PROXY_PATH = "mlflow"


def proxied_ui_url(base_url: str, path: str = PROXY_PATH) -> str:
    return f"{base_url.rstrip('/')}/{path}"


def store_path(store: str) -> str:
    """The route of the UI of a store other than the server root project's."""
    return f"{PROXY_PATH}-{hashlib.sha256(store.encode()).hexdigest()[:12]}"


def _command(port: int, base_url: str, store: str | None, path: str) -> list[str]:
    executable = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    store = store or os.environ.get(TRACKING_URI_ENV, "sqlite:///mlflow.db")
    command = [
        executable,
        "ui",
        "--backend-store-uri",
        store,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--static-prefix",
        proxied_ui_url(base_url, path),
        # Only the Host the proxy sends (see `request_headers_override`): a page on another
        # name that resolves to this machine (DNS rebinding) is refused by MLflow itself.
        "--allowed-hosts",
        _proxy_host(port),
    ]
    # The proxy fills in `{port}`-style fields in every word it is given: a brace in a
    # folder's name must reach the command as itself.
    return [word.replace("{", "{{").replace("}", "}}") for word in command]


def _proxy_host(port: int | str) -> str:
    return f"127.0.0.1:{port}"


def mlflow_ui_process(store: str | None = None, path: str = PROXY_PATH) -> dict[str, Any]:
    """The `jupyter_serverproxy_servers` entry point (the server root project's store, from
    the environment), and with `store` the settings of another store's UI under `path`."""

    def command(port: int, base_url: str) -> list[str]:
        # (the proxy passes the arguments a command's own names ask for: no partial here)
        return _command(port, base_url, store, path)

    return {
        "command": command,
        # A UI only: no background job runner (three more processes, for GenAI jobs).
        "environment": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        # Requests arrive through Jupyter's proxy, already authenticated, with the Host of
        # the Jupyter server (a JupyterHub name, say); the UI is told the one it listens on.
        "request_headers_override": {"Host": _proxy_host("{port}")},
        "absolute_url": True,
        "timeout": 90,
        "new_browser_tab": True,
        "launcher_entry": {"enabled": store is None, "title": "MLflow"},
    }


class ProxiedUis:
    """The proxied UI of each store, its route added to the running server on first use.

    `add_handlers` is the Jupyter server's web application's: routes added while it runs
    come before its catch-all 404, so they are served like the ones made at start-up.
    """

    def __init__(
        self, base_url: str, home_store: str, add_handlers: Callable[[str, list[Any]], None]
    ) -> None:
        self.base_url = base_url
        self.home_store = home_store
        self._add_handlers = add_handlers
        self._routes: dict[str, str] = {}  # store -> its UI's URL

    def url(self, store: str) -> str:
        if store == self.home_store:
            return proxied_ui_url(self.base_url)
        if store not in self._routes:
            from jupyter_server_proxy.config import ServerProcess, make_handlers

            path = store_path(store)
            process = ServerProcess(name=path, **mlflow_ui_process(store, path))
            self._add_handlers(".*", make_handlers(self.base_url, [process]))
            self._routes[store] = proxied_ui_url(self.base_url, path)
        return self._routes[store]
