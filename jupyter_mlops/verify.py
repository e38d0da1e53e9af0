"""`jupyter-mlops verify`: proof, for the user's own notebook, that the pipeline computes what
the notebook computes.

The notebook runs once top to bottom in one kernel, as papermill runs it, with a generated
cell after each stage's last cell that writes the values the stage hands on (into a store of
its own, by the same code the stages use). Then the pipeline runs. Each handed-over value is
compared by a content digest; the first that differs is described (type, shape, dtypes, how
many elements differ and where the first is). A value that differs is checked against a second
plain run: when two plain runs disagree too, the notebook itself draws unseeded random numbers
there, and the report says so rather than blaming the split.

Digests are taken here, in one process, over values loaded from both stores and pickled with
the notebook's own functions and classes by name, so the file names of kernel cells (part of
a pickled function's code) don't make equal values differ.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FunctionType
from typing import Any

import cloudpickle

from .analysis import Analysis, Stage
from .artifacts import ArtifactStore, code_fingerprint, open_store
from .bundle import reference_notebook
from .errors import MlopsError, NotebookFailed, RunInterrupted
from .files import atomic_write, papermill_path
from .notebooks import SourceNotebook
from .pipeline import open_pipeline, prepare
from .run.kernels import StageKernelManager, choose_kernel
from .run.runner import RunOptions, new_run_id
from .state import RANDOM_STATE
from .tracking.client import quiet_logs

Progress = Callable[[str], None]
METRIC = "metric:"  # a metric a stage logs, compared beside the values it hands on
RANDOMNESS_RUNS = 3  # more plain runs, at most, to tell a divergence from unseeded randomness


@dataclass
class Difference:
    """One handed-over value that is not what the notebook computed."""

    stage: str
    variable: str
    readers: list[str]  # the stages that read it
    cell: int | None  # the stage's last cell that sets it: where to look
    detail: str
    unseeded: bool = False  # two plain runs of the notebook disagree on it too

    @property
    def metric(self) -> bool:
        return self.variable.startswith(METRIC)

    @property
    def label(self) -> str:
        if self.variable.startswith(METRIC):
            return f"metric `{self.variable.removeprefix(METRIC)}`"
        name, _, generator = self.variable.partition(".")
        return f"the state of {generator}'s random generator" if generator else name


@dataclass
class VerifyReport:
    notebook: str
    folder: str  # the executed notebooks and the pipeline run, to look into
    stages: int
    values: int  # handed-over values compared
    plain_seconds: float
    pipeline_seconds: float
    differences: list[Difference] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """No difference but those the notebook itself doesn't reproduce."""
        return all(d.unseeded for d in self.differences)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["identical"] = self.identical
        for entry, difference in zip(data["differences"], self.differences, strict=True):
            entry["label"] = difference.label
        return data


def verify(
    notebook: Path,
    runs_dir: Path,
    kernel: str | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    keep: bool = False,
) -> VerifyReport:
    """Run the notebook plainly and as a pipeline, and compare what the stages hand on."""
    say = progress or (lambda _: None)
    pipeline = open_pipeline(notebook)
    source, analysis = pipeline.source, pipeline.analysis
    assert source is not None and analysis is not None
    folder = (runs_dir / analysis.settings.pipeline / f"verify-{new_run_id()}").resolve()
    folder.mkdir(parents=True)
    kernel_name = choose_kernel(kernel, analysis.settings.kernel).name

    say(
        f"running it top to bottom, as papermill does, and as a pipeline of {len(analysis.stages)}"
        " stages, side by side"
    )
    options = RunOptions(
        jobs=jobs,
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        runs_root=folder / "runs",
        kernel=kernel,
        use_cache=False,
    )
    runner = prepare(pipeline, options)
    quiet_logs(logging.WARNING)  # the temporary store announcing its tables
    # Connecting sets MLflow's fail-fast settings in os.environ, which the plain run's thread
    # reads: done here, before that thread starts.
    runner.connect()
    # The two runs are independent: the plain one in a thread, the pipeline here (its runner
    # stops its kernels on signals, which only the main thread receives).
    kernels: list[StageKernelManager] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        plain_run = pool.submit(
            _timed, _plain_run, source, analysis, folder / "plain-1", kernel_name, kernels
        )
        started = time.monotonic()
        try:
            runner.run()  # a stage that fails raises StageFailed: the pipeline does not compute it
        except (RunInterrupted, KeyboardInterrupt):  # Ctrl-C, SIGTERM: the plain run stops too
            for kernel_manager in kernels:
                kernel_manager.kill_now()
            raise
        except MlopsError:
            plain_run.result()  # the notebook itself failing is the first thing to fix
            raise
        pipeline_seconds = time.monotonic() - started
        plain, plain_seconds = plain_run.result()

    say("comparing the values the stages hand on")
    report = VerifyReport(
        notebook=str(notebook),
        folder=str(folder),
        stages=len(analysis.stages),
        values=sum(len(s.outputs) + len(s.metrics) for s in analysis.stages),
        plain_seconds=round(plain_seconds, 2),
        pipeline_seconds=round(pipeline_seconds, 2),
    )
    report.differences = _compare(analysis, plain, runner.store)
    # A value that differs may be the notebook's own unseeded randomness: then plain runs
    # disagree too. They may agree by chance (a die cast twice), so up to three more runs.
    generators = analysis.random_generators
    for attempt in range(2, 2 + RANDOMNESS_RUNS):
        suspects = [d for d in report.differences if not d.unseeded]
        if not suspects:
            break
        say("a value differs: running the notebook once more, to tell randomness apart")
        again = _plain_run(source, analysis, folder / f"plain-{attempt}", kernel_name)
        for difference in suspects:
            stage = analysis.stage(difference.stage)
            first = _handed_over(plain, stage, generators).get(difference.variable)
            other = _handed_over(again, stage, generators).get(difference.variable)
            difference.unseeded = not equivalent(first, other)
    _clean_up(report, keep)
    return report


