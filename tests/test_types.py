"""Static types: mypy over the package, with the settings in pyproject.toml ([tool.mypy]), so
the README's single test command (what `.ci/run` runs) checks types as it checks the front
end's TypeScript (tests/test_frontend.py).

Expected to pass once every branch of issue 12 is merged: until then it fails on the
remaining errors in the run, tracking, server, CLI and pytest-plugin modules, which are being
rewritten on other branches. It is deliberately neither skipped nor marked xfail, so that
CI shows those errors until they are fixed.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_package_type_checks(tmp_path: Path):
    # A fresh cache outside the repository: nothing is left in the working tree.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
