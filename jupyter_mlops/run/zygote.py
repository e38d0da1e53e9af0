"""The zygote: a warm process that forks each stage's kernel, so a stage costs its cells.

A fresh kernel costs a Python start, ipykernel's imports, and then the notebook's setup
imports again (scikit-learn alone is over a second): per stage, on every run. The zygote
pays that once per run. It is started with the run's Python in the notebook's folder,
imports ipykernel and the modules the stage notebooks import, and then waits; for each
stage the runner's provisioner (``kernels.ForkingProvisioner``) asks it for a kernel, and
it forks one: a child that takes the stage's folder, environment, log and connection file
and becomes an ordinary ipykernel. Each child starts from the zygote's state, never from
another stage's, so stages stay as isolated as with fresh kernels (and as under Airflow).

What the zygote imports is only what the stages would import themselves: modules named by
the stage notebooks' top-level ``import`` statements and found outside the notebook's folder
(its own modules may print, read files or change while the run goes on; they are imported
by the stage as usual). Some modules can't be forked once imported: they start threads (a
fork copies only the thread that forks) or talk to a GPU. Known ones are never imported
here; for the rest, a zygote that finds a thread running or CUDA initialised after its
imports refuses to fork, and every stage then starts a fresh kernel, with a line in its log
saying why.

Nothing it forks outlives the run: the runner holds the other end of the zygote's stdin; at
its end (or death: kill -9 included) the zygote reads end-of-file, kills what it forked that
is still alive and exits. The kernels lead their own process groups, which the runner's
reaper also knows of.

The process side (``main``) imports nothing of jupyter_mlops before forking but this module
and the runtime the stages import anyway; the runner side is `Zygote`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..ending import exit_without_teardown

NO_FORK_ENV = "JUPYTER_MLOPS_NO_FORK"  # set (to anything but "" or "0") to never fork
REAP_SECONDS = 1.0  # how long an ended kernel may stay a zombie of the zygote
READY_TIMEOUT_SECONDS = 120.0  # its imports may be slow on a busy machine; then: fall back
# Modules that start threads or hold devices at import, or are documented as not surviving a
# fork: a stage imports them itself, after the fork.
NEVER_PRE_IMPORT = frozenset(
    {"tensorflow", "keras", "jax", "jaxlib", "ray", "cupy", "pyspark", "torch_xla", "dask"}
    | {"grpc"}  # native threads, which `_unsafe_to_fork` can't see
    # Libraries that look for IPython when imported (to choose how to show things): the
    # zygote has none, so they must be imported in the kernel.
    | {"plotly", "ipywidgets", "tqdm", "holoviews", "hvplot", "panel", "bokeh", "altair"}
)
# Imported before the notebook's modules: what every stage kernel imports (ipykernel's app
# and IPython) and what every stage notebook's generated cells call.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "jupyter_mlops.runtime")
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


# --- which modules to import ----------------------------------------------------------------


def imported_modules(sources: Iterable[str]) -> list[str]:
    """The absolute modules that `sources`' top-level import statements import, in order.

    Only statements at the top of a cell: an import inside a function or a branch may be
    meant never to run. Cells with IPython syntax (magics, shell escapes) are read without
    those lines.
    """
    found: dict[str, None] = {}
    for source in sources:
        text = "\n".join(
            line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for statement in tree.body:
            if isinstance(statement, ast.Import):
                found.update((alias.name, None) for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                found[statement.module] = None
    return [m for m in found if m.split(".")[0] not in NEVER_PRE_IMPORT]


def forking_disabled() -> bool:
    """Turned off by the user, or not possible: a forked kernel is watched through a pidfd
    (Linux 5.3+), and macOS's system frameworks don't survive a fork."""
    if sys.platform != "linux" or not hasattr(os, "pidfd_open"):
        return True
    return os.environ.get(NO_FORK_ENV, "").strip() not in ("", "0")


# --- the runner's side ----------------------------------------------------------------------


class ForkRefused(Exception):
    """The zygote can't fork a kernel (why is the message): start a fresh one instead."""


