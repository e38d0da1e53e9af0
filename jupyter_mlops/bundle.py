"""The bundle: what conversion writes, and reading it back for a run.

A bundle is meant to be committed and reviewed, so it is plain (one papermill notebook per
stage, YAML beside them) and deterministic: converting the same notebook in the same
environment twice gives byte-identical files. Each stage notebook is laid out as

1. a header (markdown) saying where it comes from and how to run it alone;
2. a ``parameters`` cell (papermill's), with the pipeline parameters the stage reads and
   ``mlops_artifacts``, where stages hand values to each other;
3. the notebook's ``setup`` cells, which every stage runs first (so a kernel can run them
   before its inputs exist);
4. the functions and classes of earlier stages that this stage uses, defined again as in the
   notebook (so their global names are looked up here, when they run, as in the notebook);
   the rare inputs those definitions need (a decorator's argument) are loaded before them;
5. a generated cell loading the stage's inputs from the artifact store (values of classes
   defined in the notebook find their class among the definitions above);
6. the configuring statements of earlier stages, replayed (see :mod:`jupyter_mlops.state`);
7. the stage's own cells, unchanged;
8. a generated cell saving the outputs later stages read, and logging metrics and models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4.nbjson import writes as notebook_json

from ._version import __version__
from .analysis import Analysis, Stage, mapping
from .errors import BadInput, NotebookError
from .files import atomic_write
from .notebooks import SourceNotebook
from .parameters import (
    Parameter,
    check_value,
    coerce,
    load_yaml,
    python_literal,
    values_yaml_text,
)
from .promote import PromotionChecks
from .requirements import pinned_requirements
from .state import RANDOM_STATE, value_name
from .tags import is_pipeline_tag

SCHEMA_VERSION = 1
ARTIFACTS_PARAMETER = "mlops_artifacts"
DEFAULT_ARTIFACTS = "mlops-artifacts"
DEFAULT_KERNEL = "python3"  # for notebooks that name no kernel
BUNDLE_FILES = ("pipeline.yaml", "params.yaml", "requirements.txt")


@dataclass
class Bundle:
    """A converted pipeline: the spec in pipeline.yaml plus where its files are."""

    root: Path
    name: str
    experiment: str
    model_name: str
    kernel: str | None
    source_notebook: str | None  # relative to root
    source_sha256: str | None
    workdir: str  # where stage kernels start, relative to root
    parameters: list[Parameter]
    stages: list[Stage]  # in execution order
    generator: str = f"jupyter-mlops {__version__}"
    notebooks: dict[str, str] = field(default_factory=dict)  # stage -> path relative to root
    # The promotion gate's declared checks (`promote.PromotionChecks.to_dict()`), or {}.
    promotion: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise BadInput(f"no stage `{name}`; the stages are: {', '.join(self.stage_names)}")

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def position(self, stage: str) -> int:
        """The stage's place in the pipeline, from 1 (its notebook's number, its run's name)."""
        return self.stage_names.index(stage) + 1

    def notebook_path(self, stage: str) -> Path:
        return self.root / self.notebooks[stage]

    @property
    def source_path(self) -> Path | None:
        return (self.root / self.source_notebook).resolve() if self.source_notebook else None

    @property
    def workdir_path(self) -> Path:
        return (self.root / self.workdir).resolve()

    def downstream(self, names: set[str]) -> set[str]:
        """The stages in `names` and every stage that depends on one of them."""
        found = set(names)
        for stage in self.stages:
            if set(stage.upstream) & found:
                found.add(stage.name)
        return found


def stage_notebook_name(position: int, stage: str) -> str:
    return f"stages/{position:02d}_{stage}.ipynb"


