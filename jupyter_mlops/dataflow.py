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
* a function or class defined at the top level of a cell is a *definition*: its body's free
  names are read where the function is used (called or passed on), not where it is defined,
  because that is when the notebook looks them up. Names a lambda or a nested function uses
  from outside are *deferred* reads: needed when it is called, usually later in the stage.
* ``a = b``, ``a = b[i]``, ``a = [b, c]``, ``for a in [b, c]`` and ``a = b.fit(...)`` make
  ``a`` an *alias* of ``b`` (and ``c``): the names may refer to the same object, so changing
  one changes the others. The analysis touches them together.
* calls and assignments that change process-wide state (seeding a random generator, library
  configuration, the environment) are recorded as *effects*, by the dotted name written, so
  that the analysis can carry them into later stages.
* star imports, ``%run``, ``exec`` and ``globals()`` make the cell *dynamic*: it may define
  names no analysis can see, so undefined names become warnings instead of errors.
"""

from __future__ import annotations

import ast
import builtins
import gc
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any

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


# Methods that return the object they are called on: `a = b.fit(X)` makes `a` an alias of `b`.
RETURNS_SELF = frozenset({"fit", "partial_fit", "set_params", "set_output", "train", "eval", "to"})
# Calls whose result iterates over the objects of their arguments: `for a in zip(b, c)`.
ITERATES_ARGUMENTS = frozenset({"zip", "enumerate", "reversed", "sorted", "list", "tuple", "iter"})
ITERATES_SELF = frozenset({"items", "values"})
# The last names of calls that may change process-wide state (the analysis decides by the
# whole dotted name, once it knows what the notebook imported under which name).
EFFECT_CALLS = frozenset(
    """
    seed manual_seed manual_seed_all set_seed set_random_seed seed_everything set_config
    set_option reset_option rc rcdefaults use update filterwarnings simplefilter
    resetwarnings setdefault pop putenv unsetenv chdir append insert extend remove
    setrecursionlimit set_printoptions seterr set_default_dtype set_num_threads
    use_deterministic_algorithms set_grad_enabled basicConfig set set_theme set_style
    set_context set_palette switch_backend
    """.split()
)
# Magics that change the kernel's state for the cells after them.
STATE_MAGICS = frozenset({"matplotlib", "config", "env", "cd", "precision", "autoreload"})


class Event(StrEnum):
    READ = "read"
    WRITE = "write"
    MUTATE = "mutate"
    DEFERRED_READ = "deferred_read"
    ALIAS = "alias"  # `name` may refer to (part of) the objects `others` name
    CALL = "call"  # `name(...)` is called with `arguments`: it may change what they name
    BOUND = "bound"  # `name = made_by(...)`, holding `others` (given to a class it makes)


@dataclass(frozen=True)
class Definition:
    """A function or class defined at the top level of a cell: it travels to later stages as
    code and is defined again there, so its global names are looked up when it runs."""

    name: str
    kind: str  # "function" or "class"
    source: str  # the statement, decorators included, as the kernel runs it
    free: frozenset[str]  # global names its body reads when called
    needs: frozenset[str]  # names read when it is defined: decorators, defaults, bases
    line: int
    parameters: tuple[str, ...] = ()  # positional parameters, in order
    changes: frozenset[str] = frozenset()  # parameters whose object its body changes
    changes_globals: frozenset[str] = frozenset()  # globals a call binds or changes
    seeds: tuple[str, ...] = ()  # calls in its body that may seed a generator (or configure)


@dataclass(frozen=True, slots=True)  # slots: there is one per name in the code
class NameEvent:
    kind: Event
    name: str
    line: int
    definition: Definition | None = None  # on the WRITE of a top-level `def` or `class`
    others: tuple[str, ...] = ()  # on an ALIAS
    arguments: tuple[tuple[str, str], ...] = ()  # on a CALL: (position or keyword, name)
    made_by: str | None = None  # on a BOUND: the dotted callee, as written


@dataclass(frozen=True)
class Effect:
    """A call or assignment that may change process-wide state, as written: `np.random.seed`,
    `plt.rcParams` (an assignment into it), `%matplotlib`. `statement` is the top-level
    statement to replay it with, or None when it sits inside a block (a loop, an `if`)."""

    dotted: str
    line: int
    statement: str | None


@dataclass
class CellCode:
    """The static facts about one code cell."""

    events: list[NameEvent] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # top-level module names
    imported: set[str] = field(default_factory=set)  # names bound by import statements
    fit_calls: dict[str, str] = field(default_factory=dict)  # model var -> fit data expression
    printed: list[str] = field(default_factory=list)  # names in top-level `print(name)` calls
    top_level_assigned: list[str] = field(default_factory=list)
    imported_as: dict[str, str] = field(default_factory=dict)  # bound name -> dotted module
    effects: list[Effect] = field(default_factory=list)
    definitions: dict[str, Definition] = field(default_factory=dict)  # the cell's last ones
    dynamic: bool = False
    syntax_error: str | None = None
    syntax_error_line: int | None = None
    python: str = ""  # the code after IPython's transformation: what the kernel runs

    # Computed once: the analysis asks for them per stage and per diagnostic, and a cell's
    # events don't change once it is analysed (results are shared, never modified).
    @cached_property
    def reads(self) -> frozenset[str]:
        """The names it reads, builtins and kernel names aside."""
        return frozenset(
            e.name
            for e in self.events
            if e.kind in (Event.READ, Event.DEFERRED_READ) and e.name not in KERNEL_NAMES
        )

    @cached_property
    def touched(self) -> frozenset[str]:
        return frozenset(e.name for e in self.events if e.kind in (Event.WRITE, Event.MUTATE))


@lru_cache(maxsize=1)
def _transformer():  # IPython is imported lazily: most cells need no transformation
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


class _Cache:
    """Analyses by source, the least recently used evicted first, bounded by their number
    and by the total size of their sources: an analysis holds about twenty times its
    source's size, so a count alone let one worker keep gigabytes after a few big
    notebooks. A source bigger than the whole budget is not kept at all."""

    def __init__(self, entries: int, characters: int) -> None:
        self.max_entries, self.max_characters = entries, characters
        self.entries: OrderedDict[str, CellCode] = OrderedDict()
        self.characters = 0
        self.lock = threading.Lock()  # callers may be threads of one server

    def get(self, source: str) -> CellCode | None:
        with self.lock:
            result = self.entries.get(source)
            if result is not None:
                self.entries.move_to_end(source)
            return result

    def put(self, source: str, result: CellCode) -> None:
        if len(source) > self.max_characters:
            return
        with self.lock:
            if source in self.entries:
                return
            self.entries[source] = result
            self.characters += len(source)
            while len(self.entries) > self.max_entries or self.characters > self.max_characters:
                evicted, _ = self.entries.popitem(last=False)
                self.characters -= len(evicted)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.characters = 0


_CACHE = _Cache(entries=8192, characters=8 * 2**20)


def analyze_code(source: str) -> CellCode:
    """Analyze one cell's source. Never raises: a syntax error is reported in the result.

    Cached by source, because the sidebar re-analyzes the whole notebook on every edit and
    only one cell has changed. Results are shared, so callers must not modify them.
    """
    cached = _CACHE.get(source)
    if cached is None:
        cached = _analyze_safely(source)
        _CACHE.put(source, cached)
    return cached


analyze_code.cache_clear = _CACHE.clear  # type: ignore[attr-defined]  # as lru_cache's


def _analyze_safely(source: str) -> CellCode:
    try:
        with no_cyclic_gc():
            return _analyze(source)
    except RecursionError:  # `a + a + ...` with ~1000 terms: Python's own limit is close
        return CellCode(
            python=source,
            syntax_error="an expression is nested too deeply to analyze; split it into "
            "several statements",
        )
    except UnicodeEncodeError as error:  # `"\ud800"` in the notebook's JSON: not text
        text = error.object
        line = text.count("\n", 0, error.start) + 1
        return CellCode(
            python=source,
            syntax_error=f"a lone surrogate ({text[error.start]!r}) is not a character "
            f"(line {line}); delete it or type the character again",
            syntax_error_line=line,
        )


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused while code is analysed: a big cell's syntax
    tree, and a notebook's events, are hundreds of thousands of objects that hold no
    reference cycles, yet every pass of the collector scanned them all again (half the time
    of a 10,000-line cell). Whatever becomes garbage in the meantime is freed by reference
    counting, or collected once the collector runs again. Nested uses are fine."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _loaded_names(nodes: Sequence[ast.AST]) -> list[tuple[str, int]]:
    found = []
    for node in nodes:
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
                found.append((child.id, child.lineno))
    return found


def _declared_global(node: ast.AST) -> set[str]:
    return {n for c in ast.walk(node) if isinstance(c, ast.Global) for n in c.names}


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _defaults(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.expr]:
    arguments = node.args
    return list(arguments.defaults) + [d for d in arguments.kw_defaults if d]


def _free_reads(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[tuple[str, int]]:
    """The names a function's body reads from outside it, with their lines."""
    body = node.body if isinstance(node, ast.Lambda) else ast.Module(node.body, [])
    local = _bound_names(node.args) | (_bound_names(body) - _declared_global(body))
    return [(name, line) for name, line in _loaded_names([body]) if name not in local]


