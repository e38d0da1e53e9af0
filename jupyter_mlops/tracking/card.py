"""The model card: a registered model version's description, in Markdown.

What an engineer taking the model to production asks of the version's own page in MLflow:
how to load and serve exactly this version, where it comes from (notebook, commit, pipeline
run, the stage run that trained it), what data it saw (the data frames and arrays its stages
handed over, the files they read, with digests), how to reproduce it, how it scores against
the previous version and the current champion, and how each stage ran.

Nothing on the card moves after registration: URIs pin the version (`models:/NAME/N`); the
alias it got is a note, since aliases move on. Links are relative to the UI's page
(`#/experiments/...`), which MLflow's markdown renderer keeps as written, and carry
``workflowType=machine_learning`` so they open the model-training view rather than MLflow 3's
GenAI view (what a fresh browser gets otherwise).
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

from ..markdown import cell, link_text, table
from .client import model_versions, ui_route

if TYPE_CHECKING:
    from ..provenance import DatasetFact, InputFile
    from .registry import RegisteredModel
    from .runs import PipelineTracker, StageOutcome

MAX_PARAM_LENGTH = 6000  # MLflow rejects longer parameter values
CHAMPION_ALIAS = "champion"
DURATION_METRIC = "duration_s"  # every stage run's; not a property of the model
SIGNIFICANT = 4  # digits of a metric shown on the card
MAX_CELL = 80  # characters of a parameter value shown in a table cell


def param_text(value: Any) -> str:
    """Parameters as a Python user would write them: `None`, `0.25`, `[1, 2]`."""
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - 20] + "...(truncated)"
    return text


def model_card(
    tracker: PipelineTracker, model: RegisteredModel, outcomes: list[StageOutcome]
) -> str:
    """The version's description: how to use it, where it comes from, and how good it is."""
    from ..provenance import datasets, input_files

    records = {o.stage: o.record for o in outcomes if o.record is not None}
    sections = [
        _heading(tracker, model, outcomes),
        _use_it(model),
        _metrics(tracker, model, outcomes),
        _data(
            model,
            _fitted_on(tracker, model),
            datasets(tracker.bundle, model.stage, records),
            input_files(tracker.bundle, model.stage),
        ),
        _reproduce(tracker),
        _stages(tracker, outcomes),
        _parameters(tracker),
    ]
    return "\n\n".join(sections) + "\n"


# --- sections ---------------------------------------------------------------------------


def _provenance(
    tracker: PipelineTracker,
    model: RegisteredModel,
    outcomes: list[StageOutcome],
    pipeline_run: str,
    trained: str,
) -> str:
    """Which run trained the model: this one, or an earlier one whose stage it reused."""
    reused = any(o.stage == model.stage and o.cached_from for o in outcomes)
    if reused:
        return (
            f"Trained by an earlier run of the pipeline `{tracker.bundle.name}` in {trained}, "
            f"reused unchanged by its run {pipeline_run}"
        )
    return (
        f"Trained by the pipeline `{tracker.bundle.name}` in its run {pipeline_run}, in {trained}"
    )


def _heading(tracker: PipelineTracker, model: RegisteredModel, outcomes: list[StageOutcome]) -> str:
    experiment = tracker.experiment_id
    run_name = getattr(tracker, "run_name", "") or tracker.bundle.name
    stage_run = model.run_id or next((o.run_id for o in outcomes if o.stage == model.stage), "")
    trained = f"stage `{model.stage}`"
    if stage_run:
        trained += f" (run {run_link(experiment, stage_run, stage_run[:8])})"
    model_id = model.model_id
    logged = (
        f"; logged model [`{model_id}`]({ui_route('model', experiment, model_id)})"
        if model_id and experiment
        else ""
    )
    pipeline_run = (
        run_link(experiment, tracker.parent_run_id, run_name)
        if tracker.parent_run_id
        else f"`{run_name}`"
    )
    return "\n".join(
        [
            f"# {model.name} v{model.version}",
            "",
            _provenance(tracker, model, outcomes, pipeline_run, trained) + f", as the variable "
            f"`{model.variable}` ({model.flavor} flavor){logged}.",
            "",
            f"> Registered with alias `{model.alias_uri.partition('@')[2]}` at registration; "
            "aliases move — see the "
            f"[registry]({ui_route('registered', model.name)}) "
            "for where they point now.",
        ]
    )