def write_bundle(source: SourceNotebook, analysis: Analysis, out: str | Path) -> Bundle:
    """Write the bundle for an analysed notebook into `out` and return it.

    Files are written atomically; stage notebooks from an earlier conversion that no longer
    correspond to a stage are removed, so the folder always matches pipeline.yaml. Only what
    an earlier conversion wrote is replaced or removed: a file of the user's in the way (or
    the notebook itself) stops the conversion before anything is written.
    """
    raise_for_errors(analysis)
    root = Path(out)
    bundle = bundle_for(source, analysis, root)
    targets = [root / name for name in BUNDLE_FILES]
    targets += [bundle.notebook_path(stage.name) for stage in bundle.stages]
    _refuse_to_overwrite(root, targets, source.path)
    # The spec first: a value it can't hold stops the conversion before any file is written.
    spec = pipelineyaml_text(bundle, analysis)
    defaults = values_yaml_text({p.name: p.default for p in bundle.parameters})
    try:
        for stage in bundle.stages:
            text = notebook_json(stage_notebook(source, analysis, bundle, stage)) + "\n"
            atomic_write(bundle.notebook_path(stage.name), text)
        wanted = {bundle.notebook_path(s).name for s in bundle.notebooks}
        for old in (root / "stages").glob("*.ipynb"):
            if old.name not in wanted and _generated_notebook(old):
                old.unlink()
        atomic_write(root / "pipeline.yaml", spec)
        atomic_write(root / "params.yaml", defaults)
        requirements = pinned_requirements(analysis.imports)
        atomic_write(root / "requirements.txt", "\n".join(requirements) + "\n")
    except OSError as error:  # no permission, disk full: a clear error, not a traceback
        raise BadInput(f"can't write the bundle into {root}: {error.strerror or error}") from None
    return bundle


def _refuse_to_overwrite(root: Path, targets: list[Path], source: Path | None) -> None:
    if root.exists() and not root.is_dir():
        raise BadInput(f"{root} is a file; the bundle needs a folder")
    for target in targets:
        if source is not None and target.resolve() == source.resolve():
            raise BadInput(
                f"the bundle would overwrite the notebook itself ({target}); "
                "convert into another folder"
            )
        mine = _generated_notebook if target.suffix == ".ipynb" else _generated_spec_beside
        if target.exists() and not mine(target):
            raise BadInput(
                f"{target} exists and is not from an earlier conversion; convert into a new "
                "folder or a bundle's folder (nothing was written)"
            )


def _generated_notebook(path: Path) -> bool:
    """Whether a notebook is a stage notebook jupyter-mlops wrote (it names its stage)."""
    try:
        metadata = json.loads(path.read_bytes()).get("metadata")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(mapping(mapping(metadata).get("jupyter_mlops")).get("stage"), str)


def _generated_spec_beside(path: Path) -> bool:
    """Whether the folder's pipeline.yaml is one jupyter-mlops wrote, and so is `path`."""
    try:
        with open(path.parent / "pipeline.yaml", encoding="utf-8") as spec:
            first = spec.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return first.startswith("# Pipeline `") and "generated by jupyter-mlops" in first


def raise_for_errors(analysis: Analysis) -> None:
    """Stop with the first tagging error: a notebook with errors is never converted or run."""
    if analysis.errors:
        first = analysis.errors[0]
        where = f" (cell {first.cell})" if first.cell is not None else ""
        raise NotebookError(
            f"the notebook has {len(analysis.errors)} error(s); the first{where}: "
            f"{first.message}. Run `jupyter-mlops check` for the full report."
        )


def bundle_for(source: SourceNotebook, analysis: Analysis, root: Path) -> Bundle:
    """The Bundle a conversion into `root` describes, before anything is written."""
    relative_source = workdir = None
    if source.path is not None:
        relative_source = _relative(source.path, root)
        workdir = _relative(source.path.parent, root)
    return Bundle(
        root=root,
        name=analysis.settings.pipeline,
        experiment=analysis.settings.experiment,
        model_name=analysis.settings.model_name,
        kernel=analysis.settings.kernel or _kernel_name(source.nb),
        source_notebook=relative_source,
        source_sha256=source.sha256,
        workdir=workdir or ".",
        parameters=analysis.parameters,
        stages=analysis.stages,
        notebooks={
            s.name: stage_notebook_name(i + 1, s.name) for i, s in enumerate(analysis.stages)
        },
        promotion=analysis.settings.promotion,
    )


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def _kernel_name(nb: Any) -> str | None:
    name = mapping(nb.get("metadata", {}).get("kernelspec")).get("name")
    return name if isinstance(name, str) and name.strip() else None


# --- stage notebooks -----------------------------------------------------------------------


