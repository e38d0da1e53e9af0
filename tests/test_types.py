"""Static types: mypy over the package, with the settings in pyproject.toml ([tool.mypy]), so
the README's single test command (what `.ci/run` runs) checks types as it checks the front
end's TypeScript (tests/test_frontend.py).

Clean since issue 12's branches were merged; never skipped nor marked xfail, so a type error
anywhere in the package fails CI with mypy's own report.
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
