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


class TrackingUnavailable(MlopsError):
    """The tracking server can't be reached when a run starts: nothing is run."""

    exit_code = 2


class TrackingLost(MlopsError):
    """The tracking server went away during a run."""

    exit_code = 1

    def __init__(self, reason: str) -> None:
        super().__init__(f"lost the MLflow tracking server: {reason}")
        self.reason = reason


class SerializationError(MlopsError):
    """A value a later stage needs can't be written; names the variable and a fix."""

    exit_code = 1


class NotebookFailed(MlopsError):
    """The notebook itself does not run top to bottom: there is nothing to compare with."""

    exit_code = 1


class TooSlow(BadInput):
    """A job ran past its time budget and was stopped."""


class Unavailable(MlopsError):
    """The worker processes could not be started."""


class TooLarge(BadInput):
    """A notebook over the server's size limit (MlopsExtension.max_notebook_mb)."""


class OutsideRoot(BadInput, ValueError):
    """A path that is absolute, climbs with `..`, or resolves (via symlinks) outside the root."""
