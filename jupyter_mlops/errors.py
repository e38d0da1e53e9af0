"""Typed errors. Each carries the exit code the CLI returns, a message a user can act on,
and (`data()`) the same as structured data, for a program that acts on it rather than shows
it: the REST API's error bodies, whose HTTP statuses are mapped in the server's handlers."""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Base of every error jupyter-mlops reports to a user (never shown as a traceback).

    The fields a subclass sets in its constructor (a failed stage's cell and line, say) are
    its structured data: `data()` gives them, and they survive pickling, so an error raised
    in a worker process reaches the server whole.
    """

    exit_code = 2

    def fields(self) -> dict[str, Any]:
        """The error's own fields, besides its message (none for most errors)."""
        return {name: value for name, value in vars(self).items() if not name.startswith("_")}

    def data(self) -> dict[str, Any]:
        """What went wrong, as data: its kind (the class name), its message, its fields."""
        return {"kind": type(self).__name__, "message": str(self), **self.fields()}

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles only `args`: keyword fields would be lost, or a required one
        # (StageFailed's stage) would make unpickling fail.
        return (_rebuild, (type(self), self.args, dict(vars(self))))


def _rebuild(kind: type[MlopsError], args: tuple[Any, ...], fields: dict[str, Any]) -> MlopsError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(fields)
    return error


class BadInput(MlopsError):
    """The notebook, bundle, parameters or command line can't be used: nothing was run."""

    exit_code = 2


class BadRequest(BadInput):
    """A REST request body the server can't use; `problems` names each field and what is
    wrong with it, for a form to mark them."""

    def __init__(self, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


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


class NotFound(BadInput):
    """A file, run or verification the request names does not exist."""


class Conflict(BadInput):
    """The request doesn't fit what it names now: cancelling a run that has already ended."""
