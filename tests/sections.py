"""Splitting an untagged notebook into stages, a stage per section, the way a new user would
first try: shared by the fidelity suite (tests/test_fidelity_suite.py), which proves the
split hands on what the notebook computes, and the speed benchmark
(benchmarks/notebook_suite.py), which times the same split."""

from __future__ import annotations

import copy
import re

import nbformat

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


def stage_by_sections(nb: nbformat.NotebookNode, most: int | None) -> nbformat.NotebookNode:
    """Tag the first code cell of each section `stage:NAME`, as a user splitting a notebook
    section by section would; code before the first heading is the first stage. A notebook
    with fewer than three headed sections (sphinx-gallery scripts, tutorials written as
    prose) is split at every markdown cell instead: each is a section of its text. With
    `most` stages, later sections join the stage before (the fidelity suite must fit CI's
    time); with None, every section is a stage."""
    for starts in (section_title, lambda source: source.strip().splitlines()[0] or "text"):
        staged = copy.deepcopy(nb)
        title: str | None = "start"  # a section has begun: its first code cell starts a stage
        count = 0
        for cell in staged.cells:
            if cell.cell_type == "markdown":
                title = (starts(cell.source) if cell.source.strip() else None) or title
                continue
            if cell.cell_type != "code" or title is None or count == most:
                continue
            count += 1
            slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:30].strip("_")
            cell.metadata.setdefault("tags", []).append(f"stage:s{count:02d}_{slug}".rstrip("_"))
            title = None
        if count >= 3:
            break
    return staged
