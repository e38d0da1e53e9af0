"""Pipeline parameters: reading the ``parameters`` cell and checking values given for a run.

The cell is papermill's, so it stays plain assignments of literals; we also read type
annotations and trailing comments (``n_estimators: int = 100  # trees in the forest``) to give
the UI a typed form and the CLI a validation that fails before anything runs. Values are
always handed to papermill as data (numbers, strings, lists...), never as code.

A value is checked once and must reach the stage as it was checked, through the Jupyter
server (JSON), a `-f` file (JSON or YAML), `-p` text and pipeline.yaml alike. So every value
follows one rule (:func:`check_value`: what JSON can hold, exactly), and every reader and
writer here types numbers the same way: `1e-05`, `NaN` and `Infinity` are floats in YAML as
in JSON, where YAML 1.1 (PyYAML's) would read them as strings.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import math
import re
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import BadInput
from .files import _ReadableDumper

TYPES = ("int", "float", "str", "bool", "list", "dict", "any")
RESERVED = frozenset({"mlops_artifacts"})
MAX_DEPTH = 100  # lists and dicts nested deeper than this are refused (JSON and papermill recurse)

_INT_TEXT = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    help: str = ""
    cell: int | None = None
    line: int | None = None
    optional: bool = False  # `x: int | None = None` accepts None as well

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ParameterProblem(ValueError):
    """A parameters-cell line we cannot use; carries the line for the diagnostic."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def parse_parameters(python: str, cell: int | None = None) -> list[Parameter]:
    """Read a parameters cell (already free of IPython syntax). Raises ParameterProblem."""
    try:
        return _parse_parameters(python, cell)
    except RecursionError:  # `x = a + a + ...` with ~1000 terms: no literal, and too deep
        raise ParameterProblem(
            "an expression is nested too deeply to read; parameters must be literal values",
            None,
        ) from None


def _parse_parameters(python: str, cell: int | None) -> list[Parameter]:
    tree = ast.parse(python)
    comments = _trailing_comments(python)
    found: dict[str, Parameter] = {}  # by name; assigned again, a name moves to the end
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            names, annotation, value = [stmt.target.id], stmt.annotation, stmt.value
        elif isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            names, annotation, value = [t.id for t in stmt.targets], None, stmt.value  # type: ignore[attr-defined]
        else:
            raise ParameterProblem(f"`{_line(stmt)}` is not a plain assignment", stmt.lineno)
        if value is None:
            raise ParameterProblem(f"`{_line(stmt)}` has no default value", stmt.lineno)
        try:
            default = ast.literal_eval(value)
        except ValueError:
            raise ParameterProblem(
                f"`{_line(stmt)}` assigns an expression; parameters must be literal values "
                "(numbers, strings, lists, dicts, True/False/None) so a run can override them",
                stmt.lineno,
            ) from None
        declared, optional = _annotation_type(annotation, stmt.lineno)
        kind = declared or infer_type(default)
        try:
            check_value(default, names[0])
            if declared and not (default is None and optional):
                default = coerce(kind, default, name=names[0])
        except BadInput as error:
            raise ParameterProblem(str(error), stmt.lineno) from None
        for name in names:
            if name in RESERVED:
                raise ParameterProblem(f"`{name}` is reserved by jupyter-mlops", stmt.lineno)
            found.pop(name, None)
            found[name] = Parameter(
                name=name,
                type=kind,
                default=default,
                help=comments.get(stmt.lineno, ""),
                cell=cell,
                line=stmt.lineno,
                optional=optional or default is None,
            )
    return list(found.values())