def stage_notebook(source: SourceNotebook, analysis: Analysis, bundle: Bundle, stage: Stage) -> Any:
    early = {name: stage.inputs[name] for name in stage.early_inputs}
    later = {n: p for n, p in stage.inputs.items() if n not in early}
    cells = [
        _header(bundle, stage),
        _parameters_cell(bundle, stage),
        *(_copy(source.nb.cells[i], i, "setup") for i in analysis.setup_cells),
        *([_load_inputs_cell(early, "load-early-inputs")] if early else []),
        *([_definitions_cell(analysis, stage)] if stage.definitions else []),
        _load_inputs_cell(later),
        *([_replay_cell(stage)] if stage.replay else []),
        *(_copy(source.nb.cells[i], i, "stage") for i in stage.cells),
        _save_outputs_cell(stage),
    ]
    metadata = {
        key: source.nb.metadata[key]
        for key in ("kernelspec", "language_info")
        if isinstance(source.nb.metadata.get(key), dict)
    }
    # Papermill needs a kernel name and a language, which old notebooks (nbformat 3) and
    # notebooks written by other tools may lack; the notebook passed the check as Python.
    kernel = bundle.kernel or DEFAULT_KERNEL
    spec = dict(metadata.get("kernelspec") or {})
    spec.update({"name": kernel, "language": "python"})
    spec.setdefault("display_name", kernel)
    metadata["kernelspec"] = spec
    metadata["jupyter_mlops"] = {"pipeline": bundle.name, "stage": stage.name}
    notebook = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}
    return nbformat.from_dict(notebook)


def reference_notebook(source: SourceNotebook, analysis: Analysis, store: str) -> Any:
    """The notebook as it is, every code cell in order (skipped ones too: the notebook runs
    them), with a generated cell after each stage's last cell writing what the stage hands on
    (and the metrics it logs) into `store`, by the code the stages use: what `verify`
    compares the pipeline with."""
    ends = {stage.cells[-1]: stage for stage in analysis.stages}
    cells = []
    for index, cell in enumerate(source.nb.cells):
        if cell.get("cell_type") != "code":
            continue
        tags = [t for t in cell.get("metadata", {}).get("tags") or [] if isinstance(t, str)]
        metadata: dict[str, Any] = {"jupyter_mlops": {"source_cell": index}}
        if tags:
            metadata["tags"] = tags
        cells.append(_cell("code", cell.get("source", ""), metadata, f"cell-{index}"))
        stage = ends.get(index)
        if stage is not None and (stage.outputs or stage.metrics):
            call = (
                "from jupyter_mlops import runtime as _mlops\n"
                f"_mlops.save_outputs({store!r}, {stage.name!r}, globals(), "
                f"outputs={stage.outputs!r}, metrics={stage.metrics!r})"
            )
            cells.append(_generated(f"checkpoint-{stage.name}", call))
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": DEFAULT_KERNEL, "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return nbformat.from_dict(notebook)