class Zygote:
    """The runner's handle on one zygote process, shared by the run's stages (thread-safe).

    Started as the runner connects to MLflow (its imports overlap MLflow's). It imports
    `first` (what the cells import) before it forks anything: a stage that asks for a kernel
    before then waits for all of it (up to READY_TIMEOUT_SECONDS, then it starts fresh).
    `later` (MLflow, for the stages that log a model) it imports while no stage is asking.
    """

    def __init__(
        self, python: str, cwd: str, first: list[str], later: list[str], env: dict[str, str]
    ) -> None:
        self.python = python
        self.cwd, self.first, self.later, self.env = cwd, first, later, env
        self._folder = tempfile.mkdtemp(prefix="mlops-zygote-")
        self.address = os.path.join(self._folder, "zygote.sock")
        self._log = open(os.path.join(self._folder, "zygote.log"), "wb")  # noqa: SIM115
        self._lock = threading.Lock()
        self._refusal: str | None = None
        try:
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [python, "-m", __name__, self.address, ",".join(first), ",".join(later)],
                stdin=subprocess.PIPE,  # our end closing (our exit, kill -9) ends the zygote
                stdout=self._log,
                stderr=self._log,
                cwd=cwd,
                env=env,
                start_new_session=True,  # a Ctrl-C is the runner's to handle, then it ends us
            )
        except OSError:
            self._log.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise

    @property
    def folder(self) -> str:
        """The zygote's private folder (socket and log), to remove should the runner die."""
        return self._folder

    def fork(self, connection_file: str, cwd: str, env: dict[str, str], log: int) -> int:
        """A kernel forked for a stage: its pid (it leads its own process group).

        `log` is a file descriptor for the kernel's stdout and stderr. Raises ForkRefused
        when the zygote can't fork (it found its imports unsafe to fork, it died, or it
        took too long to start); the caller then starts a fresh kernel.
        """
        with self._lock:
            if self._refusal is None and self.process is None:
                self._refusal = "the run has ended"
            if self._refusal is not None:
                raise ForkRefused(self._refusal)
            try:
                reply = self._ask({"connection_file": connection_file, "cwd": cwd, "env": env}, log)
            except OSError as error:
                self._refusal = f"the warm kernel process could not be reached ({error})"
                raise ForkRefused(self._refusal) from None
            if "pid" not in reply:
                self._refusal = str(reply.get("refused") or "it gave no reason")
                raise ForkRefused(self._refusal)
            return int(reply["pid"])

    def _ask(self, request: dict[str, Any], log: int) -> dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            while True:  # the zygote binds its socket first thing; until then, wait
                try:
                    connection.connect(self.address)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    if self.process is None or self.process.poll() is not None:
                        raise OSError("it exited while starting; see its log") from None
                    if time.monotonic() > deadline:
                        raise OSError("it did not start in time") from None
                    time.sleep(0.01)
            connection.settimeout(max(1.0, deadline - time.monotonic()))
            data = json.dumps(request).encode() + b"\n"
            socket.send_fds(connection, [data], [log])
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    raise OSError("it closed the connection; see its log")
                reply += chunk
        return json.loads(reply)

    def close(self, keep_log: Path | None = None) -> None:
        """End the zygote, and remove its folder.

        The run waited for its kernels first, and nothing of the zygote's is worth the half
        second its own exit takes (freeing every module it imported): it is killed. (Should
        a kernel it forked still run, that kernel ends too: ipykernel watches its parent.)"""
        # Not under the fork lock: a stage waiting for the zygote's imports holds it, and a
        # Ctrl-C must not wait for them. Killed, the zygote closes that stage's connection,
        # and the stage starts no kernel (the run is stopping) or a fresh one.
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
        self._log.close()
        log = Path(self._folder, "zygote.log")
        if keep_log is not None and log.is_file() and log.stat().st_size:
            with contextlib.suppress(OSError):
                keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, keep_log)
        shutil.rmtree(self._folder, ignore_errors=True)


_AHEAD: list[Zygote] = []  # at most one: started before its run was asked for


def keep_ahead(zygote: Zygote) -> None:
    """Keep `zygote` for the next run of this process that would start the same one: a
    runner started ahead (run/spare.py) starts the zygote of the run it expects (the
    notebook its owner ran last), so that run's kernels don't wait for its imports."""
    for earlier in _AHEAD:
        earlier.close()
    _AHEAD[:] = [zygote]


def drop_ahead() -> None:
    """End the zygote kept ahead, if any: the run it was kept for won't come."""
    while _AHEAD:
        _AHEAD.pop().close()