def _free_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {name for name, _ in _free_reads(node)}


# Context managers that undo on exit the settings made inside them.
RESTORING_CONTEXTS = frozenset(
    {
        "catch_warnings",
        "rc_context",
        "errstate",
        "option_context",
        "printoptions",
        "no_grad",
        "inference_mode",
        "enable_grad",
        "config_context",
    }
)


def _restores(context: ast.expr) -> bool:
    dotted = _dotted(context.func) if isinstance(context, ast.Call) else None
    return bool(dotted) and dotted.rpartition(".")[2] in RESTORING_CONTEXTS  # type: ignore[union-attr]


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [node.target]
    if isinstance(node, ast.Delete):
        return list(node.targets)
    return [ast.Name("?")]  # anything else can't be replayed as it is


def _seed_candidates(body: list[ast.stmt]) -> tuple[str, ...]:
    """The calls in a function body that may change process-wide state, as written (the
    analysis keeps those that seed a random generator)."""
    found = []
    for node in ast.walk(ast.Module(body, [])):
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted and dotted.rpartition(".")[2] in EFFECT_CALLS:
                found.append(dotted)
    return tuple(sorted(set(found)))


def _changed_names(body: list[ast.stmt]) -> set[str]:
    """Names whose objects a function body changes in place (`x[i] = ...`, `x.append(...)`,
    `x += ...`): when they are its parameters, calling it changes the caller's objects."""
    changed: set[str] = set()
    for node in ast.walk(ast.Module(body, [])):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute | ast.Subscript) or isinstance(node, ast.AugAssign):
                base = _base_name(target)
                if base:
                    changed.add(base)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            inplace = any(
                k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords
            )
            base = _base_name(node.func.value)
            if base and (node.func.attr not in READ_ONLY_METHODS or inplace):
                changed.add(base)
    return changed