def _use_it(model: RegisteredModel) -> str:
    return "\n".join(
        [
            "## Use it",
            "",
            "```python",
            "import mlflow",
            "",
            f'model = mlflow.pyfunc.load_model("{model.uri}")',
            "```",
            "",
            "Serve it over HTTP:",
            "",
            "```",
            f'mlflow models serve -m "{model.uri}" --env-manager local -h 127.0.0.1 -p 5001',
            "```",
        ]
    )


def _metrics(tracker: PipelineTracker, model: RegisteredModel, outcomes: list[StageOutcome]) -> str:
    """This version's metrics beside the previous version's and the champion's."""
    ours: dict[str, float] = {}
    source: dict[str, str] = {}
    for outcome in _in_stage_order(tracker, outcomes):
        if outcome.record:
            for key, value in outcome.record.metrics.items():
                ours[key], source[key] = value, outcome.stage
    others: list[tuple[str, dict[str, float]]] = []
    notes = []
    previous = _previous_version(tracker, model)
    champion = _alias_version(tracker, model.name, CHAMPION_ALIAS)
    if previous is not None:
        label = f"v{previous} (previous"
        label += f", `{CHAMPION_ALIAS}`)" if champion == previous else ")"
        others.append((label, _version_metrics(tracker, model.name, previous)))
    else:
        notes.append(f"This is the first version of `{model.name}`.")
    if champion is not None and champion != previous:
        label = f"v{champion} (`{CHAMPION_ALIAS}`)"
        others.append((label, _version_metrics(tracker, model.name, champion)))
    elif champion is None:
        notes.append(f"No version holds the alias `{CHAMPION_ALIAS}` yet.")
    if not ours and not any(values for _, values in others):
        return "\n".join(["## Metrics", "", "No stage logged metrics.", *notes])
    names = list(ours) + sorted({k for _, values in others for k in values} - set(ours))
    header = ["metric", "stage", f"v{model.version} (this)"]
    for label, _ in others:
        header += [label, "Δ"]
    rows = []
    for name in names:
        row = [name, source.get(name, ""), number(ours.get(name))]
        for _, values in others:
            row += [number(values.get(name)), delta(ours.get(name), values.get(name))]
        rows.append(row)
    lines = ["## Metrics", "", *table(header, rows)]
    if notes:
        lines += ["", " ".join(notes)]
    return "\n".join(lines)


def _data(
    model: RegisteredModel,
    fitted_on: str | None,
    found: list[DatasetFact],
    files: list[InputFile],
) -> str:
    from ..provenance import TIMES

    lines = ["## Data", ""]
    if fitted_on:
        lines += [f"`{model.variable}` was fitted on `{fitted_on}`.", ""]
    if found:
        lines += [
            f"What `{model.stage}` and the stages before it received:",
            "",
            *table(
                ["dataset", "made by", "read by", "digest", f"rows{TIMES}columns / shape"],
                [
                    [
                        f"`{d.variable}`",
                        d.producer,
                        ", ".join(d.consumers),
                        f"`{d.digest[:12]}`",
                        d.size,
                    ]
                    for d in found
                ],
            ),
        ]
    else:
        lines.append(f"`{model.stage}` and the stages before it received no data frames or arrays.")
    lines.append("")
    if files:
        lines += [
            "Files their code names (paths from the notebook's working folder; sha256 taken at "
            "registration):",
            "",
            *table(
                ["file", "read by", "sha256", "bytes"],
                [
                    [
                        f"`{cell(f.path)}`",
                        ", ".join(f.stages),
                        f"`{f.sha256}`" if f.sha256 else "unreadable",
                        str(f.size),
                    ]
                    for f in files
                ],
            ),
        ]
    else:
        lines.append("Their code names no files (the data comes from code or a library).")
    return "\n".join(lines)