def take_ahead(
    python: str, cwd: str, first: list[str], later: list[str], env: dict[str, str]
) -> Zygote | None:
    """The zygote kept ahead, if it is what the run would start (it may have imported
    more); else None, and it is closed."""
    if not _AHEAD:
        return None
    zygote = _AHEAD.pop()
    fits = (
        zygote.process is not None
        and zygote.process.poll() is None
        and (zygote.python, zygote.cwd, zygote.env) == (python, cwd, env)
        and set(first) <= set(zygote.first)
        and set(later) <= set(zygote.first) | set(zygote.later)
    )
    if fits:
        return zygote
    zygote.close()
    return None


# --- the zygote process ------------------------------------------------------------------


def main(address: str, first: list[str], later: list[str]) -> None:
    """Import, then fork kernels on request until the runner closes our stdin."""
    began = time.time()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)  # first: the runner may connect while we import
    listener.listen(16)
    # As ipykernel does at its start: matplotlib reads it when imported, so it must be set
    # before the notebook's modules are, or figures would not show inline.
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    # Read by ipykernel when imported: the kernels it forks are its children.
    os.environ["JPY_PARENT_PID"] = str(os.getpid())
    for name in KERNEL_MODULES:
        importlib.import_module(name)
    here = os.path.realpath(os.getcwd())
    for name in first:
        _import(name, here)
    forked: list[int] = []
    request = _serve(listener, [n for n in later if n not in sys.modules], here, forked, began)
    if request is None:  # the runner is gone: so are its kernels, and our folder
        for pid in forked:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        shutil.rmtree(os.path.dirname(address), ignore_errors=True)
        os._exit(0)  # nothing to flush or free: skip the interpreter's slow teardown
    _become_kernel(request)


def _import(name: str, here: str) -> None:
    """Import a module the stages import, unless it is the notebook's own (in `here`) or
    not installed; then what makes its first use slow in every kernel (`WARM_UPS`)."""
    if not _installed(name.partition(".")[0], here):
        return  # not installed here, or the notebook's own: the stage imports it
    try:
        importlib.import_module(name)
    except BaseException as error:  # the stage will meet the same error in its cell
        print(f"not imported ahead: {name} ({type(error).__name__}: {error})", flush=True)
        return
    warm_up = WARM_UPS.get(name)
    if warm_up is not None:
        with contextlib.suppress(Exception):
            warm_up()


def _installed(top: str, here: str) -> bool:
    """Whether the top-level module `top` is installed, not the notebook's own (a module or
    package in its folder). Only a top-level name is looked up: finding a submodule would
    import its package."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    places = [spec.origin or "", *(spec.submodule_search_locations or [])]
    places = [p for p in places if os.path.isabs(p)]
    if not places:
        return spec.origin in ("built-in", "frozen")
    return not any(os.path.realpath(p).startswith(here + os.sep) for p in places)


def _mlflow_packages() -> None:
    from jupyter_mlops.tracking.models import warm_up_requirements

    warm_up_requirements()


WARM_UPS = {"mlflow": _mlflow_packages}


def _unsafe_to_fork() -> str | None:
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        return (
            "importing the notebook's modules started threads ("
            + ", ".join(sorted(threads)[:5])
            + "), which a forked kernel would not have"
        )
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
        return "importing the notebook's modules initialised CUDA, which can't be forked"
    return None


def _serve(
    listener: socket.socket, later: list[str], here: str, forked: list[int], began: float
) -> dict[str, Any] | None:
    """Answer requests, importing `later` while none waits; in a forked child, return its
    request (the zygote itself returns None once its stdin ends)."""
    stdin = sys.stdin.fileno()
    refusal = _unsafe_to_fork()
    checked = False
    while True:
        _reap(forked)
        idle = 0.0 if later and refusal is None else REAP_SECONDS
        ready, _, _ = select.select([listener, stdin], [], [], idle)
        if stdin in ready and not os.read(stdin, 4096):
            return None
        if not ready and later and refusal is None:  # idle: import what stages will want
            _import(later.pop(0), here)
            refusal = _unsafe_to_fork()
            continue
        if listener not in ready:
            continue
        connection, _ = listener.accept()
        with connection:
            try:
                request, log = _receive(connection)
            except (OSError, ValueError):
                continue
            if not checked and refusal is None:
                checked, refusal = True, _changed_since(began)
            if refusal is not None:
                os.close(log)
                _reply(connection, {"refused": refusal})
                continue
            if _gave_up(connection):  # it timed out while we imported: it started fresh
                os.close(log)
                continue
            started, parent_end = os.pipe()
            sys.stdout.flush()  # or the child would write our buffered lines to its log
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the kernel-to-be
                os.close(started)
                os.setsid()
                os.close(parent_end)  # it now leads its group: the runner may kill it
                listener.close()
                connection.close()
                request["log"] = log
                return request
            os.close(parent_end)
            os.close(log)
            os.read(started, 1)  # returns when the child closed its end (or died)
            os.close(started)
            forked.append(pid)
            if not _reply(connection, {"pid": pid}):  # it gave up meanwhile: no one's kernel
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


def _changed_since(began: float) -> str | None:
    """Why the modules imported here are no longer what a fresh kernel would import: a
    module's file changed (edited, upgraded, removed) since we began. Checked at the first
    request; it matters for a zygote started ahead of its run (run/spare.py), which may
    have waited long enough for its user to edit her package or `pip install -U`."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        try:
            changed = os.stat(path).st_mtime > began
        except OSError:
            changed = True
        if changed:
            return f"`{name}` changed on disk since it was imported ahead ({path})"
    return None


