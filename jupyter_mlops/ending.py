"""Ending a process as Python would, minus the teardown of every module it imported.

That teardown (finalising MLflow, SQLAlchemy, pandas, scikit-learn module by module) is
most of a short process's exit: 0.4 of a forked kernel's 0.5 s, and 0.5-1 s of every
`jupyter-mlops` command that talked to MLflow. Everything a program can notice still
happens: Python waits for its non-daemon threads (if one runs, the process ends the usual
way instead), the atexit handlers run (IPython's clears a kernel's namespace, so its
objects are finalised; MLflow and logging flush), cyclic garbage is collected, and the
standard streams are flushed.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import threading


def exit_without_teardown(code: int = 0) -> None:
    """End the process with `code` now; return (doing nothing) while a non-daemon thread
    runs, for the caller to end the usual way."""
    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(code)