def _reproduce(tracker: PipelineTracker) -> str:
    git, bundle = tracker.git, tracker.bundle
    commit = git.get("commit")
    notebook = git.get("path") or (
        bundle.source_path.name if bundle.source_path else str(bundle.root / "pipeline.yaml")
    )
    lines = ["## Reproduce", ""]
    commands = []
    if commit:
        url = git.get("repo_url")
        if url:
            folder = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
            commands += [f"git clone {url}", f"cd {folder}"]
        commands.append(f"git checkout {commit}")
    commands.append(f"jupyter-mlops run {notebook} -f params.yaml")
    source = f"{_commit_text(git)}" if commit else "Not in a git repository when it ran."
    lines += [f"Source: {source}", ""]
    if git.get("dirty") == "true":
        lines += [
            "> The notebook had uncommitted changes: this commit does not hold the exact code "
            "that trained the model.",
            "",
        ]
    if bundle.source_sha256:
        lines += [f"Notebook sha256: `{bundle.source_sha256}`", ""]
    lines += ["```", *commands, "```", "", "with this `params.yaml`:", "", "```yaml"]
    lines += [_params_yaml(tracker.parameters).rstrip("\n"), "```"]
    return "\n".join(lines)


def _stages(tracker: PipelineTracker, outcomes: list[StageOutcome]) -> str:
    experiment = tracker.experiment_id
    rows = []
    for outcome in _in_stage_order(tracker, outcomes):
        if outcome.cached_from:
            status = f"cached from run {_source_run_link(tracker, outcome.cached_from)}"
            took = "—"
        else:
            status, took = outcome.status, duration(outcome.duration)
        run = run_link(experiment, outcome.run_id, outcome.run_id[:8]) if outcome.run_id else ""
        rows.append([_position(tracker, outcome.stage), outcome.stage, status, took, run])
    return "\n".join(["## Stages", "", *table(["#", "stage", "status", "duration", "run"], rows)])


def _parameters(tracker: PipelineTracker) -> str:
    defaults = {p.name: p.default for p in tracker.bundle.parameters}
    rows = []
    for name, value in tracker.parameters.items():
        text = f"`{cell(param_text(value)[:MAX_CELL])}`"
        if name in defaults and defaults[name] != value:
            text += f" (default `{cell(param_text(defaults[name])[:MAX_CELL])}`)"
        rows.append([name, text])
    if not rows:
        return "## Parameters\n\nThe notebook has no parameters."
    return "\n".join(["## Parameters", "", *table(["parameter", "value"], rows)])


# --- what MLflow knows about other versions -----------------------------------------------


def _previous_version(tracker: PipelineTracker, model: RegisteredModel) -> str | None:
    """The newest version of the same registered model registered before this one."""
    from mlflow.exceptions import MlflowException

    try:
        versions = model_versions(tracker.client, model.name)
    except MlflowException:
        return None
    earlier = [int(v.version) for v in versions if int(v.version) < int(model.version)]
    return str(max(earlier)) if earlier else None