def _timed(action: Callable[..., ArtifactStore], *arguments: Any) -> tuple[ArtifactStore, float]:
    started = time.monotonic()
    return action(*arguments), time.monotonic() - started


def _plain_run(
    source: SourceNotebook,
    analysis: Analysis,
    folder: Path,
    kernel: str,
    kernels: list[StageKernelManager] | None = None,
) -> ArtifactStore:
    """The notebook run top to bottom in one kernel, writing what each stage hands on."""
    import papermill
    from nbformat.v4.nbjson import writes

    store = folder / "values"
    nb = reference_notebook(source, analysis, str(store))
    folder.mkdir(parents=True)
    atomic_write(folder / "notebook.ipynb", writes(nb) + "\n")
    cwd = source.path.parent if source.path else folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_RUN")}
    # The notebook's own mlflow calls must not land in the user's store either.
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder.parent / 'mlflow.db'}"
    with open(folder / "kernel.log", "w", encoding="utf-8") as log:
        kernel_manager = StageKernelManager(kernel_name=kernel, cwd=str(cwd), env=env, log=log)
        if kernels is not None:  # for the caller to stop, if it must
            kernels.append(kernel_manager)
        try:
            papermill.execute_notebook(
                papermill_path(folder / "notebook.ipynb"),
                papermill_path(folder / "executed.ipynb"),
                kernel_name=kernel,
                km=kernel_manager,
                progress_bar=False,
                stdout_file=log,
                stderr_file=log,
            )
        except papermill.PapermillExecutionError as error:
            origin = nb.cells[error.cell_index].metadata.get("jupyter_mlops", {})
            cell = origin.get("source_cell")
            where = f"cell {cell}" if cell is not None else "a generated cell"
            raise NotebookFailed(
                f"the notebook itself does not run top to bottom: {where} raised "
                f"{error.ename}: {error.evalue}. Fix the notebook first (the executed "
                f"notebook: {folder / 'executed.ipynb'})"
            ) from None
        finally:
            kernel_manager.shutdown()
    return open_store(store)


def _handed_over(store: ArtifactStore, stage: Stage, generators: list[str]) -> dict[str, Any]:
    """What a stage hands on and the metrics it logs. The random generators' state is split
    into one value per generator the notebook seeds (the others are carried too, but nobody
    can expect them to match)."""
    values = store.load(stage.name, stage.outputs) if stage.outputs else {}
    state = values.pop(RANDOM_STATE, None) or {}
    for generator in generators:
        if generator in state:
            values[f"{RANDOM_STATE}.{generator}"] = state[generator]
    if stage.metrics:
        for name, value in store.read_record(stage.name).metrics.items():
            values[METRIC + name] = value
    return values


def _compare(analysis: Analysis, plain: ArtifactStore, pipeline: ArtifactStore) -> list[Difference]:
    differences = []
    for stage in analysis.stages:
        if not stage.outputs and not stage.metrics:
            continue
        expected = _handed_over(plain, stage, analysis.random_generators)
        got = _handed_over(pipeline, stage, analysis.random_generators)
        for variable in sorted(set(expected) | set(got)):
            if variable in expected and variable in got:
                if equivalent(expected[variable], got[variable]):
                    continue
                detail = describe(expected[variable], got[variable])
            else:
                detail = (
                    "only the " + ("notebook" if variable in expected else "pipeline") + " has it"
                )
            name = variable.removeprefix(METRIC).partition(".")[0]
            readers = [s.name for s in analysis.stages if s.inputs.get(name) == stage.name]
            setters = [
                i
                for i in stage.cells
                if (code := analysis.cells[i].code) is not None and name in code.touched
            ]
            differences.append(
                Difference(
                    stage=stage.name,
                    variable=variable,
                    readers=readers,
                    cell=setters[-1] if setters else stage.cells[0],
                    detail=detail,
                )
            )
    return differences


