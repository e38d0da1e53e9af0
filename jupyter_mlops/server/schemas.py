"""The REST API's requests and answers as pydantic models: the one description of its JSON.

Requests are validated with them; every answer is built as one of them, so what the server
sends is checked against the same description that `docs/REST-API.md`'s reference and the
TypeScript client's types are generated from (`python -m jupyter_mlops.server.apidoc`).
Fields are declared in the order they go out on the wire.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from typing_extensions import TypeAliasType

from ..run.scheduling import default_jobs
from ..sweeps.sweeper import MAX_TRIALS


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeRequest(_Body):
    notebook: dict[str, Any] | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AnalyzeRequest:
        if self.notebook is None and not self.path:
            raise ValueError("send the notebook JSON as `notebook`, or its `path`")
        return self


class ConvertRequest(_Body):
    path: str
    output: str | None = None


class RunRequest(_Body):
    path: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    jobs: int = Field(
        default_factory=default_jobs,
        ge=1,
        le=64,
        description="stages run at once; default: the server's cores, as `jupyter-mlops run`",
    )
    from_stage: str | None = None
    only: list[str] = Field(default_factory=list)


class VerifyRequest(_Body):
    path: str


class SweepRequest(_Body):
    """`POST sweeps`: what `jupyter-mlops sweep` is given on its command line."""

    path: str
    values: dict[str, str] = Field(
        description="parameter -> the values to try, as text as on the command line: "
        "`100,200,400`; with `random`, also a range `LOW:HIGH` or `LOW:HIGH:log`; one value "
        "fixes the parameter for every trial"
    )
    random: int | None = Field(
        default=None, ge=1, le=MAX_TRIALS, description="draw this many trials at random"
    )
    seed: int | None = Field(default=None, description="the random draws' seed")
    metric: str | None = Field(
        default=None, description="the metric that picks the best trial (default: the only one)"
    )
    maximize: bool | None = Field(
        default=None, description="higher is better (default: from the metric's name)"
    )


class PromoteRequest(_Body):
    to: str = Field(default="champion", min_length=1, description="the alias to move")
    dry_run: bool = Field(default=False, description="run the checks only: nothing is moved")
    path: str | None = Field(
        default=None,
        description="the notebook whose run registered the version: the store of its project "
        "is the one checked (default: the server root project's)",
    )


# --- answers ------------------------------------------------------------------------------

# A JSON number: an int stays an int on the wire (a float field would turn 3 into 3.0).
Number = int | float


class _Reply(BaseModel):
    """An answer of ours: every field declared. A NaN or infinite float is kept as a float
    here and sent as the text JavaScript prints for it (`parameters.standard_json`)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


def _absent_when_none(value: Any) -> bool:
    return value is None


# A log tail: sent by `GET runs/{id}` (and `POST`/`DELETE`), left out of `GET runs` listings.
LogTail = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "description": "absent in `GET runs` listings"}),
    Field(default=None, exclude_if=_absent_when_none),
]


# What a stage's outputs depend on (the stage cache's key), for lineage; run.json files
# written before it was recorded have none, and it is left out then.
StageKey = Annotated[
    str | None,
    WithJsonSchema(
        {"type": "string", "description": "the stage cache's key its outputs depend on"}
    ),
    Field(default=None, exclude_if=_absent_when_none),
]


class ServerConfig(_Reply):
    """`GET config`, and `GET config?path=NOTEBOOK`: where that notebook's runs go (its
    project's store and run folders), by default where a notebook in the server root's go."""

    version: str
    tracking_uri: str
    mlflow_ui_url: str | None = Field(
        description="the MLflow UI showing that store; null when none is reachable"
    )
    runs_dir: str = Field(
        description="relative to the server root when inside it, else an absolute path"
    )


# --- the analysis (POST analyze, POST convert) ---------------------------------------------

Severity = TypeAliasType("Severity", Literal["error", "warning"])
CellRole = TypeAliasType(
    "CellRole",
    Literal["stage", "setup", "skip", "parameters", "unassigned", "markdown", "raw"],
)
ParameterType = TypeAliasType(
    "ParameterType", Literal["int", "float", "str", "bool", "list", "dict", "any"]
)


class PipelineSettings(_Reply):
    """Notebook-wide settings from the notebook's `jupyter_mlops` metadata."""

    pipeline: str
    experiment: str
    model_name: str
    kernel: str | None
    fit_data: dict[str, str] = Field(description="model variable -> its fit data expression")
    promotion: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(
            {
                "type": "object",
                "description": "the promotion gate's declared checks; absent when none",
            }
        ),
        Field(default=None, exclude_if=_absent_when_none),
    ]


class Stage(_Reply):
    """A stage of the analysed notebook, in run order."""

    name: str
    cells: list[int]
    inputs: dict[str, str] = Field(description="variable -> the stage it comes from")
    outputs: list[str]
    parameters: list[str]
    after: list[str]
    upstream: list[str]
    metrics: list[str]
    models: dict[str, str | None] = Field(
        description="variable -> the expression its input example comes from"
    )
    touched: list[str]
    definitions: dict[str, int] = Field(
        description="functions and classes of earlier stages used here -> the cell defining them"
    )
    early_inputs: list[str] = Field(description="inputs those need before they are defined")
    replay: list[str] = Field(description="configuring statements of earlier stages made again")


