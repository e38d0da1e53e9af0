"""Stopping a run on request: Ctrl-C and SIGTERM, read by the runner's loop between steps.

The runner's other ways to stop (its owner ending, a reaper after a kill -9) are in
``orphans``; all of them end the same way, as a cancel does.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StopFlag:
    """A flag a signal handler may set: a plain attribute, no lock a handler could deadlock on."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


@contextmanager
def stop_requests(flag: StopFlag) -> Iterator[None]:
    """Ctrl-C and SIGTERM (a cancel from the Jupyter server or the widget, a CI timeout)
    ask the scheduling loop to stop; a second Ctrl-C (a person insisting) stops it at once,
    while SIGTERMs repeated by programs (a cancel, then a server's shutdown) change nothing.

    Raising KeyboardInterrupt from the handler, wherever the main thread happens to be,
    could leave a lock of `concurrent.futures.wait` taken (the handler ran between two of
    its acquisitions), and the run would then wait forever for its stages. The flag is
    read by the loop between two of its steps instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum: int, frame: Any) -> None:
        if flag.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # asked twice: the user means now
        flag.set()

    previous = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
