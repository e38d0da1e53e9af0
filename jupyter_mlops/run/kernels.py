"""Kernels for stages: which kernelspec to use, and kernels we can always stop.

Each stage runs in a fresh kernel started in the source notebook's folder (so relative paths
work as they did in JupyterLab) with its own environment (the stage's MLflow run). We own
the kernel managers rather than letting papermill create them, so that the runner can stop
every kernel it started, child processes included, on Ctrl-C or cancel.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from queue import Empty
from typing import IO, Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import AsyncKernelManager, KernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import run_sync

from ..errors import BadInput
from .orphans import Reaper
from .zygote import ForkRefused, Zygote

FALLBACK_KERNEL = "python3"
SHUTDOWN_SECONDS = 5.0  # as jupyter_client waits for a kernel asked to end, then kills it
IOPUB_CHECK_SECONDS = 0.2  # jupyter_client's own wait for IOPub once the kernel answered


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


def forkable_python(kernel_name: str) -> str | None:
    """The Python a zygote for `kernel_name` runs, or None when its kernels are not started
    as ``PYTHON -m ipykernel_launcher -f {connection_file}`` (another language, a wrapper
    script, extra options): those kernels start fresh."""
    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except (NoSuchKernel, OSError, ValueError):
        return None
    argv = spec.argv
    if argv[1:] != ["-m", "ipykernel_launcher", "-f", "{connection_file}"]:
        return None
    # Its own environment (read when Python starts: PYTHONPATH, the locale...) or its own
    # provisioner: a fork of the runner's Python can't honour those.
    if spec.env or spec.metadata.get("kernel_provisioner"):
        return None
    # jupyter_client starts `python`/`python3` kernels with its own interpreter
    if argv[0] in ("python", "python3", f"python3.{sys.version_info[1]}"):
        return sys.executable
    return argv[0] if os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK) else None


class ForkedKernel:
    """A kernel forked by the zygote, as jupyter_client's provisioner sees a Popen.

    It is the zygote's child, not ours, so its end is watched through a pidfd (Linux 5.3+)
    rather than waited for; the zygote reaps it. Its exit status is not ours to know:
    ended is 0.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stdin = self.stdout = self.stderr = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            self._pidfd = None
        except OSError as error:  # no pidfds here: it can't be watched, so it can't run
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            raise ForkRefused(f"a forked kernel can't be watched here ({error})") from None

    def poll(self) -> int | None:
        if self._pidfd is None:
            return 0
        ready, _, _ = select.select([self._pidfd], [], [], 0)
        if not ready:
            return None
        self.close()
        return 0

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def wait(self, timeout: float | None = None) -> int:
        if self._pidfd is not None:
            select.select([self._pidfd], [], [], timeout)
        code = self.poll()
        if code is None:
            raise TimeoutError(f"kernel {self.pid} still runs")
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkingProvisioner(LocalProvisioner):  # type: ignore[misc]
    """jupyter_client's local provisioner, except that the kernel is forked by the run's
    zygote (everything else, papermill included, is unchanged). When the zygote refuses
    (its modules are unsafe to fork) or is gone, the kernel starts fresh, as usual, and
    the stage's log says why."""

    zygote: Zygote | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        zygote = self.zygote
        log = kwargs.get("stdout")
        reason = "the kernel's log is not a file"
        if zygote is not None and log is not None and hasattr(log, "fileno"):
            if cmd[:1] == [zygote.python] and cmd[1:3] == ["-m", "ipykernel_launcher"]:
                cwd = str(kwargs.get("cwd") or os.getcwd())
                env = dict(kwargs.get("env") or os.environ)
                try:
                    log.flush()
                    pid = zygote.fork(cmd[cmd.index("-f") + 1], cwd, env, log.fileno())
                    self.process = ForkedKernel(pid)  # type: ignore[assignment]
                except ForkRefused as refusal:
                    reason = str(refusal)
                else:
                    self.pid = self.pgid = pid
                    self.cwd = cwd
                    return self.connection_info
            else:
                reason = f"the kernel is not started by {zygote.python} -m ipykernel_launcher"
        if zygote is not None and log is not None:
            log.write(f"jupyter-mlops: a fresh kernel, not forked from the run's: {reason}\n")
            log.flush()
        return await super().launch_kernel(cmd, **kwargs)


