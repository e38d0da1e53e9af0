"""A run as a JUnit XML report: one test case per stage, for CI systems to display."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .files import atomic_write
from .run.runstate import CACHED, CANCELLED, FAILED, SKIPPED, RunState


def junit_xml(state: RunState) -> str:
    cases = state.stages
    suite = ET.Element(
        "testsuite",
        name=state.pipeline,
        tests=str(len(cases)),
        failures=str(sum(s.status == FAILED for s in cases)),
        skipped=str(sum(s.status in (SKIPPED, CANCELLED) for s in cases)),
        errors="0",
        time=f"{sum(s.duration or 0 for s in cases):.3f}",
        timestamp=_iso(state.created),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in [("run_id", state.id), ("mlflow_run_id", state.parent_run_id or "")]:
        ET.SubElement(properties, "property", name=name, value=value)
    for stage in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=state.pipeline,
            name=stage.name,
            time=f"{stage.duration or 0:.3f}",
        )
        notebook = str(Path(state.run_dir) / stage.notebook) if stage.notebook else ""
        if stage.status == FAILED and stage.error:
            error = stage.error
            failure = ET.SubElement(
                case, "failure", message=error.message, type=error.exception or "StageFailed"
            )
            where = f"source cell: {error.cell}" if error.cell is not None else "generated cell"
            line = f", line {error.line}" if error.line else ""
            failure.text = (
                f"{error.message}\n{where}{line}\nexecuted notebook: {notebook}\n\n"
                f"{error.traceback or ''}"
            )
        elif stage.status in (SKIPPED, CANCELLED):
            reason = "an upstream stage failed" if stage.status == SKIPPED else "the run stopped"
            ET.SubElement(case, "skipped", message=f"not run: {reason}")
        elif stage.status == CACHED:
            ET.SubElement(case, "system-out").text = f"outputs reused from {stage.cached_from}"
        elif notebook:
            ET.SubElement(case, "system-out").text = f"executed notebook: {notebook}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit_xml(state: RunState, path: Path) -> None:
    atomic_write(path, junit_xml(state))


def _iso(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds")
