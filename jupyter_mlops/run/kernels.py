"""Kernels for stages: which kernelspec to use, and kernels we can always stop.

Each stage runs in a fresh kernel started in the source notebook's folder (so relative paths
work as they did in JupyterLab) with its own environment (the stage's MLflow run). We own
the kernel managers rather than letting papermill create them, so that the runner can stop
every kernel it started, child processes included, on Ctrl-C or cancel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager, KernelManager
from jupyter_core.utils import run_sync

from ..errors import BadInput
from .orphans import Reaper

FALLBACK_KERNEL = "python3"


@dataclass(frozen=True)
class KernelChoice:
    name: str
    warning: str | None = None


def choose_kernel(requested: str | None, notebook_kernel: str | None) -> KernelChoice:
    """The kernelspec to run stages with.

    An explicitly requested kernel (``--kernel`` or the notebook's ``jupyter_mlops.kernel``
    setting) must exist. The notebook's own kernelspec is used when it is installed here;
    otherwise we fall back to this environment's ``python3`` with a warning, instead of
    papermill's bare "No such kernel".
    """
    specs = KernelSpecManager()
    if requested:
        try:
            specs.get_kernel_spec(requested)
        except NoSuchKernel:
            known = ", ".join(sorted(specs.find_kernel_specs())) or "none"
            raise BadInput(
                f"kernel `{requested}` is not installed (installed kernels: {known}); "
                "install it or choose another with --kernel"
            ) from None
        return KernelChoice(requested)
    if not notebook_kernel or notebook_kernel == FALLBACK_KERNEL:
        return KernelChoice(FALLBACK_KERNEL)
    try:
        specs.get_kernel_spec(notebook_kernel)
        return KernelChoice(notebook_kernel)
    except NoSuchKernel:
        return KernelChoice(
            FALLBACK_KERNEL,
            f"the notebook's kernel `{notebook_kernel}` is not installed here; using this "
            f"environment's `{FALLBACK_KERNEL}` instead (choose one with --kernel)",
        )


class StageKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel starts in a given folder with a given environment.

    The kernel talks over Unix sockets (IPC) in a private folder rather than TCP ports: no
    port races between parallel stages, nothing reachable from the network. Its connection
    file goes there too, so one folder is all it leaves on disk, and `reaper` is told of it
    and of the kernel's process group, to clean up should the runner die. Its own stdout and
    stderr (library warnings, crashes in native code) go to the stage's log.
    """

    def __init__(
        self,
        *,
        cwd: str,
        env: dict[str, str],
        log: IO[str],
        reaper: Reaper | None = None,
        **kwargs: Any,
    ) -> None:
        self._sockets = tempfile.mkdtemp(prefix="mlops-kernel-")
        self._reaper = reaper or Reaper()  # one never started does nothing
        self._reaper.track(self._sockets)
        self._group: int | None = None
        self._killed = False  # kill_now was called: a kernel still starting dies once started
        super().__init__(transport="ipc", ip=os.path.join(self._sockets, "k"), **kwargs)
        self.connection_file = os.path.join(self._sockets, "kernel.json")
        self.stage_cwd = cwd
        self.stage_env = env
        self.stage_log = log

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("cwd", self.stage_cwd)
        kwargs.setdefault("env", self.stage_env)
        kwargs.setdefault("stdout", self.stage_log)
        kwargs.setdefault("stderr", self.stage_log)
        await KernelManager._async_start_kernel(self, **kwargs)
        pid = self.pid
        # Started in a session of its own, it leads a process group: the kernel and all it
        # starts. Anything else (a provisioner of another kind) is not ours to kill by group.
        with contextlib.suppress(OSError):
            if pid is not None and os.getpgid(pid) == pid:
                self._group = pid
                self._reaper.track_group(pid)
        if self._killed:  # stopped while it started: kill_now found no process yet
            self.kill_now()

    @property
    def pid(self) -> int | None:
        process = getattr(self.provisioner, "process", None)
        return process.pid if process is not None else None

    def kill_now(self) -> None:
        """Kill the kernel and every process it started, from any thread.

        Kernels are started in their own session, so the process group is the kernel and
        its children (shell commands, multiprocessing workers). Called before the kernel's
        process exists, it kills the kernel as soon as it has started: a kernel left alive
        there would wait at its gate forever, and the run with it.
        """
        self._killed = True
        group = self._group
        if group is None and self.pid is not None:
            with contextlib.suppress(OSError):
                group = os.getpgid(self.pid)
        if group is not None and group != os.getpgrp():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)

    def shutdown(self) -> None:
        """Stop the kernel politely (it flushes MLflow, closes files), then make sure: what
        the stage started and left running (a server, a `sleep` in the background) ends
        with it, and its folder goes."""
        try:
            if self.has_kernel:
                run_sync(self.shutdown_kernel)(now=False)
        except Exception:
            pass
        finally:
            # Linux gives no new process a group's id while the group has members, so this
            # reaches only what is left of the kernel's group, if anything.
            self.kill_now()
            if self._group is not None:
                self._reaper.untrack_group(self._group)
            shutil.rmtree(self._sockets, ignore_errors=True)
            self._reaper.untrack(self._sockets)
