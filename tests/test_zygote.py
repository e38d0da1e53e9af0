# ruff: noqa: F811 (the private_tmp fixture is imported, then named as an argument)
"""Kernels forked from the run's zygote: as isolated as fresh ones, and nothing outlives a run.

Every stage kernel of a run is forked from one warm process (run/zygote.py) that imported
ipykernel and the notebook's modules once. These tests run real pipelines through the CLI
and look at the kernels from inside (their parent process, their modules, their globals)
and from outside (the process table), with forking on (the default), off
(``JUPYTER_MLOPS_NO_FORK``), and refused (a module that starts a thread at import).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import nbformat
import pytest
from conftest import alive, cli, code, notebook, start_cli, write
from test_faults import private_tmp, zygotes_under  # noqa: F401

from jupyter_mlops.run.runstate import read_run
from jupyter_mlops.run.timings import PARTS
from jupyter_mlops.run.zygote import NO_FORK_ENV, imported_modules

pytestmark = pytest.mark.slow

ZYGOTE = "jupyter_mlops.run.zygote"

# Each stage writes what its kernel sees into <stage>.json: who started it, and what is left
# of the other stages (none of it should be).
PROBE = """
import os as _os, sys as _sys
_parent = open(f"/proc/{_os.getppid()}/cmdline").read().replace("\\0", " ")
_seen = {
    "pid": _os.getpid(),
    "parent": _parent,
    "marked": hasattr(json, "MARKED_BY_A_STAGE"),
    "left": sorted(n for n in ("secret_a", "secret_b") if n in globals()),
    "precision": np.get_printoptions()["precision"],
    "draw": float(np.random.rand()),
    "sklearn": "sklearn" in _sys.modules,
}
open(f"{STAGE}.json", "w").write(json.dumps(_seen))
"""


# Module state changed where the analysis can't see it (it replays the settings it sees in
# later stages on purpose, as the notebook would have them): only a fresh process hides it.
HIDDEN_CHANGES = 'exec("json.MARKED_BY_A_STAGE = True; np.set_printoptions(precision=3)")'


def isolation_notebook(folder: Path) -> Path:
    """Two independent stages that each change module state and set globals, then a third
    that reads both stages' values and looks for what they changed."""
    return write(
        notebook(
            code(
                "import json\nimport numpy as np\nfrom sklearn.linear_model import Ridge", "setup"
            ),
            code(
                f"STAGE = 'a'\n{HIDDEN_CHANGES}\nsecret_a = 1\nvalue_a = 2" + PROBE,
                "stage:a",
            ),
            code(
                f"STAGE = 'b'\n{HIDDEN_CHANGES}\nsecret_b = 3\nvalue_b = 4" + PROBE,
                "stage:b",
            ),
            code("STAGE = 'c'\ntotal = value_a + value_b" + PROBE, "stage:c"),
            code("total_metric = float(total)", "metrics"),
        ),
        folder / "isolated.ipynb",
    )