class Edge(_Reply):
    source: str
    target: str
    variables: list[str]
    explicit: bool = Field(description="from an `after:` tag")


class Parameter(_Reply):
    name: str
    type: ParameterType
    default: Any
    help: str
    cell: int
    line: int
    optional: bool = Field(description="None is accepted as well")


class CellInfo(_Reply):
    """One per notebook cell, markdown included."""

    index: int
    cell_type: str
    role: CellRole
    stage: str | None
    after_skip: int | None = Field(
        description="the skip cell an untagged cell follows (it joins the stage before)"
    )
    tags: list[str]
    metrics: bool
    models: list[str]
    after: list[str]
    reads: list[str]
    touches: list[str]


class Diagnostic(_Reply):
    severity: Severity
    code: str = Field(description="a stable identifier, e.g. `undefined-name`")
    message: str
    cell: int | None
    related_cell: int | None
    line: int | None


class Analysis(_Reply):
    """`POST analyze`: what the tags make of the notebook."""

    settings: PipelineSettings
    stages: list[Stage]
    edges: list[Edge]
    parameters: list[Parameter]
    setup_cells: list[int]
    cells: list[CellInfo]
    diagnostics: list[Diagnostic]
    imports: list[str]
    random_generators: list[str] = Field(description="the global ones the notebook seeds")
    ok: bool = Field(description="false when there are errors")


class ConvertResponse(_Reply):
    """`POST convert`."""

    output: str
    files: list[str]
    analysis: Analysis


# --- runs (POST runs, GET runs, GET/DELETE runs/{id}) ---------------------------------------

RunStatus = TypeAliasType(
    "RunStatus", Literal["queued", "running", "succeeded", "failed", "cancelled"]
)
StageStatus = TypeAliasType(
    "StageStatus",
    Literal["queued", "running", "done", "failed", "cached", "skipped", "cancelled"],
)


class StageError(_Reply):
    message: str
    cell: int | None = Field(description="0-based index into the notebook's cells")
    line: int | None
    exception: str | None = Field(description='e.g. "ValueError: boom"')
    traceback: str | None


class StageRun(_Reply):
    name: str
    status: StageStatus
    started: Number | None = Field(description="seconds since the epoch")
    finished: Number | None
    notebook: str | None = Field(description="the executed notebook, in the run folder")
    log: str | None = Field(description="its log, in the run folder")
    mlflow_run_id: str | None
    cached_from: str | None
    key: StageKey
    error: StageError | None
    metrics: dict[str, Number] = Field(description="what its `metrics` cell logged")
    timings: dict[str, Number] = Field(
        default_factory=dict,
        description="seconds by part, the columns of `jupyter-mlops run --timings`; "
        "empty when not recorded",
    )
    duration: Number | None
    cells: list[int]
    mlflow_url: str | None
    log_tail: LogTail


class RegisteredModel(_Reply):
    name: str
    version: str
    variable: str
    stage: str
    uri: str
    alias_uri: str
    flavor: str
    model_id: str | None = Field(default=None, description="the logged model (m-...)")
    run_id: str | None = Field(default=None, description="the stage run that logged it")
    new: bool = Field(
        default=True,
        description="false: the version an earlier run registered, linked to because this "
        "run reused its model",
    )
    url: str | None


class MlflowRun(_Reply):
    tracking_uri: str | None
    experiment_id: str | None
    run_id: str | None
    url: str | None


class Run(_Reply):
    """A run: `GET runs/{id}`, and the answer to `POST runs` and `DELETE runs/{id}`."""

    id: str
    pipeline: str
    status: RunStatus
    created: Number = Field(description="seconds since the epoch")
    finished: Number | None
    parameters: dict[str, Any]
    stages: list[StageRun]
    error: StageError | None = Field(description="the failing stage's error, when failed")
    models: list[RegisteredModel]
    warnings: list[str]
    path: str | None = Field(description="the notebook, relative to the server root")
    folder: str | None = Field(
        description="the run folder, relative to the server root (its stages' `notebook` and "
        "`log` are relative to it); null when it is outside the root"
    )
    run_dir: str = Field(
        description="the run folder's absolute path on the server's machine: where to find "
        "it when `folder` is null (a project whose top level is above the server root)"
    )
    mlflow: MlflowRun
    log_tail: LogTail


class RunList(_Reply):
    """`GET runs`: newest first."""

    runs: list[Run]


# --- sweeps (POST sweeps, GET sweeps, GET/DELETE sweeps/{id}, POST sweeps/{id}/resume) -------

SweepStatus = TypeAliasType(
    "SweepStatus", Literal["queued", "running", "succeeded", "failed", "stopped"]
)
TrialStatus = TypeAliasType(
    "TrialStatus", Literal["pending", "running", "succeeded", "failed", "cancelled"]
)


