"""Virtualenvs for tools the test environment can't hold (Apache Airflow, the kfp SDK).

Each tool gets its own virtualenv with this project installed editable beside it, so the
tool runs the code under test exactly as a user's scheduler would. Installing takes minutes,
so the virtualenv is kept in ~/.cache/jupyter-mlops-tests/<name>-venv and reused while its
requirements (the tool's and this project's dependencies) stay the same; a change rebuilds
it. When the project lives elsewhere than the checkout that built the venv (CI clones it
afresh), only the editable install is redone, without dependencies.

`SKIP_JUPYTER_BUILDER` keeps those installs from building the JupyterLab extension with
npm: an editable build ignores the hook's `skip-if-exists`, and none of these tools loads
the extension.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyter-mlops-tests"
NO_NPM = {"SKIP_JUPYTER_BUILDER": "1"}
# Pinned: a new release must not change a checked-in export or the tests' behaviour unseen.
AIRFLOW = ["apache-airflow==3.3.2", "s3fs>=2024.6"]  # s3fs: the shared store on S3
KFP = ["kfp==2.17.3"]  # the compiled YAML names the SDK version


def airflow_venv() -> Path:
    """Apache Airflow with this project and the examples' requirements (for its workers)."""
    return cached_venv("airflow", AIRFLOW, extras=("examples",))


def kfp_venv() -> Path:
    """The kfp SDK with this project: where `export kubeflow` can compile."""
    return cached_venv("kfp", KFP)


def cached_venv(name: str, requirements: list[str], extras: tuple[str, ...] = ()) -> Path:
    """A virtualenv with `requirements` and this project (with `extras`); returns its bin/."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        "python": sys.version.split()[0],
        "requirements": requirements,
        "project": project["dependencies"],
        "extras": {e: project["optional-dependencies"][e] for e in extras},
    }
    venv = CACHE / f"{name}-venv"
    bin_dir = venv / "bin"
    key = venv / "requirements.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building it
        target = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
        if not key.is_file() or json.loads(key.read_text()) != wanted:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            _pip(bin_dir, "install", *requirements, "-e", target)
            key.write_text(json.dumps(wanted, indent=1))  # written last: marks it complete
        elif _installed_from(bin_dir) != ROOT:
            _pip(bin_dir, "install", "--no-deps", "-e", target)
    return bin_dir


def _installed_from(bin_dir: Path) -> Path | None:
    """The checkout whose jupyter_mlops the venv imports."""
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import jupyter_mlops; print(jupyter_mlops.__file__)"],
        capture_output=True,
        text=True,
    )
    return Path(where.stdout.strip()).parent.parent if where.returncode == 0 else None


def _pip(bin_dir: Path, *args: str) -> None:
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "--quiet", *args],
        env={**os.environ, **NO_NPM},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed in {bin_dir.parent}:\n{done.stderr}")