class StageKernelClient(AsyncKernelClient):  # type: ignore[misc]
    """jupyter_client's client, ready as soon as the kernel is.

    Its own `wait_for_ready` ends with 0.2 s of silence on IOPub: a fifth of a second per
    stage, for nothing once the kernel has answered. This one waits for the kernel's
    answer to `kernel_info` on the shell channel and for the end of that request on IOPub
    (its `idle` status): then IOPub is connected and drained up to that point, which is
    what the silence was for.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            request = self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            answered = reply is not None and reply["msg_type"] == "kernel_info_reply"
            # IOPub may not be connected yet when the kernel says it is idle (ZeroMQ drops
            # what a subscriber connecting late misses): then ask again, as jupyter_client.
            if answered and await self._idle_after(request, IOPUB_CHECK_SECONDS):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _idle_after(self, request: str, timeout: float) -> bool:
        """Whether IOPub says `request` is done before `timeout` (else: not connected yet)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (
                message["msg_type"] == "status"
                and message["parent_header"].get("msg_id") == request
                and message["content"].get("execution_state") == "idle"
            ):
                return True
        return False


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
        zygote: Zygote | None = None,
        **kwargs: Any,
    ) -> None:
        self._sockets = tempfile.mkdtemp(prefix="mlops-kernel-")
        self._reaper = reaper or Reaper()  # one never started does nothing
        self._reaper.track(self._sockets)
        self._group: int | None = None
        self._killed = False  # kill_now was called: a kernel still starting dies once started
        super().__init__(
            transport="ipc",
            ip=os.path.join(self._sockets, "k"),
            client_class=f"{__name__}.StageKernelClient",
            **kwargs,
        )
        self.connection_file = os.path.join(self._sockets, "kernel.json")
        self.stage_cwd = cwd
        self.stage_env = env
        self.stage_log = log
        self.zygote = zygote
        self._clients: list[Any] = []

    def client(self, **kwargs: Any) -> Any:
        """A client for the kernel (papermill's), remembered so that its channels stop with
        the kernel: papermill leaves them open when it didn't create the manager, and each
        heartbeat channel is a thread with its own event loop and sockets."""
        made = super().client(**kwargs)
        self._clients.append(made)
        return made

    def _stop_clients(self) -> None:
        clients, self._clients = self._clients, []
        for made in clients:
            with contextlib.suppress(Exception):
                made.stop_channels()

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("cwd", self.stage_cwd)
        kwargs.setdefault("env", self.stage_env)
        kwargs.setdefault("stdout", self.stage_log)
        kwargs.setdefault("stderr", self.stage_log)
        if self.zygote is not None and self.provisioner is None:
            # jupyter_client creates a provisioner only when none is set: ours forks
            provisioner = ForkingProvisioner(
                kernel_id=self.kernel_id or "", kernel_spec=self.kernel_spec, parent=self
            )
            provisioner.zygote = self.zygote
            self.provisioner = provisioner
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
        self._stop_clients()  # before the context they use is destroyed
        try:
            if self.has_kernel:
                run_sync(self.shutdown_kernel)(now=False)
        except Exception:
            pass
        finally:
            self._clean_up()

    def request_stop(self) -> None:
        """Ask the kernel to end, as `shutdown` does, but return at once: a kernel's exit
        (its atexit handlers, freeing what the stage built) takes half a second or more, and
        the next stage need not wait for it. `wait_stopped`, from any thread, then waits."""
        try:
            if self.has_kernel:
                run_sync(self.request_shutdown)()
            self._close_control_socket()
        except Exception:
            pass
        self._stop_clients()

    def wait_stopped(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Wait (up to `timeout`) for a kernel asked to end, then clean up as `shutdown`
        does, its ZeroMQ context included (an I/O thread and file descriptors: a process
        running many stages, a pytest session, would run out of them)."""
        process = getattr(self.provisioner, "process", None)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(Exception):
            while process is not None and process.poll() is None:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        self._clean_up()
        # What jupyter_client's cleanup_resources does, without an event loop in this thread:
        # the kernel is gone, and the stage's thread closed the client's sockets.
        with contextlib.suppress(Exception):
            self.cleanup_connection_file()
        if self._created_context:
            with contextlib.suppress(Exception):
                self.context.destroy(linger=100)

    def _clean_up(self) -> None:
        # Linux gives no new process a group's id while the group has members, so this
        # reaches only what is left of the kernel's group, if anything.
        self.kill_now()
        self._stop_clients()
        process = getattr(self.provisioner, "process", None)
        if isinstance(process, ForkedKernel):
            process.close()  # its pidfd
        if self._group is not None:
            self._reaper.untrack_group(self._group)
        shutil.rmtree(self._sockets, ignore_errors=True)
        self._reaper.untrack(self._sockets)
