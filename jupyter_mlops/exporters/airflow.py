"""Apache Airflow export: to be written (see the exporters package docstring)."""

from __future__ import annotations

from pathlib import Path

from ..bundle import Bundle
from ..errors import BadInput
from . import ExportOptions


def export(bundle: Bundle, options: ExportOptions) -> list[Path]:
    raise BadInput("the Airflow export is not available yet")
