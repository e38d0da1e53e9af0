"""What one cell's code reads and touches, found statically with Python's ``ast``.

IPython syntax (magics, ``!`` shell lines, ``%%`` cell magics) is first rewritten by IPython's
own input transformer, exactly as the kernel would, so notebooks that use it analyze like any
other. The result is an ordered list of name events per cell; deciding which stage a value
comes from is done one level up, in :mod:`jupyter_mlops.analysis`.

Rules, chosen to be safe rather than clever:

* a name is *read* when its value is used (``Load``), *written* when bound, and *mutated*
  when the code changes the object it names: attribute or item assignment, augmented
  assignment, ``del x[...]``, or a method call on it (``x.append(...)``, ``model.fit(...)``).
  Well-known read-only methods (``df.head()``, ``model.predict(...)``) don't count, unless
  called with ``inplace=True``.
* names a function or lambda body uses from outside are *deferred* reads: they are needed
  when the function is called, which is usually later in the same stage.
* star imports, ``%run``, ``exec`` and ``globals()`` make the cell *dynamic*: it may define
  names no analysis can see, so undefined names become warnings instead of errors.
"""

from __future__ import annotations

import ast
import builtins
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

# Names the kernel provides on its own: never inputs of a stage.
KERNEL_NAMES = frozenset(dir(builtins)) | {
    "get_ipython",
    "display",
    "In",
    "Out",
    "exit",
    "quit",
    "_",
    "__",
    "___",
    "_i",
    "_ii",
    "_iii",
    "_ih",
    "_oh",
    "_dh",
    "__file__",
}

# Methods that leave their object unchanged (pandas, NumPy, scikit-learn, PyTorch, str, dict).
READ_ONLY_METHODS = frozenset(
    """
    head tail describe info copy to_numpy to_list tolist to_dict to_csv to_parquet to_json
    to_string to_markdown astype sum mean median std var min max count nunique unique
    value_counts isna isnull notna notnull corr cov groupby agg aggregate apply map filter
    query select_dtypes drop dropna fillna rename merge join sort_values sort_index
    reset_index set_index round abs any all cumsum pivot pivot_table melt sample nlargest
    nsmallest idxmax idxmin quantile reshape ravel flatten argmax argmin dot item
    predict predict_proba predict_log_proba decision_function score transform
    inverse_transform get_params get_feature_names_out kneighbors get_booster
    state_dict parameters named_parameters detach cpu numpy size dim
    get keys values items format split strip lower upper startswith endswith
    plot hist boxplot scatter
    """.split()
)

DYNAMIC_MAGICS = frozenset({"run", "store", "load", "load_ext", "reset"})
CODE_MAGICS = frozenset({"time", "capture"})


class Event(StrEnum):
    READ = "read"
    WRITE = "write"
    MUTATE = "mutate"
    DEFERRED_READ = "deferred_read"


@dataclass(frozen=True)
class NameEvent:
    kind: Event
    name: str
    line: int


@dataclass
class CellCode:
    """The static facts about one code cell."""

    events: list[NameEvent] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # top-level module names
    imported: set[str] = field(default_factory=set)  # names bound by import statements
    fit_calls: dict[str, str] = field(default_factory=dict)  # model var -> fit data expression
    printed: list[str] = field(default_factory=list)  # names in top-level `print(name)` calls
    top_level_assigned: list[str] = field(default_factory=list)
    dynamic: bool = False
    syntax_error: str | None = None
    syntax_error_line: int | None = None
    python: str = ""  # the code after IPython's transformation: what the kernel runs

    @property
    def reads(self) -> set[str]:
        return {e.name for e in self.events if e.kind in (Event.READ, Event.DEFERRED_READ)}

    @property
    def touched(self) -> set[str]:
        return {e.name for e in self.events if e.kind in (Event.WRITE, Event.MUTATE)}


@lru_cache(maxsize=1)
def _transformer():  # IPython is imported lazily: most cells need no transformation
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


@lru_cache(maxsize=8192)
def analyze_code(source: str) -> CellCode:
    """Analyze one cell's source. Never raises: a syntax error is reported in the result.

    Cached by source, because the sidebar re-analyzes the whole notebook on every edit and
    only one cell has changed. Results are shared, so callers must not modify them.
    """
    try:
        return _analyze(source)
    except RecursionError:  # `a + a + ...` with ~1000 terms: Python's own limit is close
        return CellCode(
            python=source,
            syntax_error="an expression is nested too deeply to analyze; split it into "
            "several statements",
        )


