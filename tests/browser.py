"""Real JupyterLab in headless Chromium, for UI tests: a server, a browser, and page helpers.

`jupyter_lab()` starts `jupyter lab` as a user would (own port, random token, temporary root,
settings, workspaces and runtime folders) and stops it with every process it started,
kernels included. `chromium()` launches the system's Chromium through Python playwright;
nothing downloads a browser (never `playwright install`). Without /usr/bin/chromium browser
tests skip, except on CI (`CI=true`), where a missing browser fails them.

Import its fixtures (`jupyter`, `browser`, `page`) into a test module::

    # ruff: noqa: F811 (pytest fixtures are imported, then named as arguments)
    from browser import browser, jupyter, page  # noqa: F401
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAB_SETTINGS = {
    # JupyterLab 4.5+ leaves cells that are off screen out of the DOM unless windowing is off.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No "get notified about Jupyter news?" toast over the page (and no network call).
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


@dataclass
class JupyterLab:
    """A running `jupyter lab`: where it is, how to get in, and its folders."""

    url: str  # http://127.0.0.1:PORT/ (the base URL, ends with /)
    token: str
    root: Path  # --ServerApp.root_dir: put notebooks here
    log: Path  # the server's stdout and stderr
    process: subprocess.Popen[bytes]

    def page_url(self, path: str = "lab") -> str:
        """A URL under the base URL that logs the browser in, e.g. `lab/tree/x.ipynb`."""
        return f"{self.url}{path}?token={self.token}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the server's REST API (`api/...`, or an extension's) with the token."""
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            content = response.read()
        return json.loads(content) if content else None

    def log_tail(self, size: int = 4000) -> str:
        return self.log.read_bytes()[-size:].decode("utf-8", errors="replace")


@contextlib.contextmanager
def jupyter_lab(
    *extra_args: str, env: dict[str, str] | None = None, root: Path | None = None
) -> Iterator[JupyterLab]:
    """Start `jupyter lab` in temporary folders; stop it and all it started afterwards.

    `extra_args` are more command-line options (`--ServerApp.x=y`); `env` more variables;
    `root` a folder of the caller's to serve (and start in) instead of a temporary one.
    `window.jupyterapp` is exposed, so tests can run commands in the page.
    """
    with tempfile.TemporaryDirectory(prefix="jupyterlab-") as temporary:
        base = Path(temporary)
        settings, workspaces, runtime, config = (
            base / name for name in ("settings", "workspaces", "runtime", "config")
        )
        if root is None:
            root = base / "root"
            root.mkdir()
        for folder in (workspaces, runtime, config):
            folder.mkdir()
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(values))
        port, token = _free_port(), secrets.token_hex(24)
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.expose_app_in_browser=True",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # containers run as root
            *extra_args,
        ]
        variables = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "JUPYTER_CONFIG_DIR": str(config),  # no ~/.jupyter settings leak into tests
            **(env or {}),
        }
        variables.pop("MLFLOW_TRACKING_URI", None)
        log = base / "server.log"
        with open(log, "wb") as stream:
            process = subprocess.Popen(
                command,
                cwd=root,
                env=variables,
                stdout=stream,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        lab = JupyterLab(f"http://127.0.0.1:{port}/", token, root, log, process)
        try:
            _wait_until_up(lab)
            yield lab
        finally:
            _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(lab: JupyterLab) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{lab.log_tail()}")
        try:
            lab.api("GET", "api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer in {START_TIMEOUT:g} s:\n{lab.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the server shut its kernels down; then anything left of its tree dies.

    Kernels and the processes they start run in sessions of their own, so the process tree
    (read from /proc before the server goes) is what finds them, not the process group.
    """
    family = _descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in family if _signal(pid, sig)]
        deadline = time.monotonic() + 5
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _signal(pid, 0)]
        if not alive:
            return
        family = alive


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Linux); [] where there is no /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _signal(pid: int, sig: int) -> bool:
    """Send `sig`; False when the process is gone (or a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
        os.kill(pid, sig)
        return True
    except (OSError, IndexError):
        return False


# --- the browser ------------------------------------------------------------------------


def require_chromium() -> None:
    """Skip (fail on CI) when the system Chromium is missing."""
    if CHROMIUM.is_file():
        return
    message = (
        f"{CHROMIUM} is missing: install the system's Chromium (apt-get install -y chromium) "
        "to run the browser tests; they never download a browser"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (playwright's sync Browser), closed afterwards."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


# --- pages ------------------------------------------------------------------------------


def open_notebook(
    page: Any, lab: JupyterLab, path: str, timeout: float = 90, workspace: str | None = None
) -> None:
    """Open `path` (relative to the root) in JupyterLab and wait for its kernel to be idle.

    `workspace` names a workspace of its own: without it, JupyterLab restores the default
    workspace, so the notebooks and panels an earlier test of the module left open return.
    """
    where = f"lab/workspaces/{workspace}/tree/{path}" if workspace else f"lab/tree/{path}"
    page.goto(lab.page_url(where))
    page.wait_for_function(
        """(path) => {
            const widget = window.jupyterapp?.shell?.currentWidget;
            const kernel = widget?.sessionContext?.session?.kernel;
            return widget?.context?.path === path && kernel?.status === 'idle';
        }""",
        arg=path,
        timeout=timeout * 1000,
    )


def run_command(page: Any, command: str, args: dict[str, Any] | None = None) -> None:
    """Execute a JupyterLab command (e.g. `notebook:run-all-cells`) and await its result."""
    page.evaluate(
        "([command, args]) => window.jupyterapp.commands.execute(command, args)",
        [command, args or {}],
    )


def keep_screenshot(
    target: Any, folder: Path, name: str, record_property: Any, min_bytes: int = 5_000
) -> Path:
    """Save `target` (a page element) as FOLDER/NAME.png, kept after the run for people to
    look at, and say where: printed (seen with -s) and as a property of the test (JUnit XML)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    target.screenshot(path=str(path))
    print(f"screenshot: {path}")
    record_property(f"screenshot-{name}", str(path))
    assert path.stat().st_size > min_bytes  # an image with content, not an empty box
    return path


def collect_page_errors(page: Any) -> list[str]:
    """Record the page's uncaught JavaScript errors from now on (playwright's `pageerror`).

    A page can look right while an exception broke a handler behind it; tests assert the
    returned list (filled as errors happen) is still empty at their end. Call it before
    the page loads anything.
    """
    errors: list[str] = []
    page.on(
        "pageerror", lambda error: errors.append(error.stack or f"{error.name}: {error.message}")
    )
    return errors


def run_all_cells(page: Any, timeout: float = 120) -> None:
    """Run every cell of the current notebook and wait until all have run."""
    run_command(page, "notebook:run-all-cells")
    page.wait_for_function(
        """() => {
            const widget = window.jupyterapp.shell.currentWidget;
            const kernel = widget.sessionContext.session.kernel;
            const cells = widget.content.widgets.filter(
                c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
            return kernel.status === 'idle' && cells.every(c => c.model.executionCount !== null);
        }""",
        timeout=timeout * 1000,
    )


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jupyter() -> Iterator[JupyterLab]:
    """One JupyterLab per test module (starting one takes a few seconds)."""
    require_chromium()  # no browser, no point starting the server
    with jupyter_lab() as lab:
        yield lab


@pytest.fixture
def browser() -> Iterator[Any]:
    """Per test: playwright's loop must start after (and stop before) pytest-jupyter's
    per-test asyncio loop, or that fixture finds playwright's loop running and closes it."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page per test, 1280x900."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