def _alias_version(tracker: PipelineTracker, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(tracker.client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _version_metrics(tracker: PipelineTracker, name: str, version: str) -> dict[str, float]:
    """The metrics of the run a version was registered from (its pipeline's parent run)."""
    from mlflow.exceptions import MlflowException

    try:
        run_id = tracker.client.get_model_version(name, version).run_id
        metrics = dict(tracker.client.get_run(run_id).data.metrics) if run_id else {}
    except MlflowException:
        return {}
    metrics.pop(DURATION_METRIC, None)
    return metrics


def _source_run_link(tracker: PipelineTracker, run_id: str) -> str:
    """A link to the run whose outputs a stage reused; plain text when the store lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = tracker.client.get_run(run_id).info.experiment_id
    except MlflowException:
        return f"`{cell(run_id)}`"
    return run_link(experiment, run_id, run_id[:8])


# --- links and figures ----------------------------------------------------------------------


def run_link(experiment_id: str | None, run_id: str | None, text: str) -> str:
    """A Markdown link to a run's page, relative to the UI (opens in the model-training view)."""
    if not (experiment_id and run_id):
        return f"`{cell(text)}`"
    return f"[{link_text(text)}]({ui_route('run', experiment_id, run_id)})"


_REMOTE = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?[:/]"
    r"(?P<path>.+?)(?:\.git)?/*$",
    re.IGNORECASE,
)


def commit_url(repo_url: str | None, commit: str) -> str | None:
    """The commit's page on GitHub or GitLab (https, ssh or `git@host:path` remotes); None
    for other hosts, whose commit pages we can't name."""
    match = _REMOTE.match(repo_url or "")
    if not match:
        return None
    host, path = match["host"].lower(), match["path"].strip("/")
    scheme = "http" if (match["scheme"] or "").lower() == "http" else "https"
    if "github" in host:
        return f"{scheme}://{host}/{path}/commit/{commit}"
    if "gitlab" in host:
        return f"{scheme}://{host}/{path}/-/commit/{commit}"
    return None


def _commit_text(git: dict[str, str]) -> str:
    commit = git["commit"]
    url = commit_url(git.get("repo_url"), commit)
    text = f"[`{commit[:12]}`]({url})" if url else f"`{commit}`"
    if git.get("branch") and git["branch"] != "HEAD":
        text += f" on branch `{git['branch']}`"
    if git.get("repo_url") and not url:
        text += f" of `{git['repo_url']}`"
    return text + (f", notebook `{git['path']}`" if git.get("path") else "")


def number(value: float | None) -> str:
    """A metric for people: 4 significant digits, no exponent for everyday magnitudes."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    decimals = _decimals(value)
    return f"{value:.3e}" if decimals is None else _fixed(value, decimals)


def delta(ours: float | None, theirs: float | None) -> str:
    """The signed difference, to the precision the two figures are shown with."""
    if ours is None or theirs is None or not math.isfinite(ours - theirs):
        return "n/a"
    difference = ours - theirs
    decimals = [_decimals(v) for v in (ours, theirs)]
    if None in decimals:
        text = f"{difference:+.3e}"
    else:
        text = _fixed(difference, max(d for d in decimals if d is not None))
        if float(text) == 0:
            return "±0"
    return text if text.startswith(("-", "+")) else "+" + text


def duration(seconds: float) -> str:
    """How long a stage took, rounded: "3.9 s", "42 s", "2 min 5 s", "1 h 3 min"."""
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _decimals(value: float) -> int | None:
    """Decimals that show `value` to SIGNIFICANT digits; None: it needs an exponent."""
    if value == int(value) and abs(value) < 1e15:
        return 0
    if not 1e-4 <= abs(value) < 1e9:
        return None
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(value))))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- Markdown -------------------------------------------------------------------------------


def _params_yaml(parameters: dict[str, Any]) -> str:
    from ..files import yaml_text

    return yaml_text(parameters) if parameters else "{}\n"


def _fitted_on(tracker: PipelineTracker, model: RegisteredModel) -> str | None:
    """The data the model was fitted on, as the analysis found it (`model.fit(X_train, ...)`)."""
    stage = next((s for s in tracker.bundle.stages if s.name == model.stage), None)
    return stage.models.get(model.variable) if stage else None


def _position(tracker: PipelineTracker, stage: str) -> str:
    return str(tracker.bundle.position(stage)) if stage in tracker.bundle.stage_names else ""


def _in_stage_order(tracker: PipelineTracker, outcomes: list[StageOutcome]) -> list[StageOutcome]:
    names = tracker.bundle.stage_names
    return sorted(outcomes, key=lambda o: names.index(o.stage) if o.stage in names else len(names))
