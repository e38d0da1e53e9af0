"""MLflow stays inside `jupyter_mlops.tracking`, and importing our modules doesn't load it.

One package talks to MLflow so its fail-fast client, its tags and its run life cycle are the
only ones; and MLflow takes seconds to import, which the CLI's start and every stage kernel
would pay for.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_mlops"
TRACKING = PACKAGE / "tracking"


def imported_names(node: ast.AST) -> list[str]:
    """The modules a node imports: `import a, b`, `from a import x` (absolute only), and
    `importlib.import_module("a")` / `__import__("a")` with a literal name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        function = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if function in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def mlflow_imports(source: str) -> list[int]:
    """Lines importing mlflow or one of its submodules, at any depth."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if any(name == "mlflow" or name.startswith("mlflow.") for name in imported_names(node))
    )


def test_the_scan_finds_imports_at_any_depth() -> None:
    source = """
import os, mlflow.pyfunc
def f():
    from mlflow.entities import Metric
    class C:
        def g(self):
            import importlib
            return importlib.import_module("mlflow.sklearn"), __import__("mlflow")
TEXT = "import mlflow"  # a string, not an import
from . import mlflow_ui
from .mlflow_ui import TRACKING_URI_ENV
import mlflowish
"""
    assert mlflow_imports(source) == [2, 4, 8, 8]


def test_only_the_tracking_package_imports_mlflow() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if TRACKING not in path.parents
        for line in mlflow_imports(path.read_text())
    ]
    assert offenders == [], "MLflow imported outside jupyter_mlops/tracking/"


@pytest.mark.parametrize(
    "module",
    [
        "jupyter_mlops.runtime",
        "jupyter_mlops.cli",
        "jupyter_mlops.tracking",
        "jupyter_mlops.tracking.models",
    ],
)
def test_importing_does_not_load_mlflow(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'mlflow'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", f"importing {module} loads {result.stdout.strip()}"


def test_logging_a_model_in_a_stage_kernel_imports_no_notebook_machinery() -> None:
    """The kernel imports `tracking.models`: the package must not drag in nbformat and
    jsonschema (seconds on a busy machine) through the runner-side modules' types."""
    code = "import sys, jupyter_mlops.tracking.models; print('nbformat' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
