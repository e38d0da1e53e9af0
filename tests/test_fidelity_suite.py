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

import copy
import re

import nbformat
import pytest
import yaml
from conftest import ROOT

from jupyter_mlops.analysis import analyze_notebook
from jupyter_mlops.verify import verify

FIDELITY = ROOT / "tests" / "fidelity"
SOURCES = yaml.safe_load((FIDELITY / "SOURCES.yaml").read_text(encoding="utf-8"))
TABLE = ROOT / "test-artifacts" / "fidelity.md"

pytestmark = pytest.mark.slow

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+)$")
_UNDERLINE = re.compile(r"^\s*([-=~^*+#])\1{2,}\s*$")


def section_title(source: str) -> str | None:
    """The heading a markdown cell starts with (markdown `#`, or reST's underlined title)."""
    lines = [line for line in source.splitlines() if line.strip()]
    if not lines:
        return None
    heading = _HEADING.match(lines[0])
    if heading:
        return heading.group(1)
    if len(lines) > 1 and _UNDERLINE.match(lines[1]):
        return lines[0]
    return None


MOST_STAGES = 8  # beyond that a section joins the stage before: the suite must fit CI's time


def stage_by_sections(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Tag the first code cell of each section `stage:NAME`, as a user splitting a notebook
    section by section would; code before the first heading is the first stage. A notebook
    with fewer than three headed sections (sphinx-gallery scripts, tutorials written as
    prose) is split at every markdown cell instead: each is a section of its text."""
    for starts in (section_title, lambda source: source.strip().splitlines()[0] or "text"):
        staged = copy.deepcopy(nb)
        title: str | None = "start"  # a section has begun: its first code cell starts a stage
        count = 0
        for cell in staged.cells:
            if cell.cell_type == "markdown":
                title = (starts(cell.source) if cell.source.strip() else None) or title
                continue
            if cell.cell_type != "code" or title is None or count == MOST_STAGES:
                continue
            count += 1
            slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:30].strip("_")
            cell.metadata.setdefault("tags", []).append(f"stage:s{count:02d}_{slug}".rstrip("_"))
            title = None
        if count >= 3:
            break
    return staged


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
        nb = stage_by_sections(nb)
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