class _DigestPickler(cloudpickle.Pickler):
    """Pickles for a digest: what a value *is*, not how it happens to be laid out. The
    notebook's own functions and classes by name and code; arrays by shape, dtype and elements in C
    order (a transposed copy is the same array); data frames by index, columns, dtypes and
    column values (pandas' internal blocks differ after a round trip through pickle)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type | FunctionType) and getattr(obj, "__module__", "") == "__main__":
            return _canonical, ("notebook object", obj.__qualname__, code_fingerprint(obj))
        numpy = sys.modules.get("numpy")
        if numpy is not None and type(obj) is numpy.ndarray and not obj.dtype.hasobject:
            # As bytes: datetimes and other dtypes have no buffer format of their own.
            data = pickle.PickleBuffer(numpy.ascontiguousarray(obj).reshape(-1).view(numpy.uint8))
            return _canonical, ("ndarray", obj.shape, obj.dtype.str, data)
        pandas = sys.modules.get("pandas")
        if pandas is not None and type(obj) is pandas.DataFrame:
            columns = [obj.iloc[:, i] for i in range(obj.shape[1])]
            return _canonical, ("DataFrame", obj.index, list(obj.columns), columns, obj.attrs)
        if pandas is not None and type(obj) is pandas.Series:
            return _canonical, ("Series", obj.name, obj.index, str(obj.dtype), obj.to_numpy())
        return super().reducer_override(obj)


def _canonical(*what: Any) -> Any:  # never called: digests are not unpickled
    return what


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: Any) -> int:  # bytes, or a large buffer the pickler hands as is
        self.hash.update(data)
        return memoryview(data).nbytes


def digest(value: Any) -> str:
    """A content digest of a value: equal values computed the same way digest the same."""
    sink = _HashSink()
    _DigestPickler(sink, protocol=5).dump(value)
    return sink.hash.hexdigest()


def equivalent(expected: Any, got: Any) -> bool:
    """Whether two values are the same, down to the objects they are made of. Digests compare
    whole object graphs, so two equal objects whose parts are shared differently (a view of an
    array in one, a copy in the other) differ by digest; their parts are compared then."""
    return _equivalent(expected, got, set(), 0)


def _equivalent(expected: Any, got: Any, seen: set[tuple[int, int]], depth: int) -> bool:
    try:
        if digest(expected) == digest(got):
            return True
    except Exception:  # a part that can't be pickled alone (a weak reference in a figure)
        return False
    if type(expected) is not type(got) or depth > 20 or (id(expected), id(got)) in seen:
        return (id(expected), id(got)) in seen
    seen.add((id(expected), id(got)))
    if isinstance(expected, dict):
        return expected.keys() == got.keys() and all(
            _equivalent(expected[k], got[k], seen, depth + 1) for k in expected
        )
    if isinstance(expected, list | tuple):
        return len(expected) == len(got) and all(
            _equivalent(a, b, seen, depth + 1) for a, b in zip(expected, got, strict=True)
        )
    parts, others = _state(expected), _state(got)
    if isinstance(parts, dict) and isinstance(others, dict):
        return _equivalent(parts, others, seen, depth + 1)
    return False


def _state(value: Any) -> Any:
    """What pickling an object keeps of it (its `__getstate__`), else its attributes."""
    try:
        return value.__getstate__()
    except Exception:
        return getattr(value, "__dict__", None)


# --- saying how two values differ --------------------------------------------------------------


def describe(expected: Any, got: Any) -> str:
    """How the pipeline's value differs from the notebook's, in a sentence."""
    if type(expected) is not type(got):
        return f"the notebook has a {_type(expected)}, the pipeline a {_type(got)}"
    pandas = _module_of(expected, "pandas")
    numpy = _module_of(expected, "numpy")
    if pandas is not None and isinstance(expected, pandas.DataFrame | pandas.Series):
        return _describe_pandas(pandas, expected, got)
    if numpy is not None and isinstance(expected, numpy.ndarray):
        return _describe_array(numpy, expected, got)
    if isinstance(expected, dict):
        return _describe_mapping(expected, got)
    if isinstance(expected, list | tuple):
        return _describe_sequence(expected, got)
    if isinstance(expected, int | float | str | bool | complex) or expected is None:
        return f"the notebook has {expected!r}, the pipeline {got!r}"
    return f"{_type(expected)} objects with different contents"


def _type(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _module_of(value: Any, name: str) -> Any:
    """The library, if the value could be one of its objects (it is imported, then)."""
    return sys.modules.get(name) if type(value).__module__.startswith(name) else None


def _describe_array(numpy: Any, expected: Any, got: Any) -> str:
    if expected.shape != got.shape:
        return f"array shapes differ: notebook {expected.shape}, pipeline {got.shape}"
    if expected.dtype != got.dtype:
        return f"array dtypes differ: notebook {expected.dtype}, pipeline {got.dtype}"
    try:
        same = (expected == got) | (_isnan(numpy, expected) & _isnan(numpy, got))
    except (TypeError, ValueError):
        return f"arrays of shape {expected.shape} and dtype {expected.dtype} differ"
    differing = numpy.argwhere(~numpy.asarray(same))
    if not len(differing):
        return f"arrays of shape {expected.shape}, equal but not bit for bit (-0.0, NaN payloads)"
    first = tuple(int(i) for i in differing[0])
    return (
        f"array of shape {expected.shape}, dtype {expected.dtype}: {len(differing)} of "
        f"{expected.size} elements differ, the first at index {first}: notebook "
        f"{_item(expected[first])}, pipeline {_item(got[first])}"
    )


def _isnan(numpy: Any, array: Any) -> Any:
    try:
        return numpy.isnan(array)
    except TypeError:
        return numpy.zeros(array.shape, dtype=bool)


def _describe_pandas(pandas: Any, expected: Any, got: Any) -> str:
    kind = type(expected).__name__
    if expected.shape != got.shape:
        return f"{kind} shapes differ: notebook {expected.shape}, pipeline {got.shape}"
    if isinstance(expected, pandas.DataFrame):
        if list(expected.columns) != list(got.columns):
            columns = f"notebook {list(expected.columns)}, pipeline {list(got.columns)}"
            return f"{kind} columns differ: {columns}"
        dtypes = [
            f"{c!r}: notebook {a}, pipeline {b}"
            for c, a, b in zip(expected.columns, expected.dtypes, got.dtypes, strict=True)
            if a != b
        ]
        if dtypes:
            return f"{kind} dtypes differ ({'; '.join(dtypes[:3])})"
    elif expected.dtype != got.dtype:
        return f"{kind} dtypes differ: notebook {expected.dtype}, pipeline {got.dtype}"
    if not expected.index.equals(got.index):
        return f"{kind} of shape {expected.shape}: the index differs"
    frame_a = expected.to_frame() if isinstance(expected, pandas.Series) else expected
    frame_b = got.to_frame() if isinstance(got, pandas.Series) else got
    same = (frame_a == frame_b) | (frame_a.isna() & frame_b.isna())
    differing = [
        (row, column)
        for column in same.columns
        for row, equal in zip(same.index, same[column], strict=True)
        if not equal
    ]
    if not differing:
        return f"{kind} of shape {expected.shape}: equal values, different internal layout"
    row, column = differing[0]
    where = f"row {row!r}" + (
        f", column {column!r}" if isinstance(expected, pandas.DataFrame) else ""
    )
    return (
        f"{kind} of shape {expected.shape}: {len(differing)} of {frame_a.size} values differ, "
        f"the first at {where}: notebook {_item(frame_a.at[row, column])}, pipeline "
        f"{_item(frame_b.at[row, column])}"
    )


def _describe_mapping(expected: dict, got: dict) -> str:
    if set(expected) != set(got):
        missing = sorted(map(repr, set(expected) - set(got)))[:3]
        extra = sorted(map(repr, set(got) - set(expected)))[:3]
        return f"dict keys differ (only in the notebook: {missing}, only in the pipeline: {extra})"
    for key in expected:
        if digest(expected[key]) != digest(got[key]):
            return f"dict entry {key!r} differs: {describe(expected[key], got[key])}"
    return "dicts with the same entries in a different order"


def _describe_sequence(expected: list | tuple, got: list | tuple) -> str:
    kind = type(expected).__name__
    if len(expected) != len(got):
        return f"{kind} lengths differ: notebook {len(expected)}, pipeline {len(got)}"
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        if digest(a) != digest(b):
            return f"{kind} of {len(expected)}: item {index} differs: {describe(a, b)}"
    return f"{kind}s of {len(expected)} equal items that pickle differently"


def _item(value: Any) -> str:
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # a NumPy scalar: shown as the Python number it is
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _clean_up(report: VerifyReport, keep: bool) -> None:
    """An identical verification leaves nothing to look into: its folder goes."""
    if report.identical and not keep:
        shutil.rmtree(report.folder, ignore_errors=True)
        report.folder = ""
