"""Markdown as MLflow's UI renders it: tables for the model card and its Promotion section.

MLflow draws tables without cell padding and trims whitespace (Unicode spaces included), so
every cell but a row's last ends with an em space entity, which keeps columns apart.
"""

from __future__ import annotations

CELL_GAP = "&emsp;"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GitHub-flavoured table, one line per row; cells are given as markdown."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join([c + CELL_GAP for c in cells[:-1]] + cells[-1:]) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def cell(text: str) -> str:
    """Text for a table cell or inline code: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def link_text(text: str) -> str:
    """Text for a link's label: a cell's, brackets escaped."""
    return cell(text).replace("[", "\\[").replace("]", "\\]")
