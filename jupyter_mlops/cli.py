"""The `jupyter-mlops` command (also `jupyter mlops`): thin over the analysis, bundle, runner.

Exit codes: 0 success, 1 a stage failed (or `check` found errors), 2 bad input or usage,
130 stopped by Ctrl-C. Errors are one paragraph on stderr, never a traceback.
"""

from __future__ import annotations

import sys

# jsonschema (under nbformat) imports rfc3987-syntax when it is installed, which compiles a
# grammar for a second; no command validates IRIs, and every command (a pre-commit hook, a
# scheduler's task) would pay for it. Done before anything imports jsonschema.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import errno  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402

from ._version import __version__  # noqa: E402
from .analysis import Diagnostic  # noqa: E402
from .bundle import read_bundle  # noqa: E402
from .ending import exit_without_teardown  # noqa: E402
from .errors import BadInput, MlopsError, StageFailed  # noqa: E402
from .exporters import BUNDLE_FOLDER, ExportOptions, exporters  # noqa: E402
from .junit import write_junit_xml  # noqa: E402
from .parameters import read_values_file, resolve, standard_json  # noqa: E402
from .pipeline import convert as convert_notebook  # noqa: E402
from .pipeline import prepare, read_analyzed  # noqa: E402
from .places import project_runs_dir  # noqa: E402
from .report import (  # noqa: E402
    ProgressPrinter,
    SweepPrinter,
    check_report,
    model_line,
    run_summary,
    sweep_summary,
    timings_table,
    verify_report,
)
from .run import tasks  # noqa: E402
from .run.dask_executor import on_dask  # noqa: E402
from .run.failures import DISK_FULL_HINT  # noqa: E402
from .run.runner import RunOptions  # noqa: E402
from .run.runstate import DONE, FAILED  # noqa: E402
from .run.scheduling import default_jobs  # noqa: E402
from .run.upload import upload  # noqa: E402
from .status_symbols import STATUS_SYMBOLS  # noqa: E402
from .sweeps.record import TO_RUN  # noqa: E402
from .sweeps.sweeper import plan_sweep  # noqa: E402
from .sweeps.sweeper import resume as resume_sweep  # noqa: E402
from .tracking import without_credentials  # noqa: E402

SCHEDULER_COMMANDS = frozenset({"begin", "stage", "end", "log"})


