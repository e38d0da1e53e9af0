"""jupyter-mlops: tagged notebooks become papermill stage jobs that log to MLflow."""

__version__ = "0.1.0"
