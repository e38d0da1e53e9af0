"""From a tagged notebook to stages, the values that flow between them, and a DAG.

Pure: takes a notebook that is already in memory, does no I/O and starts no kernel, so the
CLI, the server's `analyze` endpoint and the conversion all get the same answer fast.

How cells are assigned: a cell tagged ``stage:NAME`` (or ``setup``) sets the role of itself
and of the untagged code cells after it, until the next such tag. A ``skip`` cell and the
``parameters`` cell have their own role and do not change that context: an untagged cell
after a skip cell belongs to the stage before it, as in Kale, and as the user marked it (the
skipped cell is the one she tagged). Stages are ordered by
their first cell; a stage's code is its cells in notebook order, so one stage's cells need not
be contiguous (Kale allows that).

How values flow: walking each stage in order, a name it reads before binding it comes from
the last earlier stage that touched (bound, mutated, or mutated through an alias) it; failing
that from the parameters or the setup cells. That producer becomes an upstream of the stage,
and the name one of the producer's outputs. A function or class defined at the top level of
an earlier stage is not handed over as a value but defined again in the stage that uses it
(:attr:`Stage.definitions`), and using it reads the global names its body reads, as calling
it does in the notebook. Process-wide state is carried as :mod:`jupyter_mlops.state` says:
the random generators as the value :data:`~jupyter_mlops.state.RANDOM_STATE`, configuring
statements replayed (:attr:`Stage.replay`).
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .dataflow import (
    KERNEL_NAMES,
    CellCode,
    Definition,
    Event,
    NameEvent,
    analyze_code,
    no_cyclic_gc,
)
from .errors import BadInput
from .parameters import Parameter, ParameterProblem, parse_parameters
from .promote import PromotionChecks
from .state import GENERATOR_CALLS, RANDOM_STATE, classify, resolve, seeded
from .tags import CellTags, parse_tags, unsafe_character

Severity = Literal["error", "warning"]
Role = Literal["stage", "setup", "skip", "parameters", "unassigned", "markdown", "raw"]

SETTINGS_KEYS = ("pipeline", "experiment", "model_name", "kernel", "fit_data", "promotion")


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str  # stable identifier, e.g. "undefined-name": tests and the UI key on it
    message: str
    cell: int | None = None
    related_cell: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        """One line for people: where, what, and the code ("cell 3, line 2: ... [code]")."""
        where = f"cell {self.cell}" if self.cell is not None else "notebook"
        if self.line:
            where += f", line {self.line}"
        return f"{where}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Settings:
    """Notebook-wide settings from ``metadata.jupyter_mlops``; every one has a default."""

    pipeline: str
    experiment: str
    model_name: str
    kernel: str | None = None
    fit_data: dict[str, str] = field(default_factory=dict)
    # The promotion gate's checks (`promote.PromotionChecks.to_dict()`); {} when none declared.
    promotion: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.promotion:  # as before promotion checks existed, for older readers
            del data["promotion"]
        return data


@dataclass
class CellInfo:
    index: int
    cell_type: str
    role: Role
    stage: str | None = None
    tags: list[str] = field(default_factory=list)
    metrics: bool = False
    models: list[str] = field(default_factory=list)
    code: CellCode | None = None
    after: list[str] = field(default_factory=list)
    after_skip: int | None = None  # an untagged cell right after this skip cell joins `stage`

    def to_dict(self) -> dict[str, Any]:
        code = self.code
        return {
            "index": self.index,
            "cell_type": self.cell_type,
            "role": self.role,
            "stage": self.stage,
            "after_skip": self.after_skip,
            "tags": self.tags,
            "metrics": self.metrics,
            "models": self.models,
            "after": self.after,
            "reads": sorted(code.reads) if code else [],
            "touches": sorted(code.touched) if code else [],
        }


@dataclass
class Stage:
    name: str
    cells: list[int] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # variable -> producing stage
    outputs: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    models: dict[str, str | None] = field(default_factory=dict)  # variable -> fit data
    touched: list[str] = field(default_factory=list)
    # Functions and classes of earlier stages this stage uses: name -> the cell defining it.
    definitions: dict[str, int] = field(default_factory=dict)
    early_inputs: list[str] = field(default_factory=list)  # inputs those definitions need
    replay: list[str] = field(default_factory=list)  # earlier configuring statements

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    variables: tuple[str, ...]
    explicit: bool  # from an `after:` tag

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "variables": list(self.variables)}


@dataclass
class Analysis:
    settings: Settings
    cells: list[CellInfo]
    stages: list[Stage]  # in execution order: dependencies first, then notebook order
    edges: list[Edge]
    parameters: list[Parameter]
    setup_cells: list[int]
    diagnostics: list[Diagnostic]
    imports: list[str]
    language: str = "python"
    random_generators: list[str] = field(default_factory=list)  # the seeded global ones

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "stages": [s.to_dict() for s in self.stages],
            "edges": [e.to_dict() for e in self.edges],
            "parameters": [p.to_dict() for p in self.parameters],
            "setup_cells": self.setup_cells,
            "cells": [c.to_dict() for c in self.cells],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "imports": self.imports,
            "random_generators": self.random_generators,
            "ok": not self.errors,
        }


def default_pipeline_name(path: str | Path | None) -> str:
    """`Churn Model v2.ipynb` -> `churn-model-v2`: a name MLflow and schedulers accept."""
    stem = Path(path).stem if path else "pipeline"
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return name or "pipeline"


def analyze_notebook(nb: Any, path: str | Path | None = None) -> Analysis:
    """Analyze an nbformat v4 notebook (a NotebookNode or plain dict)."""
    with no_cyclic_gc():
        return _Analyzer(nb, path).run()


class _Analyzer:
    def __init__(self, nb: Any, path: str | Path | None) -> None:
        self.nb = nb
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.cells: list[CellInfo] = []
        self.parameters: list[Parameter] = []
        self.stages: dict[str, Stage] = {}
        self.generators: set[str] = set()  # the global random generators the notebook seeds

    def error(self, code: str, message: str, **where: Any) -> None:
        self.diagnostics.append(Diagnostic("error", code, message, **where))

    def warn(self, code: str, message: str, **where: Any) -> None:
        self.diagnostics.append(Diagnostic("warning", code, message, **where))

    def run(self) -> Analysis:
        metadata = self.nb.get("metadata", {}) or {}
        settings = self._settings(metadata)
        language = self._language(metadata)
        self._assign_roles(self.nb.get("cells", []) or [], python=language == "python")
        self._read_parameters()
        setup_defined = self._check_setup()
        self._flow(setup_defined, settings)
        self._check_after()
        order = self._execution_order()
        edges = self._edges(order)
        stages = [self.stages[name] for name in order]
        for edge in edges:  # edges come in run order of their sources
            self.stages[edge.target].upstream.append(edge.source)
        explained = {"no-cells", "invalid-tag", "conflicting-tags"}
        if not self.stages and not any(d.code in explained for d in self.diagnostics):
            self.error(
                "no-stages",
                "the notebook has no stages: tag the first cell of each step `stage:NAME` "
                "(for example `stage:load`, `stage:train`) in the cell's tags",
            )
        return Analysis(
            settings=settings,
            cells=self.cells,
            stages=stages,
            edges=edges,
            parameters=self.parameters,
            setup_cells=[c.index for c in self.cells if c.role == "setup"],
            diagnostics=sorted(
                self.diagnostics,
                key=lambda d: (d.severity != "error", -1 if d.cell is None else d.cell),
            ),
            imports=sorted(
                {m for c in self.cells if c.code and c.role in _RUNNING for m in c.code.imports}
            ),
            language=language,
            random_generators=sorted(self.generators),
        )

    # --- settings and cells --------------------------------------------------------------

    def _settings(self, metadata: dict[str, Any]) -> Settings:
        own = metadata.get("jupyter_mlops", {}) or {}
        if not isinstance(own, dict):
            self.error("bad-settings", "notebook metadata `jupyter_mlops` must be a mapping")
            own = {}
        for key in sorted(set(own) - set(SETTINGS_KEYS)):
            self.warn(
                "unknown-setting",
                f"unknown setting `jupyter_mlops.{key}` in the notebook metadata "
                f"(known: {', '.join(SETTINGS_KEYS)})",
            )
        strings = {}
        for key in ("pipeline", "experiment", "model_name", "kernel"):
            value = own.get(key)
            if value is not None and not (isinstance(value, str) and value.strip()):
                self.error("bad-settings", f"`jupyter_mlops.{key}` must be a non-empty string")
                value = None
            elif value is not None and (unsafe := unsafe_character(value)):
                self.error(
                    "bad-settings",
                    f"`jupyter_mlops.{key}` is {value!r}: remove its {unsafe}, names can't hold "
                    "line or control characters (they reach file names, YAML and shell commands)",
                )
                value = None
            strings[key] = value
        fit_data = own.get("fit_data") or {}
        if not isinstance(fit_data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fit_data.items()
        ):
            self.error(
                "bad-settings",
                "`jupyter_mlops.fit_data` must map model variables to expressions, "
                'e.g. {"model": "X_train"}',
            )
            fit_data = {}
        try:
            promotion = PromotionChecks.from_dict(own.get("promotion")).to_dict()
        except BadInput as error:
            self.error("bad-settings", str(error))
            promotion = {}
        if strings["pipeline"] and not _folder_name(strings["pipeline"]):
            self.error(
                "bad-settings",
                f"`jupyter_mlops.pipeline` is {strings['pipeline']!r}, but it names the run "
                "folder, so it must be at most 100 characters without `/`, control characters "
                "or a leading `.`",
            )
            strings["pipeline"] = None
        pipeline = strings["pipeline"] or default_pipeline_name(self.path)
        return Settings(
            pipeline=pipeline,
            experiment=strings["experiment"] or pipeline,
            model_name=strings["model_name"] or pipeline,
            kernel=strings["kernel"],
            fit_data=dict(fit_data),
            promotion=promotion,
        )

    def _language(self, metadata: dict[str, Any]) -> str:
        kernelspec = mapping(metadata.get("kernelspec"))
        info = mapping(metadata.get("language_info"))
        language = str(kernelspec.get("language") or info.get("name") or "python").lower()
        if language != "python":
            self.error(
                "not-python",
                f"the notebook's kernel runs {language} ({kernelspec.get('name', '?')}); "
                "jupyter-mlops analyses and runs Python notebooks only",
            )
        return language

    def _assign_roles(self, cells: list[Any], python: bool) -> None:
        """Each cell's role and stage. Code in another language is not analysed: read as
        Python, R's `x <- 1` would only add false errors to the one that matters."""
        if not cells:
            self.error("no-cells", "the notebook has no cells")
        context: tuple[Role, str | None] = ("unassigned", None)
        skipped: int | None = None  # the skip cell the untagged cells since then follow
        for index, cell in enumerate(cells):
            cell_type = cell.get("cell_type", "code")
            raw_tags = (cell.get("metadata") or {}).get("tags") or []
            if not isinstance(raw_tags, list):
                raw_tags = []
            if cell_type != "code":
                self.cells.append(CellInfo(index, cell_type, _non_code_role(cell_type)))
                continue
            tags = parse_tags(raw_tags)
            for problem in tags.problems:
                self.error("invalid-tag", problem.message, cell=index)
            roles = tags.roles
            if len(roles) > 1:
                self.error(
                    "conflicting-tags",
                    f"the cell has conflicting roles: {', '.join(roles)}; keep one",
                    cell=index,
                )
            role, stage = self._role(tags, context)
            # A skip cell skips itself alone: the untagged cells after it go on with the
            # stage before it (Kale's own rule, and what the user marked).
            if role in ("stage", "setup"):
                context = (role, stage)
            untagged = not (tags.roles or tags.parameters)
            skipped = index if tags.skip else skipped if untagged else None
            info = CellInfo(
                index,
                cell_type,
                role,
                stage=stage,
                tags=[t for t in raw_tags if isinstance(t, str)],
                metrics=tags.metrics,
                models=tags.models,
                after=tags.after,
                code=analyze_code(_source(cell)) if python else CellCode(),
                after_skip=skipped if untagged and role == "stage" else None,
            )
            self.cells.append(info)
            self._check_cell(info, tags)

    def _role(self, tags: CellTags, context: tuple[Role, str | None]) -> tuple[Role, str | None]:
        if tags.parameters:
            return "parameters", None
        if tags.skip:
            return "skip", None
        if tags.setup:
            return "setup", None
        if tags.stage:
            return "stage", tags.stage
        return context

    def _check_cell(self, info: CellInfo, tags: CellTags) -> None:
        code = info.code
        assert code is not None
        empty = not code.python.strip()
        if info.role == "unassigned" and not empty:
            self.warn(
                "unassigned-cell",
                "this cell comes before the first stage and has no tag, so it is not part of "
                "the pipeline; tag it `setup` (imports, helpers) or `skip` (exploration)",
                cell=info.index,
            )
        if code.syntax_error and info.role in _RUNNING:
            self.error(
                "syntax-error",
                f"syntax error: {code.syntax_error}",
                cell=info.index,
                line=code.syntax_error_line,
            )
        if info.role != "stage":
            for what, present in (
                ("after:", tags.after),
                ("metrics", tags.metrics),
                ("model:", tags.models),
            ):
                if present and info.role not in ("skip",):
                    self.error(
                        "tag-outside-stage",
                        f"`{what}` only has a meaning on a stage's cell, and this cell is "
                        f"{_describe_role(info.role)}",
                        cell=info.index,
                    )

    # --- parameters and setup ------------------------------------------------------------

    def _read_parameters(self) -> None:
        cells = [c for c in self.cells if c.role == "parameters"]
        for extra in cells[1:]:
            self.error(
                "two-parameters-cells",
                f"a second parameters cell; papermill only uses the first (cell {cells[0].index})"
                ": merge them",
                cell=extra.index,
                related_cell=cells[0].index,
            )
        if not cells or cells[0].code is None or cells[0].code.syntax_error:
            return
        try:
            self.parameters = parse_parameters(cells[0].code.python, cell=cells[0].index)
        except ParameterProblem as problem:
            self.error("bad-parameters", str(problem), cell=cells[0].index, line=problem.line)

    def _parameter_names(self) -> set[str]:
        """The parameters, and every name a parameters cell assigns: when such a cell has an
        error, its names still count as defined, so its error is the only one reported."""
        assigned = {
            name
            for cell in self.cells
            if cell.role == "parameters" and cell.code
            for name in cell.code.touched
        }
        return {p.name for p in self.parameters} | assigned

    def _check_setup(self) -> dict[str, int]:
        """Names the setup cells define (-> their cell); their own reads must be satisfied."""
        defined: dict[str, int] = {}
        parameters = self._parameter_names()
        for cell in self.cells:
            if cell.role != "setup" or cell.code is None:
                continue
            for event in cell.code.events:
                if (
                    event.kind == Event.READ
                    and event.name not in KERNEL_NAMES
                    and event.name not in defined
                    and event.name not in parameters
                ):
                    self.undefined(event.name, cell, event.line, "a setup cell")
                elif event.kind in (Event.WRITE, Event.MUTATE):
                    defined.setdefault(event.name, cell.index)
        return defined

    # --- data flow -------------------------------------------------------------------------

    def _flow(self, setup_defined: dict[str, int], settings: Settings) -> None:
        for cell in self.cells:
            if cell.role == "stage" and cell.stage:
                stage = self.stages.setdefault(cell.stage, Stage(cell.stage))
                stage.cells.append(cell.index)
        imports = {k: v for c in self.cells if c.code for k, v in c.code.imported_as.items()}
        flow = _Flow(
            analyzer=self,
            parameters=self._parameter_names(),
            setup_defined=set(setup_defined),
            modules={n for c in self.cells if c.code for n in c.code.imported},
            imports=imports,
            setup_definitions={
                name: definition
                for c in self.cells
                if c.role == "setup" and c.code
                for name, definition in c.code.definitions.items()
            },
        )
        seeding, replayable = self._process_state(imports)
        if any(self.cells[index].role == "setup" for index in seeding):  # every stage seeds
            flow.setup_defined.add(RANDOM_STATE)
            flow.seeded = True
        setup_parameters = {
            n for c in self.cells if c.role == "setup" and c.code for n in c.code.reads
        } & flow.parameters
        for stage in self.stages.values():
            walk = _StageWalk(flow, stage)
            cells = [self.cells[i] for i in stage.cells]
            first = cells[0]
            before = bisect.bisect_left(replayable, first.index, key=lambda r: r[0])
            earlier = [
                (index, statement)
                for index, statement in replayable[:before]  # in notebook order
                if self.cells[index].stage != stage.name
            ]
            stage.replay = [
                f"# cell {index} (stage `{self.cells[index].stage}`)\n{statement}"
                for index, statement in earlier
            ]
            walk.replayed([statement for _, statement in earlier], first)
            if flow.seeded:  # the generators go on where the stage before left them
                walk.read(RANDOM_STATE, first, 1)
            walk.code(cells, seeding)
            if flow.seeded:
                walk.touch(RANDOM_STATE, first)
            self._models_and_metrics(walk, cells, settings)
            stage.parameters = sorted(walk.parameters | setup_parameters)
            for name in stage.touched:
                flow.last_toucher[name] = stage.name
                if name in walk.own_definitions:
                    flow.definitions[name] = walk.own_definitions[name]
                else:
                    flow.definitions.pop(name, None)
        outputs: dict[str, set[str]] = {name: set() for name in self.stages}
        for stage in self.stages.values():
            for name, producer in stage.inputs.items():
                outputs[producer].add(name)
        for stage in self.stages.values():
            stage.outputs = sorted(outputs[stage.name])
            stage.inputs = dict(sorted(stage.inputs.items()))
            stage.definitions = dict(
                sorted(  # in notebook order: a base class before the class built on it
                    stage.definitions.items(),
                    key=lambda d: (d[1], self.cells[d[1]].code.definitions[d[0]].line),  # type: ignore[union-attr]
                )
            )

    def _process_state(self, imports: dict[str, str]) -> tuple[set[int], list[tuple[int, str]]]:
        """The cells that seed a random generator, and the configuring statements of stage
        cells that later stages replay (cell, statement), in notebook order.

        A configuring statement inside a block (a loop, an `if`) can't be replayed alone; it is
        reported when a later stage would start without it.
        """
        seeding: set[int] = set()
        replayable: list[tuple[int, str]] = []
        seen: set[tuple[int, str]] = set()
        last_stage_cell = max((c.index for c in self.cells if c.role == "stage"), default=-1)
        for cell in self.cells:
            if cell.code is None or cell.role not in ("stage", "setup"):
                continue
            for effect in cell.code.effects:
                kind = classify(effect.dotted, imports)
                if kind == "seed":
                    seeding.add(cell.index)
                    self.generators.update(seeded(effect.dotted, imports))
                elif kind != "config" or cell.role != "stage":
                    continue
                elif effect.statement is None:
                    if cell.index < last_stage_cell:
                        self.warn(
                            "state-not-carried",
                            f"`{effect.dotted}` inside a block changes settings that later "
                            "stages start without (each stage is a fresh process); move it "
                            "to a `setup` cell, or out of the block so it can be replayed",
                            cell=cell.index,
                            line=effect.line,
                        )
                elif (cell.index, effect.statement) not in seen:
                    seen.add((cell.index, effect.statement))
                    replayable.append((cell.index, effect.statement))
        return seeding, replayable

    def _models_and_metrics(
        self, walk: _StageWalk, cells: list[CellInfo], settings: Settings
    ) -> None:
        """`model:VAR` and `metrics` cells: what the stage logs once its code has run.

        The model and the data it was fit on are read at the end of the stage, so they are
        handed in from upstream when the stage itself doesn't set them.
        """
        stage = walk.stage
        fit_calls: dict[str, str] = {}
        for cell in cells:  # a later fit in the stage overrides an earlier one
            if cell.code:
                fit_calls.update(cell.code.fit_calls)
        for cell in cells:
            assert cell.code is not None
            for variable in cell.models:
                if variable not in walk.local and variable not in walk.flow.last_toucher:
                    self.error(
                        "model-undefined",
                        f"`model:{variable}`: stage `{stage.name}` never sets `{variable}`",
                        cell=cell.index,
                    )
                    continue
                walk.read(variable, cell, 1)
                fit_data = settings.fit_data.get(variable) or fit_calls.get(variable)
                if fit_data is None:
                    fit_data = self._fit_data_elsewhere(variable, stage)
                if fit_data is None:
                    self.warn(
                        "no-input-example",
                        f"no input example for model `{variable}`: it is logged without a "
                        f"signature. Fit it in this stage (`{variable}.fit(X, y)`) or name the "
                        f'data in the notebook metadata: jupyter_mlops.fit_data = {{"{variable}": '
                        '"X_train"}',
                        cell=cell.index,
                    )
                else:
                    for name in _names_in(fit_data):
                        walk.read(name, cell, 1, lenient=True)
                stage.models[variable] = fit_data
            if cell.metrics:
                known = set(stage.metrics)
                for name in [*cell.code.top_level_assigned, *cell.code.printed]:
                    if name not in known:
                        known.add(name)
                        stage.metrics.append(name)

    def _fit_data_elsewhere(self, variable: str, stage: Stage) -> str | None:
        return self._last_fits.get(variable)

    # Indexes over all cells, built once when first needed: looking through every cell for
    # each diagnostic or model made analysis quadratic in the notebook's size.

    @cached_property
    def _last_fits(self) -> dict[str, str]:
        """Model variable -> the data of its last fit in any stage cell."""
        fits: dict[str, str] = {}
        for cell in self.cells:
            if cell.role == "stage" and cell.code:
                fits.update(cell.code.fit_calls)
        return fits

    @cached_property
    def _touching(self) -> dict[str, list[CellInfo]]:
        """Name -> the code cells that bind or change it, in notebook order."""
        index: dict[str, list[CellInfo]] = {}
        for cell in self.cells:
            if cell.code:
                for name in cell.code.touched:
                    index.setdefault(name, []).append(cell)
        return index

    @cached_property
    def _dynamic(self) -> bool:
        """Whether a cell that runs may define names no analysis can see (`exec`, `*`)."""
        return any(c.code and c.code.dynamic for c in self.cells if c.role in _RUNNING)

    def undefined(
        self,
        name: str,
        cell: CellInfo,
        line: int,
        where: str,
        lenient: bool = False,
        stage: Stage | None = None,
    ) -> None:
        """Explain where a name that can't be handed over is defined, if anywhere."""
        definers = [c for c in self._touching.get(name, ()) if c.index != cell.index]
        later = [c for c in definers if c.role == "stage" and c.stage != (stage and stage.name)]
        skipped = [c for c in definers if c.role in ("skip", "unassigned")]
        if later and stage is None:
            self.error(
                "setup-reads-stage",
                f"setup cells run at the start of every stage, so they can't read `{name}`, "
                f"which stage `{later[0].stage}` sets (cell {later[0].index}); move the code "
                "that uses it into a stage",
                cell=cell.index,
                related_cell=later[0].index,
                line=line,
            )
        elif later:
            self.error(
                "defined-later",
                f"{where} reads `{name}`, which is first set by stage `{later[0].stage}` "
                f"(cell {later[0].index}), a later stage; reorder the stages or add the "
                "assignment to an earlier one",
                cell=cell.index,
                related_cell=later[0].index,
                line=line,
            )
        elif skipped:
            kind = "a `skip` cell" if skipped[0].role == "skip" else "an untagged cell"
            self.error(
                "defined-outside-pipeline",
                f"{where} reads `{name}`, which is set only in {kind} (cell {skipped[0].index}) "
                "that the pipeline never runs; tag that cell `setup` or move it into a stage",
                cell=cell.index,
                related_cell=skipped[0].index,
                line=line,
            )
        elif lenient or self._dynamic:
            self.warn(
                "maybe-undefined",
                f"{where} uses `{name}`, which no stage, setup cell or parameter defines",
                cell=cell.index,
                line=line,
            )
        else:
            self.error(
                "undefined-name",
                f"{where} reads `{name}`, which no stage, setup cell or parameter defines",
                cell=cell.index,
                line=line,
            )

    # --- the DAG ---------------------------------------------------------------------------

    def _check_after(self) -> None:
        for cell in self.cells:
            if cell.role != "stage":
                continue
            stage = self.stages[cell.stage]  # type: ignore[index]
            for target in cell.after:
                if target == stage.name:
                    self.error(
                        "self-dependency",
                        f"stage `{target}` can't come after itself",
                        cell=cell.index,
                    )
                elif target not in self.stages:
                    self.error(
                        "unknown-after",
                        f"`after:{target}`: there is no stage `{target}`"
                        + _did_you_mean(target, self.stages),
                        cell=cell.index,
                    )
                elif target not in stage.after:
                    stage.after.append(target)

    def _execution_order(self) -> list[str]:
        """Dependencies first; among ready stages, notebook order. Reports cycles."""
        names = list(self.stages)
        position = {name: index for index, name in enumerate(names)}
        depends = {
            n: set(self.stages[n].inputs.values()) | set(self.stages[n].after) for n in names
        }
        dependents: dict[str, list[str]] = {n: [] for n in names}
        waiting = {n: len(depends[n]) for n in names}
        for name in names:
            for upstream in depends[name]:
                dependents[upstream].append(name)
        ready = [position[n] for n in names if not waiting[n]]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(name)
            for dependent in dependents[name]:
                waiting[dependent] -= 1
                if not waiting[dependent]:
                    heapq.heappush(ready, position[dependent])
        if len(order) < len(names):
            done = set(order)
            remaining = [n for n in names if n not in done]
            self._report_cycle(remaining, depends)
            return order + remaining
        return order

    def _report_cycle(self, remaining: list[str], depends: dict[str, set[str]]) -> None:
        path = [remaining[0]]
        left, on_path = set(remaining), {remaining[0]}
        while True:
            step = min(depends[path[-1]] & left)
            if step in on_path:
                cycle = [*path[path.index(step) :], step]
                break
            path.append(step)
            on_path.add(step)
        in_cycle = set(cycle)
        cells = [
            c.index for c in self.cells if c.role == "stage" and c.after and c.stage in in_cycle
        ]
        self.error(
            "cycle",
            "the stages depend on each other in a cycle: "
            + " -> ".join(f"`{n}`" for n in reversed(cycle))
            + "; remove one of the `after:` tags",
            cell=cells[0] if cells else self.stages[cycle[0]].cells[0],
        )

    def _edges(self, order: list[str]) -> list[Edge]:
        position = {name: index for index, name in enumerate(order)}
        edges = []
        for target in order:
            stage = self.stages[target]
            sources: dict[str, list[str]] = {}
            for variable, producer in stage.inputs.items():
                sources.setdefault(producer, []).append(variable)
            for source in sorted(set(sources) | set(stage.after), key=position.__getitem__):
                variables = tuple(sorted(sources.get(source, [])))
                edges.append(Edge(source, target, variables, explicit=not variables))
        return edges


