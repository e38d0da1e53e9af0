"""Slow work off the server's event loop: child processes with a time budget.

Jupyter serves every request, JupyterLab's own included, from one event loop. Analysing a
notebook is pure computation whose time grows with the notebook's code (a notebook of
megabytes takes seconds), and the sidebar asks for it after every edit; checking a run
request analyses the notebook and looks through earlier runs. Done on the loop, one such
request freezes the whole server. Done in a thread, it still holds the GIL and can't be
stopped. So it runs in a small pool of child processes (spawned, never forked from the
threaded server), kept warm between requests; a job over its time budget is stopped by
terminating the pool, and the request gets a clear error instead of a frozen server.

The budget is the job's own: a new pool's workers import what the jobs need first, and a
request waits for that before its clock starts.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from ..errors import BadInput, TooSlow, Unavailable

T = TypeVar("T")
STARTUP_SECONDS = 120  # a new worker imports the analysis (seconds on a busy machine)


def _import_jobs() -> None:
    """What a worker does first: import what the jobs need, before any budget runs."""
    from . import jobs  # noqa: F401


class WorkerPool:
    """Runs picklable top-level functions in child processes, each call within `budget` s."""

    def __init__(self, budget: float, processes: int = 2) -> None:
        self.budget = budget
        self.processes = processes
        self._pool: Pool | None = None
        self._ready: asyncio.Future[None] | None = None  # the new pool's workers have imported
        self._lock = threading.Lock()
        self._pending: set[asyncio.Future[Any]] = set()
        self._slots: asyncio.Semaphore | None = None  # made on the event loop that uses it

    async def call(self, what: str, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker; its exception is raised here as it was raised there.

        `what` names the job in the error a user sees when it runs out of time. Jobs wait
        for a free worker before their clock starts: one waiting behind others is not
        charged for their time.
        """
        async with self._free_worker():
            return await self._run(what, function, *args)

    async def _run(self, what: str, function: Callable[..., T], *args: Any) -> T:
        try:
            _, ready = self._pool_now()
            await asyncio.wait_for(asyncio.shield(ready), STARTUP_SECONDS)
            pool, _ = self._pool_now()  # a restart while it started makes a new one
            future: asyncio.Future[T] = self._submit(pool, function, *args)
        except (TimeoutError, ValueError, OSError) as error:  # a pool that can't start
            self.close()
            raise Unavailable(
                f"the server's worker processes could not start ({type(error).__name__}: "
                f"{error}); try again, and see the server's log"
            ) from None
        self._pending.add(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.budget)
        except TimeoutError:
            self._pending.discard(future)  # its own end is this error, not the others'
            self._restart(f"stopped: another request ({what}) ran out of time")
            raise TooSlow(
                f"{what} took longer than {self.budget:g} s and was stopped (a large notebook, "
                "or a slow tracking server); raise MlopsExtension.work_timeout to allow more"
            ) from None
        finally:
            self._pending.discard(future)

    def _free_worker(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.processes)
        return self._slots

    def close(self) -> None:
        with self._lock:
            pool, ready = self._pool, self._ready
            self._pool = self._ready = None
        if ready is not None and not ready.done():  # those waiting for it ask the next pool
            ready.set_result(None)
        if pool is not None:
            pool.terminate()

    def _pool_now(self) -> tuple[Pool, asyncio.Future[None]]:
        with self._lock:
            if self._pool is None or self._ready is None:
                self._pool = multiprocessing.get_context("spawn").Pool(
                    self.processes, initializer=_import_jobs
                )
                self._ready = self._submit(self._pool, _import_jobs)
            return self._pool, self._ready

    @staticmethod
    def _submit(pool: Pool, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`function(*args)` in the pool, as a future of this event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(outcome: Any, failed: bool) -> None:
            if future.done():
                return
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        pool.apply_async(
            function,
            args,
            callback=lambda result: loop.call_soon_threadsafe(settle, result, False),
            error_callback=lambda error: loop.call_soon_threadsafe(settle, error, True),
        )
        return future

    def _restart(self, reason: str) -> None:
        """Stop every worker (the one that is stuck among them); jobs that shared the pool
        fail with `reason` rather than wait forever."""
        self.close()
        for future in list(self._pending):
            if not future.done():
                future.set_exception(BadInput(reason))