def _dotted(node: ast.expr) -> str | None:
    """`np.random.seed` for that attribute chain, `plt.rcParams` for `plt.rcParams["x"]`."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
        else:
            parts.clear()  # `a.b[i].c`: what changes is inside `a.b[i]`; record `a.b`
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _alias_sources(value: ast.expr) -> list[str]:
    """The names whose objects `value` may be, or contain, or be part of."""
    match value:
        case ast.Name(id=name):
            return [name]
        case ast.Attribute() | ast.Subscript():
            base = _base_name(value)
            return [base] if base else []
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.Set(elts=elts):
            return [n for element in elts for n in _alias_sources(element)]
        case ast.Starred(value=inner) | ast.NamedExpr(value=inner):
            return _alias_sources(inner)
        case ast.Dict(values=values):
            return [n for element in values if element for n in _alias_sources(element)]
        case ast.IfExp(body=body, orelse=orelse):
            return _alias_sources(body) + _alias_sources(orelse)
        case ast.Call(func=ast.Attribute(attr=attr, value=receiver)) if attr in RETURNS_SELF:
            return _alias_sources(receiver)
    return []


def _held(calls: list[ast.Call]) -> tuple[str, ...]:
    """The named objects an assigned value may hold: those given to a class among its calls
    (`LinearSVC(random_state=rng)` keeps `rng`; a function such as
    `train_test_split(..., random_state=rng)` only uses it)."""
    held: set[str] = set()
    for node in calls:
        callee = _dotted(node.func) or ""
        if callee.rpartition(".")[2][:1].isupper():
            arguments = list(node.args) + [k.value for k in node.keywords]
            held |= {a.id for a in arguments if isinstance(a, ast.Name)}
    return tuple(sorted(held))


def _iterated(iterable: ast.expr) -> list[str]:
    """The names whose objects a `for` loop over `iterable` may bind its target to."""
    match iterable:
        case ast.Call(func=ast.Name(id=name), args=args) if name in ITERATES_ARGUMENTS:
            return [n for argument in args for n in _iterated(argument)]
        case ast.Call(func=ast.Attribute(attr=attr, value=receiver)) if attr in ITERATES_SELF:
            return _alias_sources(receiver)
    return _alias_sources(iterable)


# A line as the parser (and `ast.get_source_segment`) splits source: at \r\n, \r or \n only,
# keeping the line ending; not at form feeds or Unicode line separators as str.splitlines does.
_PARSER_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class _Collector:
    """Walks top-level statements in execution order and records name events."""

    def __init__(self, result: CellCode, python: str) -> None:
        self.result = result
        self.python = python
        self.lines = python.splitlines()
        self.parser_lines: list[str] | None = None  # split as the parser does, when needed
        self.line_bytes: dict[int, bytes] = {}  # UTF-8 of the lines segments were cut from
        self.statement: ast.stmt | None = None  # the top-level statement being walked
        self.in_block = False  # inside a loop, `if`, `with` or `try` of the top level
        self.scoped = False  # inside `with warnings.catch_warnings():` and the like
        self.calls: list[ast.Call] | None = None  # collecting the calls `expr` meets, if a list

    def emit(self, kind: Event, name: str, line: int, **extra: Any) -> None:
        # Reads of builtins (`print`, `input`) are kept: a notebook may bind one as a
        # variable (`input = ...`), and then a later stage's read must get its value.
        self.result.events.append(NameEvent(kind, name, line, **extra))

    def visit_body(self, body: list[ast.stmt], top_level: bool = True) -> None:
        outer = self.in_block
        self.in_block = self.in_block or not top_level
        for stmt in body:
            if top_level:
                self.statement = stmt
                self._top_level_facts(stmt)
            self.stmt(stmt, top_level)
        self.in_block = outer

    # --- statements -------------------------------------------------------------------

    def stmt(self, node: ast.stmt, top_level: bool = False) -> None:
        match node:
            case ast.Assign(targets=targets, value=value):
                held = _held(self._expr_and_calls(value))
                for target in targets:
                    self.target(target)
                    self._alias(target, value)
                    self._bound(target, value, held)
                self._fit_by_assignment(targets, value)
            case ast.AugAssign(target=target, value=value):
                self.expr(value)
                self.target(target, augmented=True)
            case ast.AnnAssign(target=target, value=value):
                if value is not None:
                    self.expr(value)
                    self.target(target)
                    self._alias(target, value)
            case ast.FunctionDef() | ast.AsyncFunctionDef() if top_level:
                self._definition(node, "function")
            case ast.ClassDef() if top_level:
                self._definition(node, "class")
            case ast.FunctionDef() | ast.AsyncFunctionDef():
                self._function(node)
            case ast.ClassDef():
                self._class(node)
            case ast.Import(names=names):
                self._modules(node)
                for alias in names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.result.imported_as[bound] = alias.name if alias.asname else bound
                    self._imported(bound, node.lineno)
            case ast.ImportFrom(names=names, module=module):
                self._modules(node)
                for alias in names:
                    if alias.name == "*":
                        self.result.dynamic = True
                    else:
                        bound = alias.asname or alias.name
                        if module and not node.level:
                            self.result.imported_as[bound] = f"{module}.{alias.name}"
                        self._imported(bound, node.lineno)
            case ast.For(target=target, iter=iterable) | ast.AsyncFor(target=target, iter=iterable):
                self.expr(iterable)
                self.target(target)
                sources = _iterated(iterable)
                for name in _target_names(target):
                    if sources:
                        self.emit(Event.ALIAS, name, node.lineno, others=tuple(sources))
                self.visit_body(node.body + node.orelse, top_level=False)
            case ast.With(items=items) | ast.AsyncWith(items=items):
                for item in items:
                    self.expr(item.context_expr)
                    if item.optional_vars is not None:
                        self.target(item.optional_vars)
                scoped = self.scoped
                self.scoped = scoped or any(_restores(item.context_expr) for item in items)
                self.visit_body(node.body, top_level=False)
                self.scoped = scoped
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

    def _alias(self, target: ast.expr, value: ast.expr) -> None:
        """`a = b`, `a = b[0]`, `a = [b, c]`, `a, b = c, d`: names that may share objects."""
        if (
            isinstance(target, ast.Tuple | ast.List)
            and isinstance(value, ast.Tuple | ast.List)
            and len(target.elts) == len(value.elts)
        ):
            for one_target, one_value in zip(target.elts, value.elts, strict=True):
                self._alias(one_target, one_value)
            return
        sources = _alias_sources(value)
        if sources:
            for name in _target_names(target):
                self.emit(Event.ALIAS, name, target.lineno, others=tuple(sources))

    def _bound(self, target: ast.expr, value: ast.expr, held: tuple[str, ...]) -> None:
        """What made the object a name is bound to, and which named objects it may hold
        (`held`, see :func:`_held`)."""
        made_by = _dotted(value.func) if isinstance(value, ast.Call) else None
        if made_by is None and not held:
            return
        for name in _target_names(target):
            self.emit(Event.BOUND, name, target.lineno, others=held, made_by=made_by)

    def target(self, node: ast.expr, augmented: bool = False, deleting: bool = False) -> None:
        """A name on the left of `=`, `+=`, `for ... in`, `with ... as`, or `del`."""
        match node:
            case ast.Name(id=name) if augmented:
                # `x += y` changes a list in place: whatever else refers to it changes too.
                self.emit(Event.READ, name, node.lineno)
                self.emit(Event.MUTATE, name, node.lineno)
            case ast.Name(id=name):
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
                    dotted = _dotted(node)
                    if dotted and "." in dotted:  # `plt.rcParams[...] =`, not `df[...] =`
                        self._effect(dotted, self.statement or node)
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

    def _effect(self, dotted: str | None, node: ast.stmt | ast.expr) -> None:
        """Record a call or assignment that may change process-wide state (classified later,
        once the notebook's imports are known). What would replay it: the call alone (its
        statement may bind names the replay must not rebind), or an assignment into a
        setting that binds no name. Inside a block it can't be replayed alone; inside a
        `with` that restores the state on exit it changes nothing that lasts."""
        if dotted is None or self.statement is None or self.scoped:
            return
        replay = None
        if not self.in_block:
            if isinstance(node, ast.Call):
                replay = self._segment(node)
            elif all(_base_name(t) and not isinstance(t, ast.Name) for t in _targets(node)):
                replay = self._statement_source(self.statement)
        self.result.effects.append(Effect(dotted, node.lineno, replay))

    def _segment(self, node: ast.AST) -> str | None:
        """`ast.get_source_segment(self.python, node)`, without splitting the whole cell
        again for every call: that made a big cell's analysis quadratic in its size."""
        end_line, end_column = getattr(node, "end_lineno", None), node.end_col_offset  # type: ignore[attr-defined]
        if end_line is None or end_column is None:
            return None
        if self.parser_lines is None:
            self.parser_lines = _PARSER_LINE.findall(self.python)
        line, column = node.lineno - 1, node.col_offset  # type: ignore[attr-defined]
        if end_line - 1 == line:
            return self._line_bytes(line)[column:end_column].decode()
        first = self._line_bytes(line)[column:].decode()
        last = self._line_bytes(end_line - 1)[:end_column].decode()
        return "".join([first, *self.parser_lines[line + 1 : end_line - 1], last])

    def _line_bytes(self, index: int) -> bytes:
        if index not in self.line_bytes:
            self.line_bytes[index] = self.parser_lines[index].encode()  # type: ignore[index]
        return self.line_bytes[index]

    def _statement_source(self, node: ast.stmt) -> str:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "\n".join(self.lines[first - 1 : node.end_lineno])

    def _definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, kind: str):
        """A top-level `def` or `class`: what it reads now, and what it reads when used."""
        self._modules_inside(node)
        before = len(self.result.events)
        if isinstance(node, ast.ClassDef):
            methods = self._class_statement(node)
            for method in methods:
                self.expr_nodes(_defaults(method) + list(method.decorator_list))
            free = set().union(*(_free_names(m) for m in methods)) if methods else set()
            parameters: tuple[str, ...] = ()
            every: set[str] = set()  # a class has no parameters its calls could change
            bodies = [statement for method in methods for statement in method.body]
        else:
            self.expr_nodes(_defaults(node) + list(node.decorator_list))
            free = _free_names(node)
            parameters = tuple(a.arg for a in node.args.posonlyargs + node.args.args)
            every = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            bodies = node.body
        module = ast.Module(bodies, [])
        changed = _changed_names(bodies)
        changes = changed & every
        changes_globals = (_declared_global(module) & _bound_names(module)) | (changed & free)
        needs = {e.name for e in self.result.events[before:] if e.kind == Event.READ}
        definition = Definition(
            name=node.name,
            kind=kind,
            source=self._statement_source(node),
            free=frozenset(free),
            needs=frozenset(needs),
            line=node.lineno,
            parameters=parameters,
            changes=frozenset(changes),
            changes_globals=frozenset(changes_globals),
            seeds=_seed_candidates(bodies),
        )
        self.result.definitions[node.name] = definition
        self.emit(Event.WRITE, node.name, node.lineno, definition=definition)

    def _function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, bind: bool = True
    ) -> None:
        """Defaults and decorators are read now, the body's free names when it is called."""
        self._modules_inside(node)
        self.expr_nodes(_defaults(node))
        if not isinstance(node, ast.Lambda):
            self.expr_nodes(list(node.decorator_list))
        for name, line in _free_reads(node):
            self.emit(Event.DEFERRED_READ, name, line)
        if not isinstance(node, ast.Lambda):
            body = ast.Module(node.body, [])
            for name in sorted(_declared_global(body) & _bound_names(body)):
                self.emit(Event.WRITE, name, node.lineno)
            if bind:
                self.emit(Event.WRITE, node.name, node.lineno)

    def _class(self, node: ast.ClassDef) -> None:
        for method in self._class_statement(node):
            self._function(method, bind=False)
        self.emit(Event.WRITE, node.name, node.lineno)

    def _class_statement(self, node: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        """What a `class` statement reads as it runs (bases, decorators, the class body but
        its methods); returns the methods, whose bodies run later."""
        self.expr_nodes(list(node.bases) + [k.value for k in node.keywords])
        self.expr_nodes(list(node.decorator_list))
        methods = [s for s in node.body if isinstance(s, FUNCTIONS)]
        others = [s for s in node.body if not isinstance(s, FUNCTIONS)]
        class_locals = _bound_names(ast.Module(others, []))
        for name, line in _loaded_names(others):
            if name not in class_locals:
                self.emit(Event.READ, name, line)
        return methods

    # --- expressions --------------------------------------------------------------------

    def _expr_and_calls(self, node: ast.expr) -> list[ast.Call]:
        """`expr(node)`, and every call anywhere inside node, found on the same walk rather
        than by walking the expression again."""
        outer, self.calls = self.calls, []
        try:
            self.expr(node)
        finally:
            calls, self.calls = self.calls, outer
        return calls

    def _opaque(self, node: ast.expr, handle: Callable[[Any], None]) -> None:
        """A lambda or comprehension, which `expr` does not walk into: its calls are
        collected by walking it, and not again while it is handled."""
        calls, self.calls = self.calls, None
        if calls is not None:
            calls.extend(n for n in ast.walk(node) if isinstance(n, ast.Call))
        try:
            handle(node)
        finally:
            self.calls = calls

    def expr_nodes(self, nodes: Sequence[ast.AST]) -> None:
        for node in nodes:
            self.expr(node)

    def expr(self, node: ast.AST) -> None:
        match node:
            case ast.Name(id=name, ctx=ast.Load()):
                self.emit(Event.READ, name, node.lineno)
            case ast.Constant() | ast.expr_context():
                return  # nothing inside: the common leaves, skipped without a walk
            case ast.Lambda():
                self._opaque(node, self._function)
            case ast.NamedExpr(target=target, value=value):
                self.expr(value)
                self.emit(Event.WRITE, target.id, node.lineno)
            case ast.ListComp() | ast.SetComp() | ast.GeneratorExp() | ast.DictComp():
                self._opaque(node, self._comprehension)
            case ast.Call(func=func, args=args, keywords=keywords):
                if self.calls is not None:
                    self.calls.append(node)
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
        dotted = _dotted(func)
        if dotted and dotted.rpartition(".")[2] in EFFECT_CALLS:
            self._effect(dotted, node)
        if isinstance(func, ast.Name) and func.id not in KERNEL_NAMES:
            arguments = [(str(i), _base_name(a)) for i, a in enumerate(node.args)]
            arguments += [(k.arg, _base_name(k.value)) for k in node.keywords if k.arg]
            named = tuple((slot, name) for slot, name in arguments if name)
            if named:
                self.emit(Event.CALL, func.id, node.lineno, arguments=named)
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
            if magic in STATE_MAGICS and func.attr == "run_line_magic":
                self._effect(f"%{magic}", node)
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
            self.result.imported_as.update(inner.imported_as)
            self.result.effects.extend(inner.effects)
            self.result.definitions.update(inner.definitions)
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
        segment = self._segment(data) or ast.unparse(data)
        self.result.fit_calls[model] = segment