def _analyze(source: str) -> CellCode:
    try:
        tree = ast.parse(source)  # plain Python, the common case: no transformation needed
        python = source
    except SyntaxError:
        with warnings.catch_warnings():  # about odd line endings: noise on a command line
            warnings.simplefilter("ignore")
            python = _transformer().transform_cell(source)
        tree = None
    result = CellCode(python=python)
    try:
        tree = tree or ast.parse(python)
        # What only the compiler refuses: `return` or `break` outside their place, `nonlocal`
        # at top level... Top-level `await` is fine: IPython runs such cells.
        compile(tree, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as error:  # null bytes and deeply nested brackets are SyntaxErrors too
        result.syntax_error = error.msg + (f" (line {error.lineno})" if error.lineno else "")
        result.syntax_error_line = error.lineno
        return result
    _Collector(result, python).visit_body(tree.body)
    return result


def _target_names(node: ast.expr) -> list[str]:
    """The plain names an assignment target binds: `a`, `a, (b, *c)`."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [name for element in node.elts for name in _target_names(element)]
    if isinstance(node, ast.Starred):
        return _target_names(node.value)
    return []


def _base_name(node: ast.expr) -> str | None:
    """`df` for `df`, `df.a`, `df["a"]`, `df.a[0].b`; None when the chain starts elsewhere."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _bound_names(node: ast.AST) -> set[str]:
    """Every name bound anywhere inside node (parameters, targets, imports, nested defs)."""
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            bound.add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(child.name)
        elif isinstance(child, ast.alias):
            bound.add((child.asname or child.name).split(".")[0])
        elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
            bound.add(child.name)
    return bound


def _loaded_names(nodes: list[ast.AST]) -> list[tuple[str, int]]:
    found = []
    for node in nodes:
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                found.append((child.id, child.lineno))
    return found


def _declared_global(node: ast.AST) -> set[str]:
    return {n for c in ast.walk(node) if isinstance(c, ast.Global) for n in c.names}


class _Collector:
    """Walks top-level statements in execution order and records name events."""

    def __init__(self, result: CellCode, python: str) -> None:
        self.result = result
        self.python = python

    def emit(self, kind: Event, name: str, line: int) -> None:
        if kind in (Event.READ, Event.DEFERRED_READ) and name in KERNEL_NAMES:
            return
        self.result.events.append(NameEvent(kind, name, line))

    def visit_body(self, body: list[ast.stmt], top_level: bool = True) -> None:
        for stmt in body:
            if top_level:
                self._top_level_facts(stmt)
            self.stmt(stmt)

    # --- statements -------------------------------------------------------------------

    def stmt(self, node: ast.stmt) -> None:
        match node:
            case ast.Assign(targets=targets, value=value):
                self.expr(value)
                for target in targets:
                    self.target(target)
                self._fit_by_assignment(targets, value)
            case ast.AugAssign(target=target, value=value):
                self.expr(value)
                self.target(target, augmented=True)
            case ast.AnnAssign(target=target, value=value):
                if value is not None:
                    self.expr(value)
                    self.target(target)
            case ast.FunctionDef() | ast.AsyncFunctionDef():
                self._function(node)
            case ast.ClassDef():
                self._class(node)
            case ast.Import(names=names):
                self._modules(node)
                for alias in names:
                    self._imported(alias.asname or alias.name.split(".")[0], node.lineno)
            case ast.ImportFrom(names=names):
                self._modules(node)
                for alias in names:
                    if alias.name == "*":
                        self.result.dynamic = True
                    else:
                        self._imported(alias.asname or alias.name, node.lineno)
            case ast.For(target=target, iter=iterable) | ast.AsyncFor(target=target, iter=iterable):
                self.expr(iterable)
                self.target(target)
                self.visit_body(node.body + node.orelse, top_level=False)
            case ast.With(items=items) | ast.AsyncWith(items=items):
                for item in items:
                    self.expr(item.context_expr)
                    if item.optional_vars is not None:
                        self.target(item.optional_vars)
                self.visit_body(node.body, top_level=False)
            case ast.Try() | ast.TryStar():
                self.visit_body(node.body, top_level=False)
                for handler in node.handlers:
                    if handler.type is not None:
                        self.expr(handler.type)
                    if handler.name:
                        self.emit(Event.WRITE, handler.name, handler.lineno)
                    self.visit_body(handler.body, top_level=False)
                self.visit_body(node.orelse + node.finalbody, top_level=False)
            case ast.If(test=test) | ast.While(test=test):
                self.expr(test)
                self.visit_body(node.body + node.orelse, top_level=False)
            case ast.Delete(targets=targets):
                for target in targets:
                    self.target(target, deleting=True)
            case ast.Match(subject=subject, cases=cases):
                self.expr(subject)
                for case in cases:
                    for name in sorted(_bound_names(case.pattern)):
                        self.emit(Event.WRITE, name, node.lineno)
                    self.expr_nodes([case.pattern] + ([case.guard] if case.guard else []))
                    self.visit_body(case.body, top_level=False)
            case _:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.expr):
                        self.expr(child)
                    elif isinstance(child, ast.stmt):
                        self.stmt(child)

    def _imported(self, name: str, line: int) -> None:
        self.result.imported.add(name)
        self.emit(Event.WRITE, name, line)

    def target(self, node: ast.expr, augmented: bool = False, deleting: bool = False) -> None:
        """A name on the left of `=`, `+=`, `for ... in`, `with ... as`, or `del`."""
        match node:
            case ast.Name(id=name):
                if augmented:
                    self.emit(Event.READ, name, node.lineno)
                self.emit(Event.WRITE, name, node.lineno)
            case ast.Tuple(elts=elts) | ast.List(elts=elts):
                for element in elts:
                    self.target(element, augmented, deleting)
            case ast.Starred(value=value):
                self.target(value, augmented, deleting)
            case ast.Attribute() | ast.Subscript():
                self._subexpressions_of_target(node)
                base = _base_name(node)
                if base is not None:
                    self.emit(Event.READ, base, node.lineno)
                    self.emit(Event.MUTATE, base, node.lineno)
            case _:
                self.expr(node)

    def _subexpressions_of_target(self, node: ast.expr) -> None:
        """Reads inside a target: the `i` in `x[i] = ...`."""
        while isinstance(node, ast.Attribute | ast.Subscript):
            if isinstance(node, ast.Subscript):
                self.expr(node.slice)
            node = node.value
        if not isinstance(node, ast.Name):
            self.expr(node)

    def _function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, bind: bool = True
    ) -> None:
        """Defaults and decorators are read now, the body's free names when it is called."""
        self._modules_inside(node)
        arguments = node.args
        self.expr_nodes(list(arguments.defaults) + [d for d in arguments.kw_defaults if d])
        if not isinstance(node, ast.Lambda):
            self.expr_nodes(list(node.decorator_list))
        body = node.body if isinstance(node, ast.Lambda) else ast.Module(node.body, [])
        local = _bound_names(node.args) | (_bound_names(body) - _declared_global(body))
        for name, line in _loaded_names([body]):
            if name not in local:
                self.emit(Event.DEFERRED_READ, name, line)
        for name in sorted(_declared_global(body) & _bound_names(body)):
            self.emit(Event.WRITE, name, node.lineno)
        if bind and not isinstance(node, ast.Lambda):
            self.emit(Event.WRITE, node.name, node.lineno)

    def _class(self, node: ast.ClassDef) -> None:
        self.expr_nodes(list(node.bases) + [k.value for k in node.keywords])
        self.expr_nodes(list(node.decorator_list))
        methods = [s for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
        others = [s for s in node.body if s not in methods]
        class_locals = _bound_names(ast.Module(others, []))
        for name, line in _loaded_names(others):
            if name not in class_locals:
                self.emit(Event.READ, name, line)
        for method in methods:
            self._function(method, bind=False)
        self.emit(Event.WRITE, node.name, node.lineno)

    # --- expressions --------------------------------------------------------------------

    def expr_nodes(self, nodes: list[ast.AST]) -> None:
        for node in nodes:
            self.expr(node)

    def expr(self, node: ast.AST) -> None:
        match node:
            case ast.Name(id=name, ctx=ast.Load()):
                self.emit(Event.READ, name, node.lineno)
            case ast.Lambda():
                self._function(node)
            case ast.NamedExpr(target=target, value=value):
                self.expr(value)
                self.emit(Event.WRITE, target.id, node.lineno)
            case ast.ListComp() | ast.SetComp() | ast.GeneratorExp() | ast.DictComp():
                self._comprehension(node)
            case ast.Call(func=func, args=args, keywords=keywords):
                self.expr(func)
                self.expr_nodes(list(args) + [k.value for k in keywords])
                self._call_effects(node)
            case _:
                for child in ast.iter_child_nodes(node):
                    self.expr(child)

    def _comprehension(self, node: ast.expr) -> None:
        targets: set[str] = set()
        for generator in node.generators:  # type: ignore[attr-defined]
            targets |= _bound_names(generator.target)
        walrus = {n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr)}
        for name, line in _loaded_names([node]):
            if name not in targets:
                self.emit(Event.READ, name, line)
        for name in sorted(walrus):
            self.emit(Event.WRITE, name, node.lineno)

    def _call_effects(self, node: ast.Call) -> None:
        func = node.func
        if self._magic(node):
            return
        if isinstance(func, ast.Name) and func.id in {"exec", "globals", "vars", "locals"}:
            self.result.dynamic = True
        if not isinstance(func, ast.Attribute):
            return
        base = _base_name(func.value)
        if base is None:
            return
        inplace = any(
            k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        if func.attr not in READ_ONLY_METHODS or inplace:
            self.emit(Event.MUTATE, base, node.lineno)
        if func.attr == "fit" and isinstance(func.value, ast.Name) and node.args:
            self._record_fit(func.value.id, node.args[0])

    def _magic(self, node: ast.Call) -> bool:
        """Handle `get_ipython().run_*_magic(...)` calls that IPython's transformer wrote."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            return False
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        if func.attr in {"run_line_magic", "run_cell_magic"} and args and isinstance(args[0], str):
            magic = args[0]
            if magic in DYNAMIC_MAGICS:
                self.result.dynamic = True
            code = args[-1] if func.attr == "run_cell_magic" else args[1] if len(args) > 1 else None
            if magic in CODE_MAGICS and isinstance(code, str):
                self._inline(code)
            if magic == "capture" and func.attr == "run_cell_magic" and isinstance(args[1], str):
                for word in args[1].split():
                    if not word.startswith("-") and word.isidentifier():
                        self.emit(Event.WRITE, word, node.lineno)
        return True

    def _inline(self, code: str) -> None:
        inner = analyze_code(code)
        if inner.syntax_error is None:
            self.result.events.extend(inner.events)
            self.result.imports.extend(inner.imports)
            self.result.imported |= inner.imported
            self.result.fit_calls.update(inner.fit_calls)
            self.result.top_level_assigned.extend(inner.top_level_assigned)
            self.result.dynamic = self.result.dynamic or inner.dynamic

    # --- facts about top-level statements ------------------------------------------------

    def _modules(self, node: ast.Import | ast.ImportFrom) -> None:
        """Record the top-level modules an import statement needs (for requirements)."""
        if isinstance(node, ast.Import):
            self.result.imports.extend(a.name.split(".")[0] for a in node.names)
        elif node.module and node.level == 0:
            self.result.imports.append(node.module.split(".")[0])

    def _modules_inside(self, node: ast.AST) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                self._modules(child)

    def _top_level_facts(self, stmt: ast.stmt) -> None:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = list(stmt.targets)
        elif isinstance(stmt, ast.AugAssign | ast.AnnAssign):
            targets = [stmt.target]
        for target in targets:
            self.result.top_level_assigned.extend(_target_names(target))
        match stmt:
            case ast.Expr(value=ast.Call(func=ast.Name(id="print"), args=args)):
                self.result.printed.extend(a.id for a in args if isinstance(a, ast.Name))

    def _fit_by_assignment(self, targets: list[ast.expr], value: ast.expr) -> None:
        """`model = make_pipeline(...).fit(X, y)` fits `model` on X."""
        if (
            len(targets) == 1
            and isinstance(targets[0], ast.Name)
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "fit"
            and value.args
        ):
            self._record_fit(targets[0].id, value.args[0])

    def _record_fit(self, model: str, data: ast.expr) -> None:
        segment = ast.get_source_segment(self.python, data) or ast.unparse(data)
        self.result.fit_calls[model] = segment