def _receive(connection: socket.socket) -> tuple[dict[str, Any], int]:
    data = b""
    fds: list[int] = []
    while not data.endswith(b"\n"):
        chunk, received, _, _ = socket.recv_fds(connection, 1 << 20, 4)
        if not chunk:
            raise ValueError("the request ended early")
        data += chunk
        fds += received
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request carries exactly one file descriptor: the kernel's log")
    try:
        return json.loads(data), fds[0]
    except ValueError:
        os.close(fds[0])
        raise


def _reply(connection: socket.socket, reply: dict[str, Any]) -> bool:
    """Whether the reply reached a runner still waiting for it."""
    if _gave_up(connection):
        return False
    try:
        connection.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:
        return False
    return True


def _gave_up(connection: socket.socket) -> bool:
    """The runner closed its end: it stopped waiting (a timeout, or its end) and starts a
    fresh kernel, or none. The request is all it sends, so anything readable is its end."""
    try:
        ready, _, _ = select.select([connection], [], [], 0)
        return bool(ready) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _reap(forked: list[int]) -> None:
    """Reap the kernels we forked that ended (only ours: a subprocess started by an import
    must be waited for by whoever started it)."""
    for pid in list(forked):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            forked.remove(pid)


def _become_kernel(request: dict[str, Any]) -> None:
    """In the forked child: take the stage's folder, environment and log, then be the
    ipykernel that ``python -m ipykernel_launcher -f CONNECTION_FILE`` would have started."""
    log = request["log"]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # not the zygote's stdin: the runner's end of it is the zygote's
    os.close(devnull)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    cwd = request["cwd"]
    os.chdir(cwd)
    if sys.path and os.path.realpath(sys.path[0] or ".") != os.path.realpath(cwd):
        sys.path[0] = cwd  # as `python -m` started in the stage's folder would have it
    os.environ.clear()
    os.environ.update(request["env"])
    # As jupyter_client tells a kernel it starts: ipykernel exits when its parent (here
    # the zygote) is gone.
    os.environ["JPY_PARENT_PID"] = str(os.getppid())
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    _reseed()
    importlib.invalidate_caches()  # files a stage wrote since the zygote looked: modules too
    import ipykernel_launcher  # type: ignore[import-untyped]  # what a fresh kernel runs
    from ipykernel import kernelapp

    sys.argv = [str(Path(ipykernel_launcher.__file__)), "-f", request["connection_file"]]
    kernelapp.launch_new_instance()
    exit_without_teardown()  # a forked kernel's exit: 0.4 s less per stage


def _reseed() -> None:
    """Generators seeded at import would otherwise draw the same numbers in every stage.

    Python's `random` reseeds itself in a forked child; NumPy's and PyTorch's global
    generators don't. Seeded from fresh entropy, as in a fresh kernel."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        with contextlib.suppress(Exception):
            numpy.random.seed()
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            torch.seed()


if __name__ == "__main__":
    main(sys.argv[1], *([m for m in names.split(",") if m] for names in sys.argv[2:4]))