class _Command(click.Command):
    """A command whose usage errors all show its usage line: click's parser raises some
    (`-p` with one word instead of two) without the context that prints it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            if error.ctx is None:
                error.ctx = ctx
            raise


class _Group(click.Group):
    """Turns our errors into one clear paragraph and the documented exit code."""

    command_class = _Command

    def main(self, args: Any = None, *more: Any, **options: Any) -> Any:
        """The command line ends without tearing down MLflow's modules (`ending`); click's
        callers that pass their arguments (a test's CliRunner, another program) get click's
        behaviour unchanged."""
        if args is not None or more or options:
            return super().main(args, *more, **options)
        try:
            return super().main()
        except SystemExit as done:
            if done.code is None or isinstance(done.code, int):
                exit_without_teardown(done.code or 0)
            raise

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The everyday commands, then apart those a scheduler's tasks call (`begin`,
        `stage`, `end`, `log`): a data scientist reads the first list."""
        commands = [
            (name, command)
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        width = formatter.width - 6 - max((len(name) for name, _ in commands), default=0)
        for title, for_schedulers in (("Commands", False), ("For schedulers", True)):
            rows = [
                (name, command.get_short_help_str(width))
                for name, command in commands
                if (name in SCHEDULER_COMMANDS) == for_schedulers
            ]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StageFailed as error:
            _fail(str(error), error.exit_code, error.notebook)
        except MlopsError as error:
            _fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            _fail("stopped", 130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own: a usage error is exit 2 with its usage line
        except Exception as error:  # still one paragraph; the traceback on request
            if os.environ.get("JUPYTER_MLOPS_DEBUG"):
                raise
            if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                where = f" while writing {error.filename}" if error.filename else ""
                _fail(f"no space left on the disk{where}{DISK_FULL_HINT}", 1)
            _fail(
                f"unexpected {type(error).__name__}: {error}. This is a bug in jupyter-mlops; "
                "run again with JUPYTER_MLOPS_DEBUG=1 to see the traceback, and report it",
                1,
            )


def _options(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, for options that commands share."""

    def apply(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


TRACKING_URI_OPTION = click.option(
    "--tracking-uri",
    help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).",
)
PARAMETER_OPTIONS = _options(
    click.option(
        "-p",
        "--parameter",
        "parameters",
        multiple=True,
        nargs=2,
        metavar="NAME VALUE",
        help="Set a parameter (repeatable); checked against its type.",
    ),
    click.option(
        "-f",
        "--parameters-file",
        type=click.Path(path_type=Path),
        help="YAML file of parameter values (papermill -f compatible), or JSON if named *.json.",
    ),
)
JOBS_OPTION = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=default_jobs,
    show_default="the number of cores",
    help="Independent stages to run at once.",
)
STAGE_OPTIONS = _options(
    click.option("--kernel", help="Kernelspec to run the stages with."),
    click.option(
        "--stage-timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Stop a stage that runs longer than this.",
    ),
)
ARTIFACT_STORE_OPTION = click.option(
    "--artifact-store",
    metavar="URI",
    help="Where stages hand values over: a path or an fsspec URL (s3://bucket/prefix) "
    "that every machine running a stage can reach. Default: the run folder.",
)
EXECUTOR_OPTIONS = _options(
    click.option(
        "--executor",
        type=click.Choice(["local", "dask"]),
        default="local",
        show_default=True,
        help="Where stages run: this machine, or tasks on an existing Dask cluster.",
    ),
    click.option(
        "--scheduler",
        metavar="URL",
        envvar="DASK_SCHEDULER_ADDRESS",
        help="The Dask scheduler (tcp://HOST:8786) for --executor dask.",
    ),
)
SCHEDULED_RUN_OPTIONS = _options(
    click.option("--run-id", required=True, help="The id `jupyter-mlops begin` printed."),
    click.option("--artifact-store", required=True, metavar="URI"),
)


def _output_option(help_text: str) -> Callable[[Any], Any]:
    return click.option(
        "-o", "--output", "out", required=True, type=click.Path(path_type=Path), help=help_text
    )


def _runs_dir_option(help_text: str) -> Callable[[Any], Any]:
    return click.option(
        "--runs-dir",
        type=click.Path(path_type=Path),
        help=help_text + " Default: mlops-runs/ at the project's root (the top level of the "
        "notebook's git repository, else the working folder).",
    )


def _project_runs_dir(runs_dir: Path | None, near: Path) -> Path:
    """`--runs-dir`, else the project's (`places`)."""
    return runs_dir or project_runs_dir(near)


def _on_cluster(ctx: click.Context, executor: str, scheduler: str | None) -> bool:
    """Whether the stages run on a Dask cluster; a usage error when half asked for, or
    with a setting a cluster's stage doesn't honour (it must not be silently dropped)."""
    if executor == "dask" and not scheduler:
        raise click.UsageError("--executor dask needs --scheduler tcp://HOST:PORT", ctx)
    if executor == "dask" and ctx.params.get("stage_timeout"):
        raise click.UsageError(
            "--stage-timeout is for stages run on this machine; on a cluster, set a time "
            "limit in the cluster (Dask's worker lifetime) or leave it out",
            ctx,
        )
    if (
        executor == "local"
        and scheduler
        and ctx.get_parameter_source("scheduler") is (click.core.ParameterSource.COMMANDLINE)
    ):
        raise click.UsageError("--scheduler is for --executor dask", ctx)
    return executor == "dask"


def _fail(message: str, code: int, notebook: str | None = None) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    if notebook:
        click.echo(f"  the executed notebook, with the full traceback: {notebook}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jupyter-mlops")
def main() -> None:
    """Turn a tagged notebook into papermill stage jobs that run anywhere and log to MLflow."""


@main.command()
@click.argument("notebooks", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option(
    "--only-tagged",
    is_flag=True,
    help="Skip notebooks without stage tags (for pre-commit on a repository's notebooks).",
)
def check(notebooks: tuple[Path, ...], as_json: bool, only_tagged: bool) -> None:
    """Lint notebooks' tags and data flow; exit 1 when there are errors."""
    reports: dict[str, Any] = {}
    code = 0
    for notebook in notebooks:
        try:
            _, analysis = read_analyzed(notebook)
        except BadInput as error:
            click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
            code = 2
            continue
        untagged = {d.code for d in analysis.errors} <= {"no-stages", "no-cells"}
        if only_tagged and not analysis.stages and untagged:
            continue
        reports[str(notebook)] = analysis.to_dict()
        if not as_json:
            click.echo(check_report(analysis, str(notebook)))
        if analysis.errors:
            code = max(code, 1)
    if as_json:
        single = len(notebooks) == 1 and reports
        click.echo(standard_json(next(iter(reports.values())) if single else reports, indent=2))
    sys.exit(code)


@main.command(short_help="Write the bundle: stage notebooks, pipeline.yaml, requirements.")
@click.argument("notebook", type=click.Path(path_type=Path))
@_output_option("Folder to write the bundle into.")
def convert(notebook: Path, out: Path) -> None:
    """Write the bundle: one papermill notebook per stage, pipeline.yaml, params, requirements."""
    converted = convert_notebook(notebook, out, _warn)
    click.echo(f"wrote {out}/: " + ", ".join(converted.files))


@main.command(short_help="Run a notebook or a bundle's pipeline.yaml, logging to MLflow.")
@click.argument("target", type=click.Path(path_type=Path))
@PARAMETER_OPTIONS
@JOBS_OPTION
@click.option(
    "--from",
    "from_stage",
    metavar="STAGE",
    help="Run STAGE and what depends on it; reuse earlier outputs for the rest.",
)
@click.option(
    "--only",
    multiple=True,
    metavar="STAGE",
    help="Run only STAGE (repeatable); its inputs come from the newest run with the same "
    "code and parameters.",
)
@TRACKING_URI_OPTION
@STAGE_OPTIONS
@_runs_dir_option("Where run folders are created.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Run every stage, even those whose code, parameters and inputs are unchanged.",
)
@ARTIFACT_STORE_OPTION
@click.option(
    "--junit-xml",
    type=click.Path(path_type=Path),
    help="Write a JUnit XML report, one test case per stage (also when a stage fails).",
)
@click.option(
    "--timings",
    is_flag=True,
    help="After the run, print where each stage's time went: kernel start, setup, waiting "
    "for upstream stages, loading inputs, its cells, saving outputs, logging.",
)
@EXECUTOR_OPTIONS
@click.option("--run-id", hidden=True, help="Use this run id (the Jupyter server picks one).")
@click.pass_context
def run(
    ctx: click.Context,
    target: Path,
    parameters: tuple[tuple[str, str], ...],
    parameters_file: Path | None,
    jobs: int,
    from_stage: str | None,
    only: tuple[str, ...],
    tracking_uri: str | None,
    kernel: str | None,
    stage_timeout: float | None,
    runs_dir: Path | None,
    no_cache: bool,
    artifact_store: str | None,
    junit_xml: Path | None,
    timings: bool,
    executor: str,
    scheduler: str | None,
    run_id: str | None,
) -> None:
    """Run a notebook (converted on the fly) or a bundle's pipeline.yaml, logging to MLflow."""
    on_cluster = _on_cluster(ctx, executor, scheduler)
    options = RunOptions(
        jobs=jobs,
        from_stage=from_stage,
        only=list(only),
        tracking_uri=tracking_uri,
        runs_root=runs_dir,
        kernel=kernel,
        stage_timeout=stage_timeout,
        run_id=run_id,
        artifact_store=artifact_store,
        use_cache=not no_cache,
        fork=not on_cluster,
    )
    given = _read_parameters_file(parameters_file)
    runner = prepare(target, options, given, list(parameters), [ProgressPrinter()], _say_warnings)
    _say_warnings(runner.warnings)
    if on_cluster:
        if from_stage or only or timings:
            raise click.UsageError(
                "--from, --only and --timings are for runs on this machine: leave out --executor",
                ctx,
            )
        assert scheduler is not None
        cluster_run = on_dask(runner, scheduler, [ProgressPrinter()])
        stages = f"{len(runner.bundle.stages)} stages"
        click.echo(
            f"running `{runner.bundle.name}` on {scheduler}: {stages}, run {runner.run_id}",
            err=True,
        )
        try:
            state = cluster_run.run()
        finally:
            if junit_xml is not None:
                write_junit_xml(cluster_run.state.state, junit_xml)
        click.echo(run_summary(state))
        return
    runner.connect()  # an unreachable tracking server stops us before anything is written
    selected, total = len(runner.selected), len(runner.bundle.stages)
    stages = f"{total} stage" + ("s" if total != 1 else "")
    count = stages if selected == total else f"{selected} of {stages}"
    click.echo(f"running `{runner.bundle.name}`: {count}, run {runner.run_id}", err=True)
    try:
        state = runner.run()
    finally:
        if junit_xml is not None and runner.started:
            write_junit_xml(runner.state.state, junit_xml)
        if timings and runner.started:
            click.echo(timings_table(runner.state.state), err=True)
    click.echo(run_summary(state))


@main.command(short_help="Run a notebook with many parameter sets; register the best.")
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "-p",
    "--parameter",
    "parameters",
    multiple=True,
    nargs=2,
    metavar="NAME VALUES",
    help="Values to try: 100,200,400; with --random also a range LOW:HIGH or LOW:HIGH:log. "
    "One value fixes the parameter for every trial.",
)
@click.option(
    "-f",
    "--parameters-file",
    type=click.Path(path_type=Path),
    help="YAML (or JSON) file of values every trial shares.",
)
@click.option(
    "--random",
    "draws",
    type=click.IntRange(min=1),
    metavar="N",
    help="Draw N trials at random instead of trying every combination.",
)
@click.option("--seed", type=int, help="The random draws' seed (default: a new one, recorded).")
@click.option("--metric", help="The metric that picks the best trial (default: the only one).")
@click.option(
    "--maximize/--minimize",
    "maximize",
    default=None,
    help="Whether higher is better (default: from the metric's name, accuracy or loss).",
)
@click.option(
    "--resume",
    metavar="SWEEP_ID",
    help="Run the trials an interrupted sweep had not finished.",
)
@JOBS_OPTION
@TRACKING_URI_OPTION
@STAGE_OPTIONS
@_runs_dir_option("Where run folders (and the sweep's record) are created.")
@click.option("--stages", "show_stages", is_flag=True, help="Print each trial's stage lines too.")
@ARTIFACT_STORE_OPTION
@EXECUTOR_OPTIONS
@click.option("--sweep-id", hidden=True, help="Use this sweep id (the Jupyter server picks one).")
@click.pass_context
def sweep(
    ctx: click.Context,
    target: Path,
    parameters: tuple[tuple[str, str], ...],
    parameters_file: Path | None,
    draws: int | None,
    seed: int | None,
    metric: str | None,
    maximize: bool | None,
    resume: str | None,
    jobs: int,
    tracking_uri: str | None,
    kernel: str | None,
    stage_timeout: float | None,
    runs_dir: Path | None,
    show_stages: bool,
    artifact_store: str | None,
    executor: str,
    scheduler: str | None,
    sweep_id: str | None,
) -> None:
    """Run a notebook's pipeline once per parameter set, each run nested under one sweep run
    in MLflow; stages that read no swept parameter run once and are shared. The best trial
    by --metric is registered as @candidate, with the table of trials in its model card.

    \b
    jupyter-mlops sweep nb.ipynb -p n_estimators 100,200,400 -p max_depth 4,8,None
    jupyter-mlops sweep nb.ipynb --random 12 --seed 1 -p lr 0.0001:0.1:log --metric auc
    """
    on_cluster = _on_cluster(ctx, executor, scheduler)
    options = RunOptions(
        jobs=jobs,
        tracking_uri=tracking_uri,
        runs_root=runs_dir,
        kernel=kernel,
        stage_timeout=stage_timeout,
        artifact_store=artifact_store,
    )
    listeners = [SweepPrinter()]
    trial_listeners = [ProgressPrinter()] if show_stages else []
    if resume is not None:
        planned = {
            "-p": parameters,
            "-f": parameters_file,
            "--random": draws,
            "--seed": seed,
            "--metric": metric,
            "--maximize/--minimize": maximize,
        }
        given = [name for name, value in planned.items() if value is not None and value != ()]
        if given:
            raise click.UsageError(
                f"--resume runs the sweep as it was planned: leave out {', '.join(given)}", ctx
            )
        sweeper = resume_sweep(target, resume, options, _say_warnings, listeners, trial_listeners)
    else:
        sweeper = plan_sweep(
            target,
            list(parameters),
            options,
            _read_parameters_file(parameters_file),
            draws,
            seed,
            metric,
            maximize,
            _say_warnings,
            listeners,
            trial_listeners,
            sweep_id,
        )
    if on_cluster:
        assert scheduler is not None
        sweeper.on_cluster(scheduler)
    state = sweeper.state
    left = sum(trial.status in TO_RUN for trial in state.trials)
    click.echo(
        f"sweeping `{state.pipeline}`: {left} of {len(state.trials)} trials to run, best by "
        f"{state.objective.describe()}"
        + (f", seed {state.seed}" if state.seed is not None else "")
        + f" (sweep {state.id})",
        err=True,
    )
    state = sweeper.run()
    click.echo(sweep_summary(state, sweeper.folder))
    if state.best is None:
        sys.exit(1)


@main.command(short_help="Prove the pipeline hands on what the notebook computes.")
@click.argument("notebook", type=click.Path(path_type=Path))
@JOBS_OPTION
@click.option("--kernel", help="Kernelspec to run the notebook and the stages with.")
@_runs_dir_option("Where the two runs are made (kept when they differ).")
@click.option("--keep", is_flag=True, help="Keep the runs even when they are identical.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(
    notebook: Path, jobs: int, kernel: str | None, runs_dir: Path | None, keep: bool, as_json: bool
) -> None:
    """Prove the pipeline hands on what the notebook computes; exit 1 when it does not.

    Runs the notebook top to bottom and as a pipeline, side by side, and compares every value a
    stage hands on. Logs nothing to your MLflow store.
    """
    from .verify import verify as run_verify

    def progress(message: str) -> None:
        if not as_json:
            click.echo(click.style("· ", fg="cyan") + message, err=True)

    runs_dir = _project_runs_dir(runs_dir, notebook)
    report = run_verify(notebook, runs_dir, kernel, jobs, progress, keep)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else verify_report(report))
    sys.exit(0 if report.identical else 1)


def _read_parameters_file(path: Path | None) -> dict[str, Any]:
    return read_values_file(path) if path is not None else {}


def _warn(diagnostics: list[Diagnostic]) -> None:
    _say_warnings([str(diagnostic) for diagnostic in diagnostics])


def _say_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(click.style("warning: ", fg="yellow") + warning, err=True)


# --- a pipeline run as a scheduler's tasks (Airflow, Kubeflow): begin, stage..., end ------


def _parameters_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as error:
        raise BadInput(f"--parameters-json is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadInput("--parameters-json must be a JSON object of parameter values")
    return data


@main.command(short_help="Start a run whose stages a scheduler runs; print its id.")
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option(
    "--artifact-store",
    required=True,
    metavar="URI",
    help="Store every task can reach (path or fsspec URL).",
)
@PARAMETER_OPTIONS
@click.option("--parameters-json", metavar="JSON", help="Parameter values as a JSON object.")
@click.option("--tracking-uri", help="MLflow tracking URI every task can reach.")
@click.option("--run-id", help="Use this run id instead of a new one.")
def begin(
    pipeline: Path,
    artifact_store: str,
    parameters: tuple[tuple[str, str], ...],
    parameters_file: Path | None,
    parameters_json: str | None,
    tracking_uri: str | None,
    run_id: str | None,
) -> None:
    """Start a pipeline run whose stages a scheduler runs as tasks; print its run id."""
    bundle = read_bundle(pipeline)
    given = {**_read_parameters_file(parameters_file), **_parameters_json(parameters_json)}
    values = resolve(bundle.parameters, given, list(parameters))
    run = tasks.begin(bundle, values, artifact_store, tracking_uri, run_id)
    click.echo(f"pipeline run of `{bundle.name}`, MLflow run {run.parent_run_id}", err=True)
    click.echo(run.run_id)  # last line of output: what a scheduler passes to the next tasks


@main.command(short_help="Run one stage of a run started with `begin` (one task).")
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.argument("stage_name", metavar="STAGE")
@SCHEDULED_RUN_OPTIONS
@click.option("--kernel", help="Kernelspec to run the stage with.")
@_runs_dir_option("Where this task's run folder goes.")
def stage(
    pipeline: Path,
    stage_name: str,
    run_id: str,
    artifact_store: str,
    kernel: str | None,
    runs_dir: Path | None,
) -> None:
    """Run one stage of a pipeline run started with `begin` (one scheduler task)."""
    bundle = read_bundle(pipeline)
    runs_dir = _project_runs_dir(runs_dir, pipeline)
    tasks.run_stage(bundle, stage_name, artifact_store, run_id, runs_dir, kernel)
    click.echo(f"stage `{stage_name}` of run {run_id} done")


@main.command(short_help="Finish a run started with `begin`: register its models.")
@click.argument("pipeline", type=click.Path(path_type=Path))
@SCHEDULED_RUN_OPTIONS
def end(pipeline: Path, run_id: str, artifact_store: str) -> None:
    """Finish a pipeline run started with `begin`: register models; exit 1 if a stage failed."""
    bundle = read_bundle(pipeline)
    succeeded, models = tasks.end(bundle, artifact_store, run_id)
    for model in models:
        click.echo(f"model: {model_line(model.to_dict())}")
    if not succeeded:
        raise StageFailed(f"pipeline run {run_id} had failed stages", stage="")
    click.echo(f"pipeline run {run_id} of `{bundle.name}` succeeded")


@main.command()
@click.argument("kind", type=click.Choice(["airflow", "kubeflow", "github-actions"]))
@click.argument("target", type=click.Path(path_type=Path))
@_output_option("Folder to write into (a notebook's bundle goes to its bundle/ folder).")
@click.option(
    "--artifact-store",
    metavar="URI",
    help="Store every task can reach (schedulers); default: a local folder.",
)
@click.option("--tracking-uri", help="MLflow tracking URI every task can reach.")
@click.option("--schedule", metavar="CRON", help="Also run on this cron schedule.")
@click.option(
    "--parameters-file",
    type=click.Path(path_type=Path, exists=True),
    help="Smoke parameters for CI runs (github-actions).",
)
@click.option("--image", help="Container image with the pipeline's requirements (kubeflow).")
def export(
    kind: str,
    target: Path,
    out: Path,
    artifact_store: str | None,
    tracking_uri: str | None,
    schedule: str | None,
    parameters_file: Path | None,
    image: str | None,
) -> None:
    """Export a notebook or bundle to a CI workflow or a scheduler."""
    source_notebook = None
    if target.suffix == ".ipynb":
        bundle = convert_notebook(target, out / BUNDLE_FOLDER, _warn).bundle
        source_notebook = target
    else:
        bundle = read_bundle(target)
    options = ExportOptions(
        out=out,
        source_notebook=source_notebook,
        artifact_store=artifact_store,
        tracking_uri=tracking_uri,
        schedule=schedule,
        parameters_file=parameters_file,
        image=image,
    )
    written = exporters()[kind](bundle, options)
    click.echo("wrote " + ", ".join(str(p) for p in written))


@main.command(short_help="Check a model's version; give it an alias if it passes.")
@click.argument("name")
@click.option("--version", "version_number", metavar="N", help="The version (default: @candidate).")
@click.option(
    "--to", default="champion", show_default=True, metavar="ALIAS", help="The alias to move."
)
@click.option(
    "--min",
    "minimums",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Fail below this value (repeatable); over the notebook's declared checks.",
)
@click.option(
    "--max", "maximums", multiple=True, metavar="METRIC=VALUE", help="Fail above this value."
)
@click.option(
    "--beats-champion",
    metavar="METRIC[:MARGIN]",
    help="Be better than the version holding the alias by at least MARGIN (default 0).",
)
@click.option(
    "--signature/--no-signature",
    default=None,
    help="Check the signature matches the champion's (default: on).",
)
@click.option(
    "--smoke-test/--no-smoke-test",
    default=None,
    help="Load the model through pyfunc and predict on its input example (default: on).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Also start `mlflow models serve` and post the input example to /invocations.",
)
@TRACKING_URI_OPTION
@click.option("--dry-run", is_flag=True, help="Run the checks; move and record nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def promote(
    ctx: click.Context,
    name: str,
    version_number: str | None,
    to: str,
    minimums: tuple[str, ...],
    maximums: tuple[str, ...],
    beats_champion: str | None,
    signature: bool | None,
    smoke_test: bool | None,
    serve: bool,
    tracking_uri: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Check a registered model's version and give it an alias (champion) if it passes.

    The checks are those the notebook declares (`metadata.jupyter_mlops.promotion`) with the
    flags laid over them. Exit 0 when promoted, 1 when a check failed (nothing moved).
    """
    from .promote import BeatsChampion, PromotionChecks, parse_threshold
    from .tracking import promote as promote_version
    from .tracking.client import quiet_logs

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per check
    quiet_logs()
    try:
        checks = PromotionChecks(
            min=dict(parse_threshold(text, "--min") for text in minimums),
            max=dict(parse_threshold(text, "--max") for text in maximums),
            beats_champion=BeatsChampion.parse(beats_champion) if beats_champion else None,
            signature=signature,
            smoke_test=smoke_test,
        )
        result = promote_version(
            tracking_uri, name, version_number, to, checks, serve=serve, dry_run=dry_run
        )
    except BadInput as error:  # a name, a version or a flag that isn't there: usage
        raise click.UsageError(str(error), ctx) from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _say_promotion(result)
    sys.exit(0 if result.passed else 1)


def _say_promotion(result: Any) -> None:
    """One line per check (✓/✗, name, figures), then the decision."""
    for check in result.checks:
        symbol = STATUS_SYMBOLS[DONE] if check.passed else STATUS_SYMBOLS[FAILED]
        colour = "green" if check.passed else "red"
        click.echo(f"{click.style(symbol, fg=colour)} {check.name}: {check.detail}")
    version = f"`{result.name}` v{result.version}"
    before = f" (was v{result.champion_before})" if result.champion_before else ""
    failed = [check for check in result.checks if not check.passed]
    if result.dry_run:
        verdict = "would be promoted" if result.passed else "would not be promoted"
        now = f" (now v{result.champion_before})" if result.champion_before else ""
        click.echo(f"dry run: {version} {verdict} to @{result.to}{now}; nothing was changed")
    elif not result.passed:
        count = f"{len(failed)} of {len(result.checks)} checks failed"
        click.echo(click.style(f"not promoted: {count}; @{result.to} not moved", fg="red"))
    elif result.champion_before == result.version:
        click.echo(f"{version} already is @{result.to}; its checks pass")
    else:
        click.echo(click.style(f"promoted {version} to @{result.to}{before}", fg="green"))


@main.command("log", short_help="Upload a run folder's results to MLflow (after an outage).")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--tracking-uri", help="Where to log (default: the run's own tracking URI).")
def log_run(run_dir: Path, tracking_uri: str | None) -> None:
    """Upload a run folder's results to MLflow, e.g. after the server was unreachable."""
    state = upload(run_dir, tracking_uri).state
    where = without_credentials(state.tracking_uri or "")
    click.echo(f"logged run {state.id} to {where}: MLflow run {state.parent_run_id}")
    for model in state.models:
        click.echo(f"model: {model_line(model)}")