def _cell(cell_type: str, source: str, metadata: dict[str, Any], cell_id: str) -> dict[str, Any]:
    """A cell as nbformat 4.5 lays it out. Built directly: nbformat's constructors validate
    every cell against the JSON schema, which dominated converting large notebooks."""
    cell: dict[str, Any] = {
        "cell_type": cell_type,
        "id": cell_id,
        "metadata": metadata,
        "source": source,
    }
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _generated(
    kind: str, source: str, cell_type: str = "code", tags: list[str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"jupyter_mlops": {"generated": kind}}
    if tags:
        metadata["tags"] = tags
    return _cell(cell_type, source, metadata, f"mlops-{kind}")


def _header(bundle: Bundle, stage: Stage) -> Any:
    origin = f"`{bundle.source_notebook}`" if bundle.source_notebook else "a notebook"
    cells = ", ".join(str(c) for c in stage.cells)
    inputs = ", ".join(f"`{value_name(v)}` (from `{p}`)" for v, p in stage.inputs.items())
    outputs = ", ".join(f"`{value_name(v)}`" for v in stage.outputs) or "none"
    facts = [f"- Inputs: {inputs or 'none'}", f"- Outputs: {outputs}"]
    if stage.definitions:
        defined = ", ".join(f"`{n}` (cell {c})" for n, c in stage.definitions.items())
        facts.append(f"- Defined again from the notebook: {defined}")
    text = (
        f"# Stage `{stage.name}` of pipeline `{bundle.name}`\n\n"
        f"Generated by jupyter-mlops from {origin} (cells {cells}); "
        "re-run `jupyter-mlops convert` instead of editing it.\n\n" + "\n".join(facts) + "\n\n"
        "Run it alone once its upstream stages have written their outputs:\n\n"
        f"    papermill {bundle.notebooks[stage.name]} out.ipynb "
        f"-p {ARTIFACTS_PARAMETER} ARTIFACT_DIR\n"
    )
    return _generated("header", text, cell_type="markdown")


def _parameters_cell(bundle: Bundle, stage: Stage) -> Any:
    lines = ["# Parameters: papermill injects the values of a run after this cell."]
    for parameter in bundle.parameters:
        if parameter.name in stage.parameters:
            lines.append(_parameter_line(parameter))
    lines.append(f"{ARTIFACTS_PARAMETER} = {DEFAULT_ARTIFACTS!r}  # where stages hand over values")
    return _generated("parameters", "\n".join(lines), tags=["parameters"])


def _parameter_line(parameter: Parameter) -> str:
    """`name: type = default  # help`, the form papermill's --help-notebook understands.

    Papermill's parser doesn't know `int | None`, so optional types go in the comment.
    """
    kind = parameter.type if parameter.type != "any" else None
    notes = [parameter.help] if parameter.help else []
    left = parameter.name
    if kind and parameter.optional:
        notes.insert(0, f"({kind} | None)")
    elif kind:
        left = f"{parameter.name}: {kind}"
    comment = f"  # {' '.join(notes)}" if notes else ""
    return f"{left} = {python_literal(parameter.default)}{comment}"


def _load_inputs_cell(inputs: dict[str, str], kind: str = "load-inputs") -> Any:
    lines = [
        "# Generated: load the values this stage reads from upstream stages.",
        "from jupyter_mlops import runtime as _mlops",
    ]
    call = f"_mlops.load_inputs({ARTIFACTS_PARAMETER}, {inputs!r})"
    names = [name for name in inputs if name != RANDOM_STATE]  # that one is set, not bound
    if RANDOM_STATE in inputs:
        lines.append("# (and the random generators' state, to go on where the notebook would)")
    if len(names) == 1:
        call = f"({names[0]},) = {call}"
    elif names:
        call = f"{', '.join(names)} = {call}"
    # Called even without inputs: the runner's pre-started kernels wait for their turn in it.
    lines += ["", call]
    return _generated(kind, "\n".join(lines))


def _definitions_cell(analysis: Analysis, stage: Stage) -> Any:
    """The notebook's own functions and classes this stage uses, as the notebook wrote them."""
    parts = ["# Generated: functions and classes of earlier stages that this stage uses."]
    for name, index in stage.definitions.items():
        code = analysis.cells[index].code
        assert code is not None
        cell = analysis.cells[index]
        parts.append(f"# cell {index} (stage `{cell.stage}`)\n{code.definitions[name].source}")
    return _generated("definitions", "\n\n".join(parts))


def _replay_cell(stage: Stage) -> Any:
    text = "\n\n".join(
        [
            "# Generated: settings that earlier stages made, made again so that this stage "
            "starts\n# as it would in the notebook.",
            *stage.replay,
        ]
    )
    return _generated("replay", text)


def _save_outputs_cell(stage: Stage) -> Any:
    arguments = [f"{ARTIFACTS_PARAMETER}", repr(stage.name), "globals()"]
    if stage.outputs:
        arguments.append(f"outputs={stage.outputs!r}")
    if stage.metrics:
        arguments.append(f"metrics={stage.metrics!r}")
    if stage.models:
        arguments.append(f"models={stage.models!r}")
    call = "_mlops.save_outputs(\n" + "".join(f"    {a},\n" for a in arguments) + ")"
    text = "# Generated: hand this stage's outputs on; log its metrics and models.\n" + call
    return _generated("save-outputs", text)


def _copy(cell: Any, index: int, role: str) -> Any:
    tags = [
        t
        for t in (cell.get("metadata", {}).get("tags") or [])
        if isinstance(t, str) and not is_pipeline_tag(t)
    ]
    metadata: dict[str, Any] = {"jupyter_mlops": {"source_cell": index, "role": role}}
    if tags:
        metadata["tags"] = tags
    return _cell("code", cell.get("source", ""), metadata, f"cell-{index}")


# --- pipeline.yaml -------------------------------------------------------------------------


def pipelineyaml_text(bundle: Bundle, analysis: Analysis) -> str:
    spec = {
        "schema_version": SCHEMA_VERSION,
        "generator": bundle.generator,
        "name": bundle.name,
        "experiment": bundle.experiment,
        "model_name": bundle.model_name,
        "kernel": bundle.kernel,
        "source": {"notebook": bundle.source_notebook, "sha256": bundle.source_sha256},
        "workdir": bundle.workdir,
        "parameters": {
            p.name: {
                "type": p.type,
                "default": p.default,
                "help": p.help,
                "optional": p.optional,
            }
            for p in bundle.parameters
        },
        "stages": [
            {
                "name": s.name,
                "notebook": bundle.notebooks[s.name],
                "cells": s.cells,
                "upstream": s.upstream,
                "after": s.after,
                "inputs": s.inputs,
                "outputs": s.outputs,
                "parameters": s.parameters,
                "metrics": s.metrics,
                "models": s.models,
                "definitions": s.definitions,
            }
            for s in bundle.stages
        ],
        "edges": [
            {"source": e.source, "target": e.target, "variables": list(e.variables)}
            for e in analysis.edges
        ],
    }
    if bundle.promotion:  # only when declared: older bundles' files stay as they were
        spec["promotion"] = bundle.promotion
    header = (
        f"# Pipeline `{bundle.name}`, generated by {bundle.generator}"
        + (f" from {bundle.source_notebook}" if bundle.source_notebook else "")
        + ".\n# Re-run `jupyter-mlops convert` rather than editing this file.\n"
    )
    return header + values_yaml_text(spec)  # defaults are read back as they were written


def read_bundle(path: str | Path) -> Bundle:
    """Read pipeline.yaml (or the folder holding it) back into a Bundle, checking it."""
    path = Path(path)
    spec_path = path / "pipeline.yaml" if path.is_dir() else path
    try:
        spec = load_yaml(spec_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{spec_path}: no such file") from None
    except BadInput as error:
        raise BadInput(f"{spec_path} is {error}") from None
    if not isinstance(spec, dict) or spec.get("schema_version") != SCHEMA_VERSION:
        raise BadInput(
            f"{spec_path} is not a jupyter-mlops pipeline (schema_version {SCHEMA_VERSION}); "
            "convert the notebook again with this version"
        )
    try:
        bundle = _bundle_from_spec(spec, spec_path.parent)
    except (KeyError, TypeError, ValueError) as error:
        raise BadInput(f"{spec_path} is malformed: {error!r}") from None
    except BadInput as error:
        raise BadInput(f"{spec_path}: {error}; convert the notebook again") from None
    for parameter in bundle.parameters:  # a hand-edited spec, or one from an older version
        try:
            check_value(parameter.default, parameter.name)
            if parameter.default is not None or not parameter.optional:
                coerce(parameter.type, parameter.default, parameter.name)
        except BadInput as error:
            raise BadInput(
                f"{spec_path}: the default of {error}; convert the notebook again"
            ) from None
    for stage in bundle.stages:
        if not bundle.notebook_path(stage.name).is_file():
            missing = bundle.notebooks[stage.name]
            raise BadInput(f"{spec_path}: the stage notebook {missing} is missing")
    return bundle


def _bundle_from_spec(spec: dict[str, Any], root: Path) -> Bundle:
    stages = []
    notebooks = {}
    for entry in spec["stages"]:
        stage = Stage(
            name=entry["name"],
            cells=list(entry.get("cells", [])),
            inputs=dict(entry.get("inputs") or {}),
            outputs=list(entry.get("outputs") or []),
            parameters=list(entry.get("parameters") or []),
            after=list(entry.get("after") or []),
            upstream=list(entry.get("upstream") or []),
            metrics=list(entry.get("metrics") or []),
            models=dict(entry.get("models") or {}),
            definitions=dict(entry.get("definitions") or {}),
        )
        stages.append(stage)
        notebooks[stage.name] = entry["notebook"]
    parameters = [
        Parameter(
            name=name,
            type=entry["type"],
            default=entry["default"],
            help=entry.get("help", ""),
            optional=bool(entry.get("optional", False)),
        )
        for name, entry in (spec.get("parameters") or {}).items()
    ]
    source = spec.get("source") or {}
    return Bundle(
        root=root,
        name=spec["name"],
        experiment=spec.get("experiment") or spec["name"],
        model_name=spec.get("model_name") or spec["name"],
        kernel=spec.get("kernel"),
        source_notebook=source.get("notebook"),
        source_sha256=source.get("sha256"),
        workdir=spec.get("workdir") or ".",
        parameters=parameters,
        stages=stages,
        generator=spec.get("generator", ""),
        notebooks=notebooks,
        promotion=declared_checks(spec).to_dict(),
    )


def declared_checks(spec: dict[str, Any]) -> PromotionChecks:
    """The promotion checks a pipeline.yaml's spec declares (`promotion:`); BadInput if bad."""
    return PromotionChecks.from_dict(spec.get("promotion"), "promotion")
