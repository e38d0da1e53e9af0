"""Typed errors. Each carries the exit code the CLI returns and a message a user can act on."""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error jupyter-mlops reports to a user (never shown as a traceback)."""

    exit_code = 2


class BadInput(MlopsError):
    """The notebook, bundle, parameters or command line can't be used: nothing was run."""

    exit_code = 2


class NotebookError(BadInput):
    """The notebook file can't be read, or its tagging has errors."""


class StageFailed(MlopsError):
    """A stage raised, timed out, or its kernel died. The run is marked FAILED."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        cell: int | None = None,
        line: int | None = None,
        exception: str | None = None,
        notebook: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.cell = cell
        self.line = line
        self.exception = exception
        self.notebook = notebook


class RunInterrupted(MlopsError):
    """The user stopped the run (Ctrl-C, a cancel request). The run is marked FAILED."""

    exit_code = 130