def python_literal(value: Any) -> str:
    """Python source for a parameter value, for a generated parameters cell.

    `repr` everywhere but where it is not Python: a float that overflowed (`1e999`) or is
    not a number reprs as `inf`/`nan`, which would be a NameError in the stage's kernel.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(map(python_literal, value)) + "]"
    if isinstance(value, tuple):
        items = ", ".join(map(python_literal, value))
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, set) and value:
        return "{" + ", ".join(map(python_literal, value)) + "}"
    if isinstance(value, dict):
        pairs = (f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return repr(value)


def infer_type(value: Any) -> str:
    for kind, python_type in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, python_type):
            return kind
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "any"


def _annotation_type(node: ast.expr | None, line: int) -> tuple[str | None, bool]:
    """The declared type of `x: ANNOTATION = ...` and whether None is allowed."""
    if node is None:
        return None, False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        parts = [node.left, node.right]
        nones = [p for p in parts if isinstance(p, ast.Constant) and p.value is None]
        others = [p for p in parts if p not in nones]
        if len(nones) == 1 and len(others) == 1:
            return _annotation_type(others[0], line)[0], True
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id == "Optional":
            return _annotation_type(node.slice, line)[0], True
        node = node.value
    if isinstance(node, ast.Name) and node.id in TYPES:
        return node.id, False
    if isinstance(node, ast.Constant) and node.value in TYPES:
        return str(node.value), False
    raise ParameterProblem(
        f"unsupported parameter type `{ast.unparse(node)}`: use one of {', '.join(TYPES[:-1])}",
        line,
    )


def _trailing_comments(python: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(python).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        pass
    return comments


def _line(stmt: ast.stmt) -> str:
    return ast.unparse(stmt).splitlines()[0]


# --- values given for a run ------------------------------------------------------------


def check_value(value: Any, name: str) -> None:
    """Refuse what a run could not pass on exactly: the one rule for defaults and values.

    A value travels as JSON (the server's request, parameters.json), YAML (params.yaml,
    pipeline.yaml) and Python source (papermill's injected cell): None, booleans, numbers,
    valid Unicode strings, and lists and string-keyed dicts of these survive all three. A
    tuple would arrive as a list, `{1: 'a'}` as `{'1': 'a'}`, bytes and sets as strings,
    and a lone surrogate stops whatever writes it. Iterative, so depth is a message, not a
    RecursionError.
    """
    pending: list[tuple[Any, str, int]] = [(value, name, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item, name, where)
        elif item is None or isinstance(item, bool | int | float):
            continue
        elif depth >= MAX_DEPTH:
            raise BadInput(
                f"parameter `{name}` is nested more than {MAX_DEPTH} levels deep; "
                "pass flatter values"
            )
        elif isinstance(item, list):
            pending += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(item)]
        elif isinstance(item, dict):
            for key, entry in item.items():
                if not isinstance(key, str):
                    raise BadInput(
                        f"parameter `{name}`{_at(name, where)} has the key {key!r}, which a run "
                        f"would pass on as the string {str(key)!r}; use string keys"
                    )
                _check_text(key, name, where)
                pending.append((entry, f"{where}[{key!r}]", depth + 1))
        else:
            raise BadInput(_unsupported(item, name, where))


def _unsupported(value: Any, name: str, where: str) -> str:
    everything = "None, a bool, a number, a string, or a list or string-keyed dict of these"
    what, instead = {
        tuple: ("a tuple", "a list"),
        set: ("a set", "a list"),
        frozenset: ("a set", "a list"),
        bytes: ("bytes", "a string"),
        bytearray: ("bytes", "a string"),
        complex: ("a complex number", "two numbers"),
        type(...): ("`...`", everything),
    }.get(type(value), (f"a {type(value).__name__}", everything))
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return (
        f"parameter `{name}`{_at(name, where)} is {what} ({shown}), which a run can't pass on "
        f"as it is (parameters travel as JSON); use {instead}"
    )


def _check_text(text: str, name: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = text[error.start]
        raise BadInput(
            f"parameter `{name}`{_at(name, where)} is not valid Unicode text (it holds the "
            f"lone surrogate {char!r}); send the text as UTF-8"
        ) from None


def _at(name: str, where: str) -> str:
    return "" if where == name else f" (at `{where}`)"


def coerce(kind: str, value: Any, name: str, from_text: bool = False) -> Any:
    """Check one value against a parameter type, converting where it is lossless.

    ``from_text`` values come from the command line (`-p n 10`) and are parsed; values from
    YAML or JSON are already typed and must match.
    """
    if from_text:
        value = _parse_text(kind, value, name)
    check_value(value, name)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list | tuple),
        "dict": isinstance(value, dict),
        "any": True,
    }[kind]
    if not ok:
        hint = ""
        if kind == "str" and isinstance(value, int | float):  # `tag: 1e-05` in a YAML file
            hint = "; quote it to pass it as text"
        raise BadInput(f"parameter `{name}` must be {_a(kind)}, got {value!r}{hint}")
    if kind == "float":
        try:
            return float(value)
        except OverflowError:
            raise BadInput(f"parameter `{name}` is too large for a float, got {value}") from None
    if kind == "list":
        return list(value)
    return value


def _parse_text(kind: str, text: Any, name: str) -> Any:
    if not isinstance(text, str):
        return text
    if kind == "int":
        if not _INT_TEXT.fullmatch(text.strip()):
            raise BadInput(f"parameter `{name}` must be an integer, got {text!r}")
        return int(text)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise BadInput(f"parameter `{name}` must be a number, got {text!r}") from None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise BadInput(f"parameter `{name}` must be true or false, got {text!r}")
    if kind == "str":
        return text
    try:
        return load_yaml(text)
    except BadInput:
        if kind == "any":
            return text
        raise BadInput(
            f"parameter `{name}` must be {_a(kind)} in YAML/JSON, got {text!r}"
        ) from None


# --- values in files and text: one way to read them, one way to write them -------------------

# Numbers as JSON writes them (and Python's float() reads them) that YAML 1.1 reads as
# strings: an exponent without a dot or its sign (1e-05, 1e+100, 2E5), NaN and Infinity.
_FLOAT_TEXT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+
    |[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity|INFINITY))$""",
    re.VERBOSE,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _resolvers(keep_timestamps: bool) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    """YAML 1.1's implicit types plus JSON's floats; without dates for reading values (no
    date can be a parameter, and `2024-01-01` for a string parameter means the string)."""
    table = {
        first: [(tag, rx) for tag, rx in entries if keep_timestamps or tag != _TIMESTAMP_TAG]
        for first, entries in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }
    for first in "-+0123456789.nNiI":
        table.setdefault(first, []).append((_FLOAT_TAG, _FLOAT_TEXT))
    return table


class ValueLoader(yaml.SafeLoader):
    """YAML as parameter values are read everywhere: numbers typed as JSON types them."""

    yaml_implicit_resolvers = _resolvers(keep_timestamps=False)


def _text(loader: ValueLoader, node: yaml.ScalarNode) -> str:
    """A string, with `\\ud83d\\ude00`-style escaped pairs (JSON's, for an emoji) joined."""
    text = loader.construct_scalar(node)
    if _SURROGATE.search(text):
        try:
            return text.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            return text  # a lone one: check_value names it
    return text


ValueLoader.add_constructor("tag:yaml.org,2002:str", _text)


class _ValueDumper(_ReadableDumper):
    """Quotes every string that ValueLoader or a YAML 1.1 reader (papermill's -f) would not
    read back as a string: `'1e-05'`, `'NaN'`, `'2024-01-01'`."""

    yaml_implicit_resolvers = _resolvers(keep_timestamps=True)


def load_yaml(text: str) -> Any:
    """Parse YAML values as this package reads them all. Raises BadInput."""
    try:
        return yaml.load(text, Loader=ValueLoader)  # a SafeLoader: no Python objects
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        raise BadInput(f"not valid YAML: {error}") from None


def values_yaml_text(data: Any) -> str:
    """Reviewable YAML holding parameter values, read back by `load_yaml` exactly."""
    return yaml.dump(data, Dumper=_ValueDumper, sort_keys=False, allow_unicode=True, width=1000)


def values_json_text(values: dict[str, Any]) -> str:
    """A run's values as JSON (`NaN` and `Infinity` included, as Python's json reads them):
    what the Jupyter server hands its runner in `-f parameters.json`."""
    return json.dumps(values)


def standard_json(data: Any, **options: Any) -> str:
    """JSON that strict readers (a browser's JSON.parse, jq) accept: a NaN or infinite value
    (a parameter's default, say) is written as the text JavaScript prints for it."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        return value

    return json.dumps(plain(data), allow_nan=False, **options)


def read_values_file(path: Path) -> dict[str, Any]:
    """Parameter values from a `-f` file: JSON if its name ends in .json, else YAML
    (papermill's -f format), both typed as `load_yaml` types. Raises BadInput."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such parameters file") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text; save the parameters file as UTF-8") from None
    except OSError as error:
        raise BadInput(f"can't read the parameters file {path}: {error.strerror}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise BadInput(f"{path} is not valid JSON: {error}") from None
    else:
        try:
            data = load_yaml(text)
        except BadInput as error:
            raise BadInput(f"{path} is {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path} must map parameter names to values")
    return data


def _a(kind: str) -> str:
    return {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "bool": "true or false",
        "list": "a list",
        "dict": "a mapping",
    }.get(kind, "a value")


def resolve(
    declared: list[Parameter],
    from_file: dict[str, Any] | None = None,
    from_cli: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The parameter values of a run: defaults, then a params file, then `-p` pairs.

    Raises BadInput naming the parameter for unknown names and values of the wrong type,
    so a run with a typo stops before any kernel starts.
    """
    by_name = {p.name: p for p in declared}
    values = {p.name: p.default for p in declared}
    given: list[tuple[str, Any, bool]] = [(k, v, False) for k, v in (from_file or {}).items()]
    given += [(k, v, True) for k, v in from_cli or []]
    for name, value, from_text in given:
        parameter = by_name.get(name)
        if parameter is None:
            raise BadInput(_unknown(name, list(by_name)))
        if parameter.optional and (value is None or (from_text and _none_text(value, parameter))):
            values[name] = None
            continue
        values[name] = coerce(parameter.type, value, name, from_text=from_text)
    return values


def _none_text(text: str, parameter: Parameter) -> bool:
    """Whether `-p NAME TEXT` means None for an optional parameter: `None` as in Python,
    `null` or `~` as in YAML, or nothing at all. For text, only `None` and `null` exactly:
    "", "none" and "~" are strings a parameter may well want."""
    if parameter.type == "str":
        return text in ("None", "null")
    return text.strip().lower() in {"none", "null", "~", ""}


def _unknown(name: str, known: list[str]) -> str:
    message = f"unknown parameter `{name}`"
    before, equals, after = name.partition("=")
    if equals and before in known:  # `-p lr=1e-05`, as some tools take it
        return f"{message}; -p takes the name and the value as two words: -p {before} {after}"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message}; did you mean `{close[0]}`?"
    if known:
        return f"{message}; the pipeline's parameters are: {', '.join(known)}"
    return f"{message}; the notebook has no parameters cell"
