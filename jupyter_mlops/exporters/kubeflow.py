"""A Kubeflow Pipelines (v2) pipeline, compiled by the kfp SDK: `begin`, one task per stage, `end`.

Every task is a container component running the `jupyter-mlops` command on the bundle baked
into the image at `/pipeline/bundle` (see docs/KUBEFLOW.md): `begin` starts the MLflow
parent run with the pipeline parameters and outputs the run id as a parameter; each stage
task takes it and runs `jupyter-mlops stage`, which executes the stage's papermill notebook
and logs it; `end` runs after every stage, even failed ones, registers the models and ends
the parent run FINISHED or FAILED (failing the pipeline run when a stage failed). Values
cross stages through the shared artifact store, not through Kubeflow artifacts, so a stage
reads exactly what it would read on a laptop.

The kfp SDK is needed only here, at export time, and pins protobuf versions that may not
suit the environment running the pipelines, so it is imported lazily and not a dependency.
"""

# No `from __future__ import annotations`: kfp reads the annotations of the functions below
# as types, and would get strings.

import inspect
import json
import re
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from ..bundle import Bundle
from ..errors import BadInput
from ..files import atomic_write
from ..parameters import Parameter
from . import ExportOptions, check_inputs, printable

BUNDLE_IN_IMAGE = "/pipeline/bundle"
KFP_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list,
    "dict": dict,
    "any": str,  # given as YAML/JSON text, parsed by `jupyter-mlops begin -p`
}
# `begin` prints the run id as its last output line; the output parameter is that line.
BEGIN_SCRIPT = """\
set -e
run_id_file="$1"
shift
jupyter-mlops begin "$@" > /tmp/begin-output
cat /tmp/begin-output
mkdir -p "$(dirname "$run_id_file")"
printf %s "$(tail -n 1 /tmp/begin-output)" > "$run_id_file"
"""


def export(bundle: Bundle, options: ExportOptions) -> list[Path]:
    check_inputs(bundle, options)
    if not options.artifact_store:
        raise BadInput(
            "Kubeflow runs each stage in its own pod, and pods share no disk: pass "
            "--artifact-store with a URL every pod can reach, such as s3://BUCKET/PREFIX "
            "(or the path of a volume you mount into every pod)"
        )
    try:
        from kfp import compiler
    except ImportError:
        raise BadInput(
            "the Kubeflow export compiles the pipeline with the kfp SDK, which is not "
            "installed here: pip install kfp"
        ) from None
    path = options.out / f"{_name(bundle.name)}.yaml"
    with tempfile.TemporaryDirectory() as temporary:
        compiled = Path(temporary) / path.name
        compiler.Compiler().compile(pipeline_function(bundle, options), str(compiled))
        text = _comments_made_safe(compiled.read_text(encoding="utf-8"))
        atomic_write(path, _header(bundle, options) + text)
    return [path]


def pipeline_function(bundle: Bundle, options: ExportOptions) -> Any:
    """The `@dsl.pipeline` for the bundle: parameters in, begin -> stages -> end."""
    from kfp import dsl

    image = _image(bundle, options)
    pipeline_yaml = f"{BUNDLE_IN_IMAGE}/pipeline.yaml"
    store = ["--artifact-store", str(options.artifact_store)]
    tracking = ["--tracking-uri", options.tracking_uri] if options.tracking_uri else []

    def begin(*values: Any) -> dsl.ContainerSpec:
        run_id, *given = values
        arguments: list[Any] = [run_id, pipeline_yaml, *store, *tracking]
        for parameter, value in zip(bundle.parameters, given, strict=True):
            passed = ["-p", parameter.name, value]
            if parameter.default is None:  # absent unless the run sets it
                arguments.append(dsl.IfPresentPlaceholder(input_name=parameter.name, then=passed))
            else:
                arguments += passed
        return dsl.ContainerSpec(
            image=image, command=["sh", "-c", BEGIN_SCRIPT, "begin"], args=arguments
        )

    begin_component = dsl.container_component(
        _with_signature(
            begin,
            "Start the pipeline run: the MLflow parent run; outputs the run id.",
            bundle.parameters,
            output=inspect.Parameter("run_id", _KEYWORD, annotation=dsl.OutputPath(str)),
        )
    )

    def run_command(*command: str) -> Callable[..., Any]:
        def task(run_id: str) -> dsl.ContainerSpec:
            return dsl.ContainerSpec(
                image=image,
                command=["jupyter-mlops", *command, "--run-id", run_id, *store],
            )

        return task

    stage_components = {}
    for stage in bundle.stages:
        task = run_command("stage", pipeline_yaml, stage.name)
        task.__name__ = stage.name
        task.__doc__ = f"Run stage `{stage.name}` of the pipeline run."
        stage_components[stage.name] = dsl.container_component(task)
    end = run_command("end", pipeline_yaml)
    end.__name__ = "end"
    # A default, which kfp requires of a task that runs after failed ones: if `begin` failed,
    # `end` fails on the empty run id.
    end.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("run_id", _KEYWORD, default="", annotation=str)]
    )
    end.__doc__ = "Register the models and end the MLflow run; fail if a stage failed."
    end_component = dsl.container_component(end)

    def pipeline(*values: Any) -> None:
        given = {p.name: value for p, value in zip(bundle.parameters, values, strict=True)}
        began = begin_component(**given).set_caching_options(False)
        run_id = began.outputs["run_id"]
        tasks: dict[str, Any] = {}
        for stage in bundle.stages:  # in run order: upstream stages come first
            task = stage_components[stage.name](run_id=run_id).set_caching_options(False)
            for name in stage.upstream:
                task.after(tasks[name])
            tasks[stage.name] = task
        finish = end_component(run_id=run_id).set_caching_options(False)
        finish.after(*tasks.values()).ignore_upstream_failure()

    return dsl.pipeline(name=_name(bundle.name), description=_description(bundle))(
        _with_signature(pipeline, _description(bundle), bundle.parameters)
    )


