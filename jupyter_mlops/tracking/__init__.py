"""Everything jupyter-mlops says to MLflow, and the only place that imports it.

- ``client``: the tracking URI, one guarded client that fails fast, links into the UI.
- ``runs``: a pipeline run's parent run and its stages' child runs (`PipelineTracker`).
- ``datasets``: a stage's inputs as MLflow datasets (lineage).
- ``registry`` and ``card``: registering the logged models, with a model card.
- ``models``: logging a `model:VAR` variable, inside the stage's kernel.
- ``promotion``: the promotion gate (`promote`): a version's checks, then the alias.
- ``sweeps``: a sweep's own run, the parent of its trials' runs.

Importing the package is cheap: MLflow itself is imported only by the calls that talk to
it, because the CLI's start and every stage kernel import this package.
"""

from ..promote import BeatsChampion, CheckResult, PromotionChecks, PromotionResult
from .client import (
    FAIL_FAST,
    TAG_PREFIX,
    GuardedClient,
    MlflowLinks,
    resolve_tracking_uri,
    without_credentials,
)
from .promotion import promote
from .registry import CANDIDATE_ALIAS, RegisteredModel
from .runs import PipelineTracker, RunEnd, StageOutcome, StageRun, git_info

__all__ = [
    "CANDIDATE_ALIAS",
    "FAIL_FAST",
    "TAG_PREFIX",
    "BeatsChampion",
    "CheckResult",
    "GuardedClient",
    "MlflowLinks",
    "PipelineTracker",
    "PromotionChecks",
    "PromotionResult",
    "RegisteredModel",
    "RunEnd",
    "StageOutcome",
    "StageRun",
    "git_info",
    "promote",
    "resolve_tracking_uri",
    "without_credentials",
]