_RUNNING = ("stage", "setup", "parameters")


@dataclass
class _Flow:
    """What the walk over the stages knows so far."""

    analyzer: _Analyzer
    parameters: set[str]
    setup_defined: set[str]
    modules: set[str]  # names bound by imports: calling into them mutates nothing we hand over
    setup_definitions: dict[str, Definition] = field(default_factory=dict)
    last_toucher: dict[str, str] = field(default_factory=dict)  # name -> stage
    # Names whose last touch was a top-level `def`/`class`: name -> (definition, its cell).
    definitions: dict[str, tuple[Definition, int]] = field(default_factory=dict)
    aliases: dict[str, _AliasGroup] = field(default_factory=dict)  # name -> those it may share with
    imports: dict[str, str] = field(default_factory=dict)  # bound name -> dotted module
    generator_objects: set[str] = field(default_factory=set)  # names of random generators
    seeded: bool = False  # a random generator has been seeded: its state is carried

    def group(self, name: str) -> _AliasGroup:
        group = self.aliases.get(name)
        if group is None:
            group = self.aliases[name] = _AliasGroup((name,))
        return group

    def detach(self, name: str) -> None:
        """`name` is bound to a new object: it no longer shares one with anything (its group
        of one is made when it is first needed)."""
        group = self.aliases.pop(name, None)
        if group is not None:
            group.discard(name)
            group.unsettled.discard(name)

    def join(self, name: str, others: tuple[str, ...]) -> None:
        merged = self.group(name)
        for other in others:
            if other in self.modules or other in KERNEL_NAMES:
                continue
            group = self.group(other)
            if group is merged:
                continue
            if len(group) > len(merged):  # the smaller moves: each name moves O(log n) times
                merged, group = group, merged
            if merged.walk is not None:
                merged.unsettled |= group.unsettled if group.walk is merged.walk else group
            merged |= group
            for member in group:
                self.aliases[member] = merged


