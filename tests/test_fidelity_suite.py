"""The fidelity suite: public notebooks nobody on this team wrote, split into stages and proven
by `verify` to hand on what the notebook computes.

`tests/fidelity/SOURCES.yaml` lists them with their source and licence. Notebooks of kind
`sections` carry no tags: each section (a markdown heading) becomes a stage here, the way a
new user would first try; those of kind `tagged` carry their own (Kale's) tags and run as
their authors tagged them; `refused` ones carry tags that contradict themselves, which
`check` must say before anything runs. Each is verified once (the slowest check of the
suite), and the table of results is written to test-artifacts/fidelity.md for
docs/FIDELITY.md.
"""

from __future__ import annotations

import nbformat
import pytest
import yaml
from conftest import ROOT
from sections import stage_by_sections

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.verify import verify

FIDELITY = ROOT / "tests" / "fidelity"
SOURCES = yaml.safe_load((FIDELITY / "SOURCES.yaml").read_text(encoding="utf-8"))
TABLE = ROOT / "test-artifacts" / "fidelity.md"

pytestmark = pytest.mark.slow

MOST_STAGES = 8  # beyond that a section joins the stage before: the suite must fit CI's time


@pytest.fixture(scope="module")
def table():
    rows: list[str] = []
    yield rows
    TABLE.parent.mkdir(exist_ok=True)
    header = "| notebook | kind | stages | values compared | result |\n|---|---|---|---|---|\n"
    TABLE.write_text(header + "\n".join(sorted(rows)) + "\n", encoding="utf-8")


VERIFIED = [entry for entry in SOURCES if entry["kind"] != "refused"]
REFUSED = [entry for entry in SOURCES if entry["kind"] == "refused"]


@pytest.mark.parametrize("entry", REFUSED, ids=[entry["name"] for entry in REFUSED])
def test_check_refuses_inconsistent_tags_before_anything_runs(entry):
    source = FIDELITY / "notebooks" / f"{entry['name']}.ipynb"
    analysis = analyze_notebook(nbformat.read(source, as_version=4), source)
    assert analysis.errors and {d.code for d in analysis.errors} == {"defined-later"}
    assert {d.cell for d in analysis.errors} == {3}


@pytest.mark.parametrize("entry", VERIFIED, ids=[entry["name"] for entry in VERIFIED])
def test_the_pipeline_hands_on_what_the_notebook_computes(entry, table, tmp_path):
    source = FIDELITY / "notebooks" / f"{entry['name']}.ipynb"
    nb = nbformat.read(source, as_version=4)
    if entry["kind"] == "sections":
        nb = stage_by_sections(nb, MOST_STAGES)
    # Beside the original: the notebook's own relative paths to its data must still work.
    staged = source.with_name(f".staged-{entry['name']}.ipynb")
    nbformat.write(nb, staged)
    try:
        report = verify(staged, tmp_path / "runs", jobs=2)
    finally:
        staged.unlink()
    unseeded = ", ".join(sorted({d.label for d in report.differences if d.unseeded}))
    result = f"identical; unseeded: {unseeded}" if unseeded else "identical"
    if not report.identical:
        result = "divergent: " + "; ".join(
            f"`{d.stage}` {d.label}: {d.detail}" for d in report.differences if not d.unseeded
        )
    cells = [entry["name"], entry["kind"], report.stages, report.values, result]
    table.append("| " + " | ".join(map(str, cells)) + " |")
    assert report.identical, result
    assert report.stages >= 2, "a notebook of one stage proves nothing about the split"
