"""The corpus of bad and odd notebooks (tests/corpus/) through `check`, `convert`, `run` and the
server's `analyze`. Each case's behaviour is written beside it in tests/corpus/EXPECTED.yaml:
its exit code or HTTP status and the one clear message (naming the cell) it must get, never a
traceback, and the notebook's bytes untouched whatever happens.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from conftest import cli, code, notebook, write
from mlflow_helpers import client_for

from jupyter_mlops.bundle import read_bundle
from jupyter_mlops.run.runstate import RunState, read_run

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (CORPUS / "EXPECTED.yaml").read_text(encoding="utf-8")
)
CASES = sorted(EXPECTED)
RUNS = [name for name in CASES if "run" in EXPECTED[name]]


def place(name: str, folder: Path) -> Path:
    """Put a case where its entry says, inside `folder`, padded with outputs if it asks."""
    case = EXPECTED[name]
    target = folder / case.get("path", name)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = (CORPUS / name).read_bytes()
    if "outputs_mb" in case:
        raw = with_outputs(raw, case["outputs_mb"])
    target.write_bytes(raw)
    return target


def with_outputs(raw: bytes, megabytes: int) -> bytes:
    """The notebook as saved after printing and plotting a lot: `megabytes` of stream text and
    PNG images spread over its code cells. Made here so the repository doesn't carry them."""
    nb = json.loads(raw)
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    share = megabytes * 2**20 // len(cells) // 2
    text = ("x" * 99 + "\n") * (share // 100)
    image = base64.b64encode(bytes(range(256)) * (share * 3 // 4 // 256)).decode()
    for count, cell in enumerate(cells, 1):
        cell["execution_count"] = count
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": text},
            {"output_type": "display_data", "metadata": {}, "data": {"image/png": image}},
        ]
    return json.dumps(nb, indent=1).encode()


def assert_one_clear_paragraph(stderr: str, failed: bool) -> list[str]:
    """No traceback, and one `error:` paragraph exactly when the command failed."""
    assert "Traceback" not in stderr, stderr
    assert "This is a bug" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == (1 if failed else 0), stderr
    return errors


# --- check and convert: every case ----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    folder: Path
    returncode: int
    stdout: str
    stderr: str
    unchanged: bool  # the notebook's bytes after the command are those before it


def _check_and_convert(name: str, folder: Path) -> dict[str, Outcome]:
    path = place(name, folder)
    before = path.read_bytes()
    relative = str(path.relative_to(folder))
    outcomes = {}
    for command, args in (("check", [relative]), ("convert", [relative, "-o", "bundle"])):
        result = cli(command, *args, cwd=folder)
        outcomes[command] = Outcome(
            folder, result.returncode, result.stdout, result.stderr, path.read_bytes() == before
        )
    return outcomes


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Outcome]]:
    """`check` and `convert` of every case, as real processes. They run concurrently: each
    one mostly pays for its interpreter's start (1.5 s, most of it importing nbformat), and
    130 of them take two minutes even so, hence the `slow` mark on the tests using them."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        futures = {
            name: pool.submit(_check_and_convert, name, tmp_path_factory.mktemp("case"))
            for name in CASES
        }
        return {name: future.result() for name, future in futures.items()}


def test_every_corpus_file_has_its_expected_behaviour():
    files = sorted(p.name for p in CORPUS.glob("*.ipynb"))
    assert files == CASES
    assert len(files) >= 40


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_check(name: str, commands: dict[str, dict[str, Outcome]]):
    case, outcome = EXPECTED[name], commands[name]["check"]
    assert outcome.returncode == case["check"], outcome.stdout + outcome.stderr
    assert outcome.unchanged
    assert_one_clear_paragraph(outcome.stderr, failed=case["check"] == 2)
    report = outcome.stdout + outcome.stderr
    assert case.get("message", "") in report
    if case["check"] == 1:
        assert "✗ 1 error(s)" in outcome.stdout
        line = next(x for x in outcome.stdout.splitlines() if x.endswith(f"[{case['diagnostic']}]"))
        where = f"cell {case['cell']}" if "cell" in case else "notebook:"
        assert line.strip().startswith(where), line
    elif case["check"] == 2 and "cell" in case:
        assert f"cell {case['cell']}" in outcome.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_convert(name: str, commands: dict[str, dict[str, Outcome]]):
    case, outcome = EXPECTED[name], commands[name]["convert"]
    assert outcome.returncode == case["convert"], outcome.stderr
    assert outcome.unchanged
    errors = assert_one_clear_paragraph(outcome.stderr, failed=case["convert"] != 0)
    bundle_folder = outcome.folder / "bundle"
    if case["convert"]:
        assert case.get("message", "") in errors[0]
        if "cell" in case:
            assert f"cell {case['cell']}" in errors[0]
        assert not bundle_folder.exists()
        return
    bundle = read_bundle(bundle_folder)
    for stage in bundle.stages:
        stage_notebook = nbformat.read(bundle.notebook_path(stage.name), as_version=4)
        nbformat.validate(stage_notebook)
        assert stage_notebook.metadata.kernelspec.language == "python"
        assert all(not c.get("outputs") for c in stage_notebook.cells)
    if "outputs_mb" in case:  # the bundle carries none of the outputs
        assert sum(p.stat().st_size for p in bundle_folder.rglob("*") if p.is_file()) < 2**20


# --- the server's analyze endpoint: every case ----------------------------------------------


@pytest.mark.parametrize("name", CASES)
async def test_analyze(name: str, api, jp_root_dir: Path):
    case = EXPECTED[name]
    path = place(name, jp_root_dir)
    before = path.read_bytes()
    relative = path.relative_to(jp_root_dir).as_posix()
    result = await api("POST", "analyze", body={"path": relative}, expect=case["analyze"])
    assert path.read_bytes() == before
    if case["analyze"] == 400:
        assert case["message"] in result["message"]
        return
    errors = [d for d in result["diagnostics"] if d["severity"] == "error"]
    assert result["ok"] == (case["check"] == 0)
    if case["check"] == 1:
        assert [(d["code"], d["cell"]) for d in errors] == [(case["diagnostic"], case.get("cell"))]
        assert case["message"] in errors[0]["message"]


# --- runs: the cases where running shows something -------------------------------------------


def _run_params(case: dict[str, Any], folder: Path) -> list[str]:
    if "huge_parameter" not in case:
        return []
    huge = case["huge_parameter"]
    params = folder / "huge-params.yaml"
    params.write_text(yaml.safe_dump({huge["name"]: "y" * huge["chars"]}), encoding="utf-8")
    return ["-f", str(params)]


def _the_run(folder: Path) -> RunState:
    [state_file] = folder.glob("mlops-runs/*/*/run.json")
    return read_run(state_file.parent)


def _run_cases() -> Iterator[Any]:
    for name in RUNS:
        reason = EXPECTED[name].get("run_xfail")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("name", _run_cases())
def test_run(name: str, workdir: Path):
    case = EXPECTED[name]
    path = place(name, workdir)
    before = path.read_bytes()
    args = [*case.get("run_args", []), *_run_params(case, workdir)]
    result = cli("run", str(path.relative_to(workdir)), *args, cwd=workdir)
    assert path.read_bytes() == before
    assert result.returncode == case["run"], result.stderr
    errors = assert_one_clear_paragraph(result.stderr, failed=case["run"] != 0)
    state = _the_run(workdir)
    assert [s.status for s in state.stages] == case["run_stages"], result.stderr
    if case["run"]:
        assert case["run_message"] in errors[0]
        assert state.error is not None and state.error.cell == case["run_cell"]
    metrics = client_for(workdir).get_run(state.parent_run_id).data.metrics
    assert case.get("run_metrics", {}).items() <= metrics.items()


@pytest.mark.slow
def test_a_dead_kernel_is_one_message(workdir: Path):
    path = place("kernel_dies.ipynb", workdir)
    result = cli("run", path.name, cwd=workdir)
    assert result.returncode == 1
    assert "Kernel died" not in result.stderr  # our paragraph says "the kernel died"


# --- the output folder: nothing of the user's is overwritten or removed ---------------------


def _small(path: Path) -> Path:
    return write(notebook(code("x = 1", "stage:load"), code("y = x", "stage:train")), path)


def test_convert_refuses_a_folder_holding_the_users_files(tmp_path: Path):
    _small(tmp_path / "nb.ipynb")
    (tmp_path / "project").mkdir()
    mine = tmp_path / "project" / "requirements.txt"
    mine.write_text("numpy==1.26.4\n")
    result = cli("convert", "nb.ipynb", "-o", "project", cwd=tmp_path)
    assert result.returncode == 2
    [error] = assert_one_clear_paragraph(result.stderr, failed=True)
    assert "requirements.txt exists and is not from an earlier conversion" in error
    assert mine.read_text() == "numpy==1.26.4\n"
    assert not (tmp_path / "project" / "stages").exists()


def test_reconverting_keeps_the_users_notebooks_beside_the_stages(tmp_path: Path):
    _small(tmp_path / "nb.ipynb")
    assert cli("convert", "nb.ipynb", "-o", "bundle", cwd=tmp_path).returncode == 0
    mine = _small(tmp_path / "bundle" / "stages" / "exploration.ipynb")
    before = mine.read_bytes()
    nb = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    nb.cells[1].metadata.tags = ["stage:fit"]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert cli("convert", "nb.ipynb", "-o", "bundle", cwd=tmp_path).returncode == 0
    names = sorted(p.name for p in (tmp_path / "bundle" / "stages").iterdir())
    assert names == ["01_load.ipynb", "02_fit.ipynb", "exploration.ipynb"]
    assert mine.read_bytes() == before


def test_convert_never_overwrites_the_notebook_itself(tmp_path: Path):
    source = _small(tmp_path / "stages" / "01_load.ipynb")
    before = source.read_bytes()
    result = cli("convert", "stages/01_load.ipynb", "-o", ".", cwd=tmp_path)
    assert result.returncode == 2
    [error] = assert_one_clear_paragraph(result.stderr, failed=True)
    assert "would overwrite the notebook itself" in error
    assert source.read_bytes() == before


def test_the_reliability_document_lists_every_corpus_file():
    """docs/RELIABILITY.md is written from EXPECTED.yaml: every case must appear in it."""
    document = (Path(__file__).parent.parent / "docs" / "RELIABILITY.md").read_text()
    missing = [name for name in EXPECTED if f"`{name}`" not in document]
    assert not missing, f"add these corpus files to docs/RELIABILITY.md: {missing}"
