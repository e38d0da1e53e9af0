"""The command line as a new user meets it: typos, `--help`, `None` for an optional
parameter, and a terminal and folder kept for her own things (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, code, notebook, write


def tiny(folder: Path) -> Path:
    return write(
        notebook(
            code("max_depth: int | None = 3  # None: no limit", "parameters"),
            code("depth = max_depth\nprint('depth', depth)", "stage:first"),
            code("answer = -1 if depth is None else depth", "stage:second", "metrics"),
        ),
        folder / "tiny.ipynb",
    )


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["run"], "Usage: jupyter-mlops run"),  # a missing argument
        (["runn", "tiny.ipynb"], "Usage: jupyter-mlops [OPTIONS] COMMAND"),  # a typo
        (["run", "tiny.ipynb", "-j", "0"], "Usage: jupyter-mlops run"),  # out of range
        (["run", "tiny.ipynb", "-p", "max_depth"], "Usage: jupyter-mlops run"),  # half a pair
    ],
)
def test_a_usage_error_is_exit_2_with_the_usage_line_never_a_bug(tmp_path, args, usage):
    tiny(tmp_path)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert usage in result.stderr
    assert "bug" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ipynb"]  # nothing written


def test_help_lists_the_scheduler_commands_apart_from_the_everyday_ones(tmp_path):
    text = cli("--help", cwd=tmp_path).stdout
    everyday, _, schedulers = text.partition("For schedulers:")
    for command in ("check", "convert", "run", "verify", "promote", "export"):
        assert f"\n  {command} " in everyday
    for command in ("begin", "stage", "end", "log"):
        assert f"\n  {command} " in schedulers and f"\n  {command} " not in everyday
    listed = everyday.partition("Commands:")[2] + schedulers
    assert "..." not in listed  # every command's line says all it has to say


def test_none_for_an_optional_parameter_and_a_quiet_terminal_and_folder(tmp_path):
    """`-p max_depth None` reaches the stage as None; MLflow's table-creation INFO lines
    don't reach the terminal nor its lock file the folder; a cached stage says what that
    means."""
    tiny(tmp_path)
    first = cli("run", "tiny.ipynb", "-p", "max_depth", "None", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "answer -1" in first.stderr + first.stdout
    assert "INFO" not in first.stderr + first.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mlflow.db",
        "mlops-runs",
        "mlruns",
        "tiny.ipynb",
    ]
    again = cli("run", "tiny.ipynb", "-p", "max_depth", "null", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    output = again.stderr + again.stdout
    assert "cached (outputs of MLflow run " in output
    assert "reused an earlier run's outputs; --no-cache runs every stage" in output
