"""Pipeline parameters: reading the ``parameters`` cell and checking values given for a run.

The cell is papermill's, so it stays plain assignments of literals; we also read type
annotations and trailing comments (``n_estimators: int = 100  # trees in the forest``) to give
the UI a typed form and the CLI a validation that fails before anything runs. Values are
always handed to papermill as data (numbers, strings, lists...), never as code.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import re
import tokenize
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from .errors import BadInput

TYPES = ("int", "float", "str", "bool", "list", "dict", "any")
RESERVED = frozenset({"mlops_artifacts"})

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
    found: list[Parameter] = []
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
        if declared and not (default is None and optional):
            try:
                default = coerce(kind, default, name=names[0])
            except BadInput as error:
                raise ParameterProblem(str(error), stmt.lineno) from None
        for name in names:
            if name in RESERVED:
                raise ParameterProblem(f"`{name}` is reserved by jupyter-mlops", stmt.lineno)
            found = [p for p in found if p.name != name]
            found.append(
                Parameter(
                    name=name,
                    type=kind,
                    default=default,
                    help=comments.get(stmt.lineno, ""),
                    cell=cell,
                    line=stmt.lineno,
                    optional=optional or default is None,
                )
            )
    return found


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


def coerce(kind: str, value: Any, name: str, from_text: bool = False) -> Any:
    """Check one value against a parameter type, converting where it is lossless.

    ``from_text`` values come from the command line (`-p n 10`) and are parsed; values from
    YAML or JSON are already typed and must match.
    """
    if from_text:
        value = _parse_text(kind, value, name)
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
        raise BadInput(f"parameter `{name}` must be {_a(kind)}, got {value!r}")
    if kind == "float":
        return float(value)
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
        return yaml.safe_load(text)
    except yaml.YAMLError:
        if kind == "any":
            return text
        raise BadInput(
            f"parameter `{name}` must be {_a(kind)} in YAML/JSON, got {text!r}"
        ) from None


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
        if value is None and parameter.optional:
            values[name] = None
            continue
        values[name] = coerce(parameter.type, value, name, from_text=from_text)
    return values


def _unknown(name: str, known: list[str]) -> str:
    message = f"unknown parameter `{name}`"
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"{message}; did you mean `{close[0]}`?"
    if known:
        return f"{message}; the pipeline's parameters are: {', '.join(known)}"
    return f"{message}; the notebook has no parameters cell"