class SweepTrial(_Reply):
    """One parameter set of a sweep: an ordinary pipeline run nested under the sweep's."""

    number: int = Field(description="from 1, in the order the trials run")
    parameters: dict[str, Any] = Field(description="the swept parameters' values")
    status: TrialStatus
    run_id: str | None = Field(description="its pipeline run (`GET runs/{id}`)")
    mlflow_run_id: str | None
    metric: Number | None = Field(description="the sweep's metric, once it succeeded")
    metrics: dict[str, Number]
    shared: list[str] = Field(description="stages whose outputs an earlier trial made")
    error: str | None
    duration: Number | None
    mlflow_url: str | None


class Sweep(_Reply):
    """A sweep: `GET sweeps/{id}`, and the answer to `POST sweeps`, `DELETE sweeps/{id}` and
    `POST sweeps/{id}/resume`. Its record, `sweep.json`, with links into MLflow."""

    id: str
    pipeline: str
    path: str | None = Field(description="the notebook, relative to the server root")
    status: SweepStatus = Field(
        description="`stopped`: stopped, or its process ended before it did; it can resume"
    )
    metric: str
    maximize: bool
    space: dict[str, str] = Field(description="each swept parameter's values, as given")
    fixed: dict[str, Any] = Field(description="the values every trial shares")
    seed: int | None = Field(description="a random sweep's")
    created: Number = Field(description="seconds since the epoch")
    finished: Number | None
    trials: list[SweepTrial]
    best: int | None = Field(description="the best trial's number")
    models: list[RegisteredModel] = Field(description="the best trial's, registered")
    folder: str | None = Field(description="the sweep's folder, relative to the server root")
    error: str | None = Field(description="why it failed or stopped, when its record can't say")
    mlflow: MlflowRun = Field(description="the sweep's own run, the trials' parent")


class SweepList(_Reply):
    """`GET sweeps`: newest first."""

    sweeps: list[Sweep]


# --- verifications --------------------------------------------------------------------------


class VerificationStarted(_Reply):
    """`POST verifications`."""

    id: str


class _Report(_Reply):
    # Fields the command adds later pass through: its JSON report is its contract.
    model_config = ConfigDict(extra="allow")


VerificationStatus = TypeAliasType(
    "VerificationStatus", Literal["running", "identical", "divergent", "failed"]
)


class VerifyDifference(_Report):
    """A value a stage hands on that is not what the notebook computed."""

    stage: str
    variable: str = Field(description="the handed-over name")
    label: str = Field(description="how to name it to a person")
    readers: list[str] = Field(description="the stages that read it")
    cell: int | None = Field(description="the stage's last cell that sets it")
    detail: str
    unseeded: bool = Field(description="randomness the notebook itself doesn't reproduce")


class VerifyReport(_Report):
    """What `jupyter-mlops verify --json` prints."""

    notebook: str
    folder: str = Field(description="the runs kept to look into; '' when identical")
    stages: int
    values: int = Field(description="handed-over values compared")
    plain_seconds: float
    pipeline_seconds: float
    identical: bool
    differences: list[VerifyDifference]


class Verification(_Report):
    """`GET verifications/{id}`."""

    id: str
    path: str | None
    status: VerificationStatus
    report: VerifyReport | None = Field(description="once the command has reported")
    error: str | None = Field(description="the command's one-paragraph error, when failed")


# --- promotion (POST models/{name}/versions/{version}/promote) ------------------------------


class PromotionCheck(_Reply):
    """One check of the promotion gate."""

    name: str = Field(description='e.g. "min accuracy", "beats champion", "smoke test"')
    passed: bool
    detail: str = Field(description="one sentence with the figures")


class Promotion(_Reply):
    """`POST models/{name}/versions/{version}/promote`: the checks and what was done. A check
    that fails is an answer (`passed` false), not an error."""

    name: str
    version: str
    to: str = Field(description="the alias")
    passed: bool = Field(description="every check passed")
    moved: bool = Field(description="the alias now points at this version (never on a dry run)")
    checks: list[PromotionCheck]
    champion_before: str | None = Field(description="the version the alias named before, if any")
    dry_run: bool


# --- errors ---------------------------------------------------------------------------------


class ErrorData(_Reply):
    """The error as data (`MlopsError.data()`): its kind and message, and its own fields
    (a bad request's `problems`: each field and what is wrong with it, say)."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="the error's class, e.g. `NotFound`, `TooLarge`")
    message: str


class ErrorBody(_Reply):
    """Every error our handlers answer, with its HTTP status."""

    message: str = Field(description="one sentence the UI can show")
    error: ErrorData


REQUESTS: list[type[BaseModel]] = [
    AnalyzeRequest,
    ConvertRequest,
    RunRequest,
    VerifyRequest,
    PromoteRequest,
    SweepRequest,
]
ANSWERS: list[type[BaseModel]] = [
    ServerConfig,
    Analysis,
    ConvertResponse,
    Run,
    RunList,
    Sweep,
    SweepList,
    VerificationStarted,
    Verification,
    Promotion,
    ErrorBody,
]
