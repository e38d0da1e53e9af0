"""The JupyterLab extension's own checks (Jest, TypeScript strict, eslint, prettier), so the
README's single test command covers the front end too."""

import os
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def npm() -> str:
    found = shutil.which("npm")
    if found is None or not (ROOT / "node_modules").is_dir():
        message = "needs npm and node_modules: `pip install -e .` builds the extension"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.mark.parametrize("script", ["test", "typecheck", "lint:check"])
def test_frontend(npm, script):
    result = subprocess.run(
        [npm, "run", script, "--", *(["--ci"] if script == "test" else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
