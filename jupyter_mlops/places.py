"""Where things live by default: the MLflow store and the run folders, named here once for
the command line, the widget and the Jupyter server.

For the command line and the widget they live at the notebook's **project root**: the top
level of the git repository the notebook is in; outside git (or where that top level is the
home folder, or read-only), the working folder (the kernel's, for the widget: the notebook's
own folder). So a notebook run from a terminal anywhere in its repository and from a widget
logs to one store and keeps one run history, and in a repository nothing lands beside the
notebook: the top level gets ``mlflow.db`` (MLflow's own default name, so ``mlflow ui`` run
there finds it), ``mlruns/`` (its artifacts) and ``mlops-runs/`` (the run folders).

The Jupyter server uses its root folder (one store, the one its proxied MLflow UI shows): the
same as the command line's when JupyterLab is started at the repository's top level.

An explicit choice always wins: ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` (or a URI set
with ``mlflow.set_tracking_uri`` in the widget's kernel), ``--runs-dir``, and the server's and
the widget's own settings.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

STORE_NAME = "mlflow.db"
RUNS_FOLDER = "mlops-runs"
ARTIFACTS_FOLDER = "mlruns"
SQLITE = "sqlite:///"


def project_root(near: Path, otherwise: Path) -> Path:
    """The top level of the git repository holding `near` (a notebook, a bundle's folder, a
    run's folder that may not exist yet); `otherwise` when it is in none (or git isn't
    installed), when that top level is the home folder (a repository of dotfiles, not a
    project), or when it can't be written to (a read-only clone, a synced DAGs folder)."""
    folder = near.resolve()  # a notebook linked from elsewhere belongs to its real project
    while not folder.is_dir() and folder != folder.parent:  # a run folder not made yet
        folder = folder.parent
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or no such folder
        return otherwise.absolute()
    top = Path(found.stdout.strip()) if found.returncode == 0 else None
    if not top or not top.is_absolute() or top == Path.home() or not os.access(top, os.W_OK):
        return otherwise.absolute()
    return top


def default_store(root: Path) -> str:
    """The tracking URI of the project's own store: `mlflow.db` at its root."""
    return f"{SQLITE}{root / STORE_NAME}"


def default_runs_dir(root: Path) -> Path:
    return root / RUNS_FOLDER


def project_runs_dir(near: Path) -> Path:
    """The run folders of the project holding `near`, for the command line (outside git:
    in the working folder)."""
    return default_runs_dir(project_root(near, Path.cwd()))


def local_artifacts(tracking_uri: str, experiment: str) -> str | None:
    """Where a new experiment of a local sqlite store keeps its artifacts: `mlruns/` beside
    the database (MLflow would put them under whatever folder the process creating the
    experiment happened to run in); None for any other store, whose server decides."""
    if not tracking_uri.startswith(SQLITE + "/"):
        return None
    database = Path(tracking_uri[len(SQLITE) :])
    return str(database.parent / ARTIFACTS_FOLDER / re.sub(r"[^A-Za-z0-9._-]", "_", experiment))