def run_notebook(folder: Path, name: str, *cells, env: dict | None = None) -> Path:
    """Write a notebook of `cells`, run it with the CLI (it must succeed): its run folder."""
    write(notebook(*cells), folder / f"{name}.ipynb")
    result = cli("run", f"{name}.ipynb", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    return next((folder / "mlops-runs" / name).iterdir())


def seen(folder: Path, stage: str) -> dict:
    return json.loads((folder / f"{stage}.json").read_text())


def test_forked_stages_see_no_other_stage_and_report_their_timings(workdir, private_tmp):
    isolation_notebook(workdir)
    env = {"TMPDIR": str(private_tmp)}
    result = cli("run", "isolated.ipynb", "--timings", "--jobs", "2", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    stages = {name: seen(workdir, name) for name in "abc"}
    for name, kernel in stages.items():
        assert ZYGOTE in kernel["parent"], f"stage {name} was not forked: {kernel['parent']}"
        assert kernel["sklearn"]  # imported by the setup cell (ahead, by the zygote)
    # Each stage marked `json` and set its own globals: no other stage sees any of it.
    assert stages["a"]["marked"] and stages["b"]["marked"] and not stages["c"]["marked"]
    assert stages["a"]["left"] == ["secret_a"] and stages["b"]["left"] == ["secret_b"]
    assert stages["c"]["left"] == []
    assert stages["a"]["precision"] == 3 and stages["c"]["precision"] == 8
    assert stages["b"]["precision"] == 3
    # NumPy's global generator is reseeded in each fork, as in a fresh kernel.
    assert len({kernel["draw"] for kernel in stages.values()}) == 3
    assert len({kernel["pid"] for kernel in stages.values()}) == 3
    # The breakdown, printed and recorded.
    assert "timings (s):" in result.stderr
    header = next(line for line in result.stderr.splitlines() if line.startswith("stage"))
    assert header.split() == ["stage", *PARTS, "total"]
    state = read_run(next((workdir / "mlops-runs" / "isolated").iterdir()))
    assert state.stage("c").metrics == {"total_metric": 6.0}
    for stage in state.stages:
        assert set(stage.timings) == set(PARTS), stage.timings
        assert stage.timings["cells"] >= 0 and stage.timings["kernel"] > 0
    assert zygotes_under(private_tmp) == []  # the run ended: so did its zygote
    assert not list(private_tmp.glob("mlops-*"))


def test_no_fork_starts_fresh_kernels_with_the_same_results(workdir, private_tmp):
    isolation_notebook(workdir)
    env = {"TMPDIR": str(private_tmp), NO_FORK_ENV: "1"}
    result = cli("run", "isolated.ipynb", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    for name in "abc":
        kernel = seen(workdir, name)
        assert ZYGOTE not in kernel["parent"]
        assert "jupyter-mlops" in kernel["parent"]  # the runner started it
    assert not seen(workdir, "c")["marked"]
    state = read_run(next((workdir / "mlops-runs" / "isolated").iterdir()))
    assert state.stage("c").metrics == {"total_metric": 6.0}


def test_a_module_that_starts_a_thread_makes_every_stage_start_fresh(
    workdir, private_tmp, tmp_path_factory
):
    """A module that starts a thread when imported can't be forked: the zygote refuses and
    each stage's kernel starts fresh, saying why in its log; the run succeeds all the same."""
    modules = tmp_path_factory.mktemp("site")  # installed, not the notebook's own module
    (modules / "threaded_helper.py").write_text(
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(600,), name='poller', daemon=True).start()\n"
        "VALUE = 21\n"
    )
    write(
        notebook(
            code("import json\nimport numpy as np\nimport threaded_helper", "setup"),
            code("STAGE = 'a'\nhalf = threaded_helper.VALUE" + PROBE, "stage:a"),
            code("STAGE = 'b'\ndouble = half * 2" + PROBE, "stage:b"),
            code("answer = float(double)", "metrics"),
        ),
        workdir / "threaded.ipynb",
    )
    env = {"TMPDIR": str(private_tmp), "PYTHONPATH": str(modules)}
    result = cli("run", "threaded.ipynb", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    run_dir = next((workdir / "mlops-runs" / "threaded").iterdir())
    state = read_run(run_dir)
    assert state.stage("b").metrics == {"answer": 42.0}
    for name in "ab":
        assert ZYGOTE not in seen(workdir, name)["parent"]
        log = (run_dir / "logs" / f"{name}.log").read_text()
        assert "a fresh kernel, not forked" in log and "started threads (poller)" in log, log
    assert zygotes_under(private_tmp) == []


def test_a_forked_kernel_shows_figures_inline(workdir):
    """The zygote imports matplotlib before any kernel exists: the inline backend must still
    be the one a stage's figures go through, as in a fresh kernel."""
    run_dir = run_notebook(
        workdir,
        "figure",
        code("import matplotlib.pyplot as plt", "setup"),
        code("xs = [1, 2, 3]", "stage:data"),
        code("plt.plot(xs, [x * x for x in xs])\nplt.show()\nn = len(xs)", "stage:plot"),
        code("points = float(n)", "metrics"),
    )
    executed = nbformat.read(run_dir / read_run(run_dir).stage("plot").notebook, as_version=4)
    outputs = [o for cell in executed.cells for o in cell.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs


def test_a_cancelled_run_leaves_no_zygote_and_no_kernel(workdir, private_tmp):
    write(
        notebook(
            code("import os, time\nimport numpy as np", "setup"),
            code(
                "open('kernel.pid', 'w').write(str(os.getpid()))\nwhile True:\n    time.sleep(0.1)",
                "stage:wait",
            ),
        ),
        workdir / "waiting.ipynb",
    )
    runner = start_cli("run", "waiting.ipynb", cwd=workdir, env={"TMPDIR": str(private_tmp)})
    deadline = time.time() + 180
    while not (workdir / "kernel.pid").is_file() or not (workdir / "kernel.pid").read_text():
        assert time.time() < deadline, "the stage did not start"
        assert runner.poll() is None, runner.communicate()
        time.sleep(0.2)
    kernel = int((workdir / "kernel.pid").read_text())
    assert zygotes_under(private_tmp)  # the run's zygote forked the kernel
    runner.send_signal(signal.SIGINT)  # Ctrl-C
    runner.communicate(timeout=60)
    assert runner.returncode != 0
    deadline = time.time() + 30
    while alive(kernel) or zygotes_under(private_tmp):
        assert time.time() < deadline, "the kernel or the zygote outlived the run"
        time.sleep(0.2)
    assert not list(private_tmp.glob("mlops-*"))


def test_the_modules_imported_ahead_are_the_notebook_imports():
    sources = [
        "import numpy as np, os.path\nfrom sklearn.ensemble import RandomForestClassifier",
        "%matplotlib inline\nimport pandas as pd\n!pip list",
        "def f():\n    import scipy\nfrom . import local\nimport tensorflow as tf",
        "this is not python",
    ]
    assert imported_modules(sources) == ["numpy", "os.path", "sklearn.ensemble", "pandas"]


def test_a_forked_kernel_ends_as_python_would(workdir):
    """A forked kernel skips the teardown of the modules it imported, and nothing else: its
    atexit handlers run, the user's objects are finalised, its non-daemon threads finish."""
    write(
        notebook(
            code("import atexit, threading, time", "setup"),
            code(
                "atexit.register(lambda: open('atexit.txt', 'w').write('ran'))\n"
                "class Goodbye:\n"
                "    def __del__(self):\n"
                "        open('finalised.txt', 'w').write('ran')\n"
                "goodbye = Goodbye()\n"
                "def late():\n"
                "    time.sleep(1)\n"
                "    open('thread.txt', 'w').write('ran')\n"
                "threading.Thread(target=late).start()\n"
                "done = 1",
                "stage:a",
            ),
            code("result = float(done)", "stage:b", "metrics"),
        ),
        workdir / "ending.ipynb",
    )
    result = cli("run", "ending.ipynb", cwd=workdir)
    assert result.returncode == 0, result.stderr
    for name in ("atexit.txt", "finalised.txt", "thread.txt"):
        assert (workdir / name).read_text() == "ran", name


def test_the_notebooks_own_package_is_imported_by_each_stage_not_ahead(workdir):
    """A package next to the notebook may read files or print when imported: each stage
    imports it itself, as a fresh kernel would, never the zygote once for all."""
    package = workdir / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\nopen('imported.txt', 'a').write(f'{os.getpid()}\\n')\n"
    )
    (package / "sub.py").write_text("def double(x):\n    return 2 * x\n")
    run_notebook(
        workdir,
        "own",
        code("from mypkg.sub import double", "setup"),
        code("a = double(1)", "stage:a"),
        code("b = double(a)", "stage:b"),
        code("result = float(b)", "metrics"),
    )
    importers = (workdir / "imported.txt").read_text().split()
    assert len(importers) == 2, importers  # stage a's kernel and stage b's, nothing else


def test_a_fork_request_given_up_on_is_not_served_later(tmp_path, monkeypatch):
    """A stage that waited too long for the zygote's imports starts a fresh kernel; when the
    zygote gets to its request afterwards, it must not fork a second kernel for it."""
    import os
    import sys

    from jupyter_mlops.run import zygote as zygote_module

    lib, work = tmp_path / "lib", tmp_path / "work"
    lib.mkdir()
    work.mkdir()
    (lib / "slow_to_import.py").write_text("import time\ntime.sleep(3)\n")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    monkeypatch.setattr(zygote_module, "READY_TIMEOUT_SECONDS", 0.5)
    warm = zygote_module.Zygote(sys.executable, str(work), ["slow_to_import"], [], env)
    try:
        log = os.open(tmp_path / "kernel.log", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(zygote_module.ForkRefused):
                warm.fork(str(tmp_path / "kernel.json"), str(work), env, log)
        finally:
            os.close(log)
        assert warm.process is not None
        pid = warm.process.pid
        # A second request, waited for: the zygote answers requests in order, so once this
        # one is served the abandoned one has been read (and must have been skipped).
        # (The runner's handle refuses every fork after one was refused: this test's second
        # request goes to the zygote all the same.)
        monkeypatch.setattr(zygote_module, "READY_TIMEOUT_SECONDS", 120)
        warm._refusal = None
        log = os.open(tmp_path / "kernel2.log", os.O_WRONLY | os.O_CREAT)
        try:
            second = warm.fork(str(tmp_path / "kernel2.json"), str(work), env, log)
        finally:
            os.close(log)
        log_file = Path(warm.folder) / "zygote.log"
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert [int(c) for c in children if alive(int(c))] == [second], log_file.read_text()
        assert not (tmp_path / "kernel.json").exists()
    finally:
        warm.close()


def test_a_module_edited_after_the_zygote_imported_it_starts_kernels_fresh(tmp_path):
    """A zygote started ahead of its run (run/spare.py) may wait while its user edits her
    package: the stages must then run her new code, in fresh kernels."""
    import os
    import sys

    from jupyter_mlops.run import zygote as zygote_module

    lib, work = tmp_path / "lib", tmp_path / "work"
    lib.mkdir()
    work.mkdir()
    (lib / "her_package.py").write_text("VERSION = 1\n")
    env = {**os.environ, "PYTHONPATH": str(lib)}
    warm = zygote_module.Zygote(sys.executable, str(work), ["her_package"], [], env)
    try:
        time.sleep(4)  # it has imported her package (and ipykernel's modules)
        (lib / "her_package.py").write_text("VERSION = 2\n")
        log = os.open(tmp_path / "kernel.log", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(zygote_module.ForkRefused, match="her_package"):
                warm.fork(str(tmp_path / "kernel.json"), str(work), env, log)
        finally:
            os.close(log)
    finally:
        warm.close()
