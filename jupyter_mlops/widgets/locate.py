"""Which notebook file this kernel runs for, so a panel can analyse its own notebook.

A kernel is not told its notebook by the messaging protocol, but the frontends that start
one leave a trace: Jupyter Server (JupyterLab, Notebook 7, most hosted notebooks) sets
``JPY_SESSION_NAME`` to the notebook's path, and VS Code defines ``__vsc_ipynb_file__`` in
the user namespace. Anywhere else the user has to name the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import BadInput

SESSION_ENV = "JPY_SESSION_NAME"
VSCODE_GLOBAL = "__vsc_ipynb_file__"


def this_notebook(
    user_ns: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The notebook this kernel runs for. Raises BadInput asking for the path otherwise.

    Defaults: the running IPython's namespace, ``os.environ`` and the working directory.
    """
    user_ns = _user_namespace() if user_ns is None else user_ns
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    candidates = []
    vscode = user_ns.get(VSCODE_GLOBAL)
    if isinstance(vscode, str) and vscode:
        candidates.append(Path(vscode))
    session = environ.get(SESSION_ENV, "")
    if session:
        # Jupyter Server gives an absolute path when it knows the kernel's folder, else the
        # path relative to its root; the kernel itself starts in the notebook's folder.
        candidates += [cwd / session, cwd / Path(session).name]
    for candidate in candidates:
        if candidate.suffix == ".ipynb" and candidate.is_file():
            return candidate
    if candidates:
        raise BadInput(
            f"this kernel was started for {candidates[0]}, which is not a notebook file any "
            "more (renamed or moved?): pass its path, e.g. PipelinePanel('churn.ipynb')"
        )
    raise BadInput(
        "can't tell which notebook this kernel runs for (neither Jupyter Server's "
        f"{SESSION_ENV} nor VS Code's {VSCODE_GLOBAL} is set): pass its path, "
        "e.g. PipelinePanel('churn.ipynb')"
    )


def _user_namespace() -> Mapping[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}