class _AliasGroup(set[str]):
    """Names that may refer to one object. `unsettled` holds those of them that the stage
    walk `walk` may still have to read and touch when the object changes: the others it has
    read and touched since (and they can't become unread or untouched), so doing it again
    would change nothing. Without it every change went through the whole group again,
    quadratic in a chain of aliases (`b = a; b.x = 1; c = b; c.y = 2; ...`)."""

    __slots__ = ("unsettled", "walk")

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(names)
        self.walk: _StageWalk | None = None
        self.unsettled: set[str] = set()  # a subset of the group, only meant for `walk`


@dataclass
class _StageWalk:
    """One stage's code, statement by statement: what it reads before binding, what it touches."""

    flow: _Flow
    stage: Stage
    local: set[str] = field(default_factory=set)
    parameters: set[str] = field(default_factory=set)
    # Definitions usable here (made by this stage or brought in): name -> (definition, cell).
    usable: dict[str, tuple[Definition, int]] = field(default_factory=dict)
    own_definitions: dict[str, tuple[Definition, int]] = field(default_factory=dict)
    expanded: set[str] = field(default_factory=set)  # definitions whose use was walked here
    pending: deque[Definition] = field(default_factory=deque)  # uses still to walk
    touched: set[str] = field(default_factory=set)  # stage.touched, to look names up in
    early_inputs: set[str] = field(default_factory=set)  # stage.early_inputs, likewise

    def replayed(self, statements: list[str], first: CellInfo) -> None:
        """Configuring statements of earlier stages run again at this stage's start."""
        for statement in statements:
            for event in analyze_code(statement).events:
                if event.kind == Event.READ:
                    self.read(event.name, first, 1, lenient=True)

    def code(self, cells: list[CellInfo], seeding: set[int]) -> None:
        everything_touched = {n for c in cells if c.code for n in c.code.touched}
        deferred: list[tuple[str, CellInfo, int]] = []
        for cell in cells:
            if cell.code is None or cell.code.syntax_error:
                continue
            if cell.index in seeding:
                self.flow.seeded = True
                self.touch(RANDOM_STATE, cell)
            for event in cell.code.events:
                if event.kind == Event.READ:
                    self.read(event.name, cell, event.line)
                    if event.name in self.flow.generator_objects:  # used: drawn from
                        self.touch(event.name, cell)
                        self.mutate_aliases(event.name, cell, event.line)
                elif event.kind == Event.DEFERRED_READ:
                    if event.name not in everything_touched:
                        deferred.append((event.name, cell, event.line))
                elif event.kind == Event.ALIAS:
                    self.flow.join(event.name, event.others)
                elif event.kind == Event.CALL:
                    self.changed_by_call(event.name, event.arguments, cell, event.line)
                elif event.kind == Event.BOUND:
                    self.bound(event, cell)
                elif event.kind == Event.WRITE:
                    self.touch(event.name, cell)
                    self.flow.detach(event.name)
                    self.flow.generator_objects.discard(event.name)
                    if event.definition is not None:
                        self.usable[event.name] = (event.definition, cell.index)
                        self.own_definitions[event.name] = (event.definition, cell.index)
                elif event.name not in self.flow.modules:  # a mutation
                    self.touch(event.name, cell)
                    self.mutate_aliases(event.name, cell, event.line)
        for name, cell, line in deferred:
            self.read(name, cell, line, lenient=True)

    def touch(self, name: str, cell: CellInfo) -> None:
        self.local.add(name)
        self.usable.pop(name, None)
        self.own_definitions.pop(name, None)
        if name not in self.touched:
            self.touched.add(name)
            self.stage.touched.append(name)

    def bound(self, event: NameEvent, cell: CellInfo) -> None:
        """A name bound to a random generator object, or to something holding one (an
        estimator given `random_state=rng`): using it draws from the generator."""
        flow = self.flow
        if event.made_by and resolve(event.made_by, flow.imports) in GENERATOR_CALLS:
            flow.generator_objects.add(event.name)
            return
        held = [name for name in event.others if name in flow.generator_objects]
        if held:
            flow.join(event.name, tuple(held))

    def changed_by_call(
        self, function: str, arguments: tuple[tuple[str, str], ...], cell: CellInfo, line: int
    ) -> None:
        """`clean(df)` changes `df` when the notebook's `clean` changes its parameter."""
        if function in self.usable:
            definition: Definition | None = self.usable[function][0]
        elif function not in self.touched:  # the setup cells' own, if any
            definition = self.flow.setup_definitions.get(function)
        else:
            definition = None
        if definition is None or not definition.changes:
            return
        for slot, name in arguments:
            position = int(slot) if slot.isdigit() else None
            if position is not None and position < len(definition.parameters):
                slot = definition.parameters[position]
            if slot in definition.changes and name not in self.flow.modules:
                self.touch(name, cell)
                self.mutate_aliases(name, cell, line)

    def mutate_aliases(self, name: str, cell: CellInfo, line: int) -> None:
        """Changing an object changes it under every name that may refer to it."""
        group = self.flow.aliases.get(name)
        if group is None or len(group) == 1:  # a group of one: `name` alone
            return
        if group.walk is not self:
            group.walk, group.unsettled = self, set(group)
        for other in sorted(group.unsettled - {name}):
            self.read(other, cell, line, lenient=True)
            self.touch(other, cell)
            group.unsettled.discard(other)  # now read and touched here

    def read(self, name: str, cell: CellInfo, line: int, lenient: bool = False) -> None:
        flow, stage = self.flow, self.stage
        if name in KERNEL_NAMES and name not in flow.last_toucher:
            return  # a builtin, unless an earlier stage made it a variable
        if name in self.local:
            if name in self.usable:
                self.call(self.usable[name][0], cell, line)
            return
        self.local.add(name)
        if name in flow.definitions and self.as_code(flow.definitions[name][0]):
            definition, index = flow.definitions[name]
            stage.definitions[name] = index
            self.usable[name] = (definition, index)
            for needed in sorted(definition.needs):  # read when it is defined: first
                self.read(needed, cell, line, lenient=True)
                if needed in stage.inputs and needed not in self.early_inputs:
                    self.early_inputs.add(needed)
                    stage.early_inputs.append(needed)
            self.call(definition, cell, line)
        elif name in flow.last_toucher:
            stage.inputs[name] = flow.last_toucher[name]
        elif name in flow.parameters:
            self.parameters.add(name)
        elif name in flow.setup_definitions:
            self.call(flow.setup_definitions[name], cell, line)
        elif name not in flow.setup_defined:
            flow.analyzer.undefined(
                name, cell, line, f"stage `{stage.name}`", lenient=lenient, stage=stage
            )

    def as_code(self, definition: Definition) -> bool:
        """Whether a definition of an earlier stage can be defined again here: what it reads
        when it is defined (a default value, a decorator's argument) must be the same here,
        so only imports, other definitions and setup names. A function with `def f(x,
        s=scale)` keeps the `scale` of its own stage: it travels as a value, pickled."""
        flow = self.flow
        return all(
            name in flow.modules
            or name in flow.definitions
            or name in flow.setup_defined
            or name in flow.parameters
            or (name in KERNEL_NAMES and name not in flow.last_toucher)
            for name in definition.needs
        )

    def call(self, definition: Definition, cell: CellInfo, line: int) -> None:
        """Using a function or class reads the global names its body reads (and so on through
        the functions it calls), where it is used: that is when the notebook looks them up.
        It also changes what its body changes: globals it assigns or mutates, the random
        generators it seeds. Once per definition and stage is enough (the names it reads are
        this stage's from then on); a work list, not recursion, so that long chains of
        functions calling each other stay within Python's limits."""
        if definition.name in self.expanded:
            return
        self.expanded.add(definition.name)
        self.pending.append(definition)
        if len(self.pending) > 1:
            return  # an outer call is working through the list
        while self.pending:
            current = self.pending[0]
            for name in sorted(current.free):
                self.read(name, cell, line, lenient=True)
            for name in sorted(current.changes_globals - self.flow.modules):
                self.read(name, cell, line, lenient=True)
                self.touch(name, cell)
                self.mutate_aliases(name, cell, line)
            generators = {g for d in current.seeds for g in seeded(d, self.flow.imports)}
            if generators:
                self.flow.analyzer.generators.update(generators)
                self.flow.seeded = True
                self.touch(RANDOM_STATE, cell)
            self.pending.popleft()


def mapping(value: Any) -> dict[str, Any]:
    """A metadata entry that should be a JSON object, or {} when a tool wrote something else
    (JupyterLab only warns about such notebooks, so neither do we)."""
    return value if isinstance(value, dict) else {}


def _folder_name(name: str) -> bool:
    return len(name) <= 100 and not name.startswith(".") and not _NOT_IN_FOLDER_NAMES.search(name)


_NOT_IN_FOLDER_NAMES = re.compile(r"[/\x00-\x1f\x7f]")


def _non_code_role(cell_type: str) -> Role:
    return "markdown" if cell_type == "markdown" else "raw"


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _names_in(expression: str) -> list[str]:
    """The names an expression reads (a comprehension's own variables are not)."""
    return sorted(analyze_code(expression).reads)


def _describe_role(role: Role) -> str:
    return {
        "setup": "a setup cell",
        "parameters": "the parameters cell",
        "unassigned": "not in any stage",
        "skip": "skipped",
    }.get(role, role)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean `{close[0]}`?" if close else ""