_KEYWORD = inspect.Parameter.POSITIONAL_OR_KEYWORD


def _with_signature(
    function: Callable[..., Any],
    summary: str,
    parameters: list[Parameter],
    output: inspect.Parameter | None = None,
) -> Callable[..., Any]:
    """Give `function` the typed signature kfp reads: one argument per pipeline parameter.

    kfp builds a component's or pipeline's inputs from the signature and their descriptions
    from the docstring's Args section, then calls the function positionally.
    """
    arguments = [
        inspect.Parameter(p.name, _KEYWORD, default=_default(p), annotation=_annotation(p))
        for p in parameters
    ]
    signature = [*([output] if output else []), *arguments]  # defaults last, as Python wants
    function.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    described = [f"    {p.name}: {p.help}" for p in parameters if p.help]
    function.__doc__ = summary + ("\n\nArgs:\n" + "\n".join(described) if described else "")
    return function


def _annotation(parameter: Parameter) -> Any:
    kind = KFP_TYPES[parameter.type]
    return Optional[kind] if parameter.default is None else kind  # noqa: UP045 (kfp reads Optional)


def _default(parameter: Parameter) -> Any:
    if parameter.type != "any" or parameter.default is None:
        return parameter.default
    try:
        return json.dumps(parameter.default)
    except TypeError:
        raise BadInput(
            f"parameter `{parameter.name}` has a default Kubeflow can't carry: "
            f"{parameter.default!r}; give it a type and a plain default"
        ) from None


def _name(pipeline: str) -> str:
    """A name Kubeflow accepts: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", pipeline.lower()).strip("-") or "pipeline"


def _description(bundle: Bundle) -> str:
    origin = f" from {Path(bundle.source_notebook).name}" if bundle.source_notebook else ""
    # One line: kfp reads the parameters' descriptions from the lines that follow.
    text = f"jupyter-mlops pipeline {bundle.name}{origin}: one task per stage."
    return printable(text).replace("\n", " ")


def _header(bundle: Bundle, options: ExportOptions) -> str:
    text = (
        f"Kubeflow pipeline `{_name(bundle.name)}`, compiled by `jupyter-mlops export kubeflow`; "
        "regenerate it rather than editing. Every task runs `jupyter-mlops` in image "
        f"{_image(bundle, options)}, which holds the bundle at {BUNDLE_IN_IMAGE} (see "
        "docs/KUBEFLOW.md in jupyter-mlops)."
    )
    lines = textwrap.wrap(printable(text), 98, break_on_hyphens=False)
    return "".join(f"# {line}\n" for line in lines)


def _comments_made_safe(compiled: str) -> str:
    """kfp's file with its leading comment block made of comment lines only.

    kfp writes the pipeline's name, description and each input's default as comments above
    the YAML, the defaults as they are: a default holding a line break ended its comment line
    and the rest was read as YAML (a multi-line default made the file invalid, a crafted one
    could add a key). The YAML is PyYAML's ASCII output, whose first key, `components:`, is the
    last line starting so; every line above it becomes a comment, unprintable characters
    escaped.
    """
    start = 0 if compiled.startswith("components:") else compiled.rfind("\ncomponents:") + 1
    lines = [printable(line) for line in compiled[:start].splitlines()]
    comments = [line if line.startswith("#") else f"#    {line}" for line in lines]
    return "".join(f"{line}\n" for line in comments) + compiled[start:]


def _image(bundle: Bundle, options: ExportOptions) -> str:
    return options.image or f"{_name(bundle.name)}:latest"
