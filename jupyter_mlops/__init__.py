"""jupyter-mlops: tagged notebooks become papermill stage jobs that log to MLflow."""

from ._version import __version__

__all__ = ["__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-mlops"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server.app import MlopsExtension

    return [{"module": "jupyter_mlops", "app": MlopsExtension}]
