"""Request bodies of the REST API, validated with pydantic (docs/REST-API.md)."""

from __future__ import annotations

from typing import Any

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
