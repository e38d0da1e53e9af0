"""The MLflow UI behind jupyter-server-proxy, for when no MLflow UI URL is configured.

jupyter-server-proxy starts ``mlflow ui`` on first use, on a free port on 127.0.0.1, and
serves it under ``<base_url>mlflow/`` behind Jupyter's own authentication, so the sidebar's
links work on a laptop and through JupyterHub alike. The extension publishes the store to
show in ``JUPYTER_MLOPS_TRACKING_URI`` before the proxy starts the process.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

TRACKING_URI_ENV = "JUPYTER_MLOPS_TRACKING_URI"
PROXY_PATH = "mlflow"


def proxied_ui_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{PROXY_PATH}"


def _command(port: int, base_url: str) -> list[str]:
    executable = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    return [
        executable,
        "ui",
        "--backend-store-uri",
        os.environ.get(TRACKING_URI_ENV, "sqlite:///mlflow.db"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--static-prefix",
        proxied_ui_url(base_url),
        # Only the Host the proxy sends (see `request_headers_override`): a page on another
        # name that resolves to this machine (DNS rebinding) is refused by MLflow itself.
        "--allowed-hosts",
        _proxy_host(port),
    ]


def _proxy_host(port: int | str) -> str:
    return f"127.0.0.1:{port}"


def mlflow_ui_process() -> dict[str, Any]:
    """The `jupyter_serverproxy_servers` entry point."""
    return {
        "command": _command,
        # A UI only: no background job runner (three more processes, for GenAI jobs).
        "environment": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        # Requests arrive through Jupyter's proxy, already authenticated, with the Host of
        # the Jupyter server (a JupyterHub name, say); the UI is told the one it listens on.
        "request_headers_override": {"Host": _proxy_host("{port}")},
        "absolute_url": True,
        "timeout": 90,
        "new_browser_tab": True,
        "launcher_entry": {"enabled": True, "title": "MLflow"},
    }
