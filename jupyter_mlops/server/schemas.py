"""Request bodies of the REST API, and the answers about verifications, validated with
pydantic (docs/REST-API.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    jobs: int = Field(default=1, ge=1, le=64)
    from_stage: str | None = None
    only: list[str] = Field(default_factory=list)


class VerifyRequest(_Body):
    path: str


# --- responses: shaped here so that the API's answer is checked against its documentation --


class _Reply(BaseModel):
    # Fields the command adds later pass through: the JSON report is its contract.
    model_config = ConfigDict(extra="allow")


class VerifyDifference(_Reply):
    stage: str
    variable: str
    label: str
    readers: list[str]
    cell: int | None
    detail: str
    unseeded: bool


class VerifyReport(_Reply):
    notebook: str
    folder: str
    stages: int
    values: int
    plain_seconds: float
    pipeline_seconds: float
    identical: bool
    differences: list[VerifyDifference]


class Verification(_Reply):
    id: str
    path: str | None
    status: Literal["running", "identical", "divergent", "failed"]
    report: VerifyReport | None
    error: str | None
