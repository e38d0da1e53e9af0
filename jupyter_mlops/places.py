"""Where things live by default: the MLflow store and the run folders, named here once for
the command line, the widget and the Jupyter server.

They live at the notebook's **project root**: the top level of the git repository the
notebook is in; outside git (or where that top level is the home folder, or read-only), the
working folder: the one the command runs in, the kernel's for the widget (the notebook's own
folder), the server's root folder for the Jupyter server. So a notebook run from a terminal
anywhere in its repository, from a widget, or from JupyterLab started anywhere (at the
repository's top level, in one of its subfolders, or above it in a hub's home folder) logs
to one store and keeps one run history, and in a repository nothing lands beside the
notebook: the top level gets ``mlflow.db`` (MLflow's own default name, so ``mlflow ui`` run
there finds it), ``mlruns/`` (its artifacts) and ``mlops-runs/`` (the run folders).

The server applies the rule per notebook (`PlacesRule`): one Jupyter server may hold several
projects, each with its own store and run folders (and its own MLflow UI behind the server).

An explicit choice always wins, and then gives one store (or one runs folder) for every
notebook: ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` (or a URI set with
``mlflow.set_tracking_uri`` in the widget's kernel), ``--runs-dir``, and the server's and the
widget's own settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STORE_NAME = "mlflow.db"
RUNS_FOLDER = "mlops-runs"
ARTIFACTS_FOLDER = "mlruns"
SQLITE = "sqlite:///"
REMEMBER_SECONDS = 5.0  # how long a server trusts a folder's project root (see `PlacesRule`)


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


@dataclass(frozen=True)
class Places:
    """Where one notebook's runs go: its project's root, store and run folders."""

    root: Path
    store: str  # a tracking URI
    runs_dir: Path


class PlacesRule:
    """The rule for a process that places many notebooks and asks often: the Jupyter server,
    whose sidebar asks every second while a run runs.

    `otherwise` is the folder for notebooks in no project (the server's root); `store` and
    `runs_dir`, when given, are explicit choices that hold for every notebook. A folder's
    project root costs a `git` process, so it is remembered for `remember` seconds (a
    repository made or removed meanwhile is seen a few seconds later), and asked afresh for
    a run about to start (`fresh`), so a run never goes by a stale answer.
    """

    def __init__(
        self,
        otherwise: Path,
        store: str | None = None,
        runs_dir: Path | None = None,
        remember: float = REMEMBER_SECONDS,
    ) -> None:
        self.otherwise = otherwise.absolute()
        self.store = store
        self.runs_dir = runs_dir
        self.remember = remember
        self._roots: dict[Path, tuple[float, Path]] = {}  # folder -> (when asked, its root)
        self._lock = threading.Lock()  # (handlers run on one loop; workers may ask too)

    def of(self, near: Path, fresh: bool = False) -> Places:
        """Where the runs of the notebook (or bundle, or folder) `near` go."""
        if self.store is not None and self.runs_dir is not None:
            root = self.otherwise  # everything is explicit: no need to ask git
        else:
            root = self.root_of(near, fresh)
        return Places(
            root,
            self.store if self.store is not None else default_store(root),
            self.runs_dir if self.runs_dir is not None else default_runs_dir(root),
        )

    def root_of(self, near: Path, fresh: bool = False) -> Path:
        """`project_root(near, otherwise)`, remembered for the folder `near` is in."""
        real = Path(os.path.realpath(near))
        folder = real if real.is_dir() else real.parent
        now = time.monotonic()
        with self._lock:
            known = self._roots.get(folder)
        if known is not None and not fresh and now - known[0] < self.remember:
            return known[1]
        root = project_root(folder, self.otherwise)
        with self._lock:
            if len(self._roots) >= 1024:  # (a server asked about many folders: start again)
                self._roots.clear()
            self._roots[folder] = (now, root)
        return root
