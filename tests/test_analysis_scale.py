"""The analysis of big notebooks: the result is exactly what it should be, and the work grows
linearly with the code (counted, not timed: timings are measured in
benchmarks/analysis_scaling.py)."""

from __future__ import annotations

import ast

import pytest
from conftest import code, notebook

from jupyter_mlops.analysis import _StageWalk, analyze_notebook
from jupyter_mlops.dataflow import _Cache, analyze_code

STAGES = 2000
BACK = 10  # each stage also changes a value of the stage this far back


def stage_name(index: int) -> str:
    return f"s{index:04d}"


def long_pipeline(stages: int) -> tuple[object, dict[int, list[int]]]:
    """`stages` stages, each reading the value of the stage before and changing a list of the
    stage BACK before, all calling a function the first stage defines; every hundredth stage
    is followed by a skip cell and an untagged cell that joins the stage. Returns the
    notebook and each stage's cells."""
    cells = [code("import math", "setup"), code("n: int = 3", "parameters")]
    cells.append(
        code("def bump(x):\n    return x + n\n\nv0 = bump(0)\nw0 = [v0 * 2]", "stage:s0000")
    )
    stage_cells = {0: [2]}
    for index in range(1, stages):
        body = [f"v{index} = bump(v{index - 1})", f"w{index} = [v{index} * 2]"]
        if index >= BACK:
            body.append(f"w{index - BACK}.append(v{index})")
        stage_cells[index] = [len(cells)]
        cells.append(code("\n".join(body), f"stage:{stage_name(index)}"))
        if index % 100 == 0:
            cells.append(code(f"scratch{index} = math.pi", "skip"))
            stage_cells[index].append(len(cells))
            cells.append(code(f"assert v{index} > 0"))
    return notebook(*cells), stage_cells


def test_the_flow_across_2000_stages_is_what_it_should_be():
    nb, stage_cells = long_pipeline(STAGES)
    analysis = analyze_notebook(nb, "long.ipynb")
    assert analysis.diagnostics == []
    assert [s.name for s in analysis.stages] == [stage_name(i) for i in range(STAGES)]
    edges = []
    for index, stage in enumerate(analysis.stages):
        assert stage.cells == stage_cells[index]
        inputs = {}
        if index >= BACK:
            inputs[f"w{index - BACK}"] = stage_name(index - BACK)
        if index:
            inputs[f"v{index - 1}"] = stage_name(index - 1)
        assert stage.inputs == dict(sorted(inputs.items()))
        assert stage.upstream == sorted(set(inputs.values()))
        outputs = []
        if index + 1 < STAGES:
            outputs.append(f"v{index}")
        if index + BACK < STAGES:
            outputs.append(f"w{index}")
        assert stage.outputs == outputs
        assert stage.parameters == ["n"]
        assert stage.definitions == ({} if index == 0 else {"bump": 2})
        edges += [(source, stage.name) for source in stage.upstream]
    assert [(e.source, e.target) for e in analysis.edges] == edges
    assert len(edges) == (STAGES - 1) + (STAGES - BACK)
    skipped = [c.index for c in analysis.cells if c.role == "skip"]
    assert len(skipped) == (STAGES - 1) // 100


def alias_chain(links: int) -> object:
    """One stage making a chain of aliases, each changed as it is made, and a stage that
    changes the one in the middle."""
    body = ["base = []"]
    for index in range(links):
        source = f"a{index - 1}" if index else "base"
        body += [f"a{index} = {source}", f"a{index}.append({index})"]
    return notebook(
        code("\n".join(body), "stage:chain"),
        code(f"a{links // 2}.append(-1)", "stage:change"),
    )


def test_a_change_through_a_long_chain_of_aliases_reaches_every_name():
    links = 3000
    analysis = analyze_notebook(alias_chain(links), "aliases.ipynb")
    chain, change = analysis.stages
    names = ["base", *(f"a{i}" for i in range(links))]
    assert chain.touched == names
    middle = f"a{links // 2}"
    assert change.inputs == {name: "chain" for name in sorted(names)}
    assert change.touched == [middle, *sorted(set(names) - {middle})]
    assert chain.outputs == sorted(names)
    assert analysis.diagnostics == []


def test_names_set_only_in_skip_cells_are_explained_in_every_stage():
    stages = 1500
    cells = []
    for index in range(stages):
        cells.append(code(f"tmp{index} = {index}", "skip"))
        cells.append(code(f"use{index} = tmp{index} + 1", f"stage:{stage_name(index)}"))
    analysis = analyze_notebook(notebook(*cells), "skips.ipynb")
    assert [(d.code, d.cell, d.related_cell) for d in analysis.diagnostics] == [
        ("defined-outside-pipeline", 2 * index + 1, 2 * index) for index in range(stages)
    ]


@pytest.fixture
def counted_walk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the stage walk's steps (reading a name, touching one), the analysis' unit of
    work once each cell's code is known."""
    counts = {"read": 0, "touch": 0}
    for step in counts:
        original = getattr(_StageWalk, step)

        def counting(self, *arguments, _step=step, _original=original, **keywords):
            counts[_step] += 1
            return _original(self, *arguments, **keywords)

        monkeypatch.setattr(_StageWalk, step, counting)
    return counts


@pytest.mark.parametrize(
    "make",
    [alias_chain, lambda size: long_pipeline(size)[0]],
    ids=["alias chain", "long pipeline"],
)
def test_the_stage_walk_grows_linearly(counted_walk: dict[str, int], make) -> None:
    steps = []
    for size in (1000, 2000, 4000):
        counted_walk.update(read=0, touch=0)
        analyze_notebook(make(size), "sized.ipynb")
        steps.append(counted_walk["read"] + counted_walk["touch"])
    assert steps[1] <= 2.1 * steps[0] and steps[2] <= 2.1 * steps[1], steps


@pytest.mark.parametrize(
    "source",
    [
        "import numpy as np\nnp.random.seed(\n    1,\n)\nx = [1]\nx.append(2)\n",
        "import numpy as np\r\nnp.random.seed(0)\r\nitems = []\r\nitems.append(\r\n 'é')\r\n",
        "import numpy as np\rnp.random.seed(0)\rmodel.fit(X,\r y)\r",
        "s = '\x0c\u2028'; import numpy as np\x0c\nnp.random.seed(3); d = {}\n"
        "d.update(a='\u2028')\n",
        "import pandas as pd\npd.set_option('display.width',\n  120)  # ünïcode\nm.fit(X['ü'], y)",
    ],
    ids=["lf", "crlf", "cr", "form feed and line separators", "non-ascii"],
)
def test_statements_to_replay_and_fit_data_are_cut_as_the_standard_library_cuts(source: str):
    """The analysis cuts these out of lines it splits once per cell (splitting the whole
    cell for every call made big cells quadratic); they must be what
    `ast.get_source_segment` gives, whatever the line endings."""
    result = analyze_code(source)
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    for effect in result.effects:
        call = next(c for c in calls if c.lineno == effect.line and effect.dotted in ast.unparse(c))
        assert effect.statement == ast.get_source_segment(source, call)
    for model, data in result.fit_calls.items():
        fit = next(c for c in calls if ast.unparse(c.func) == f"{model}.fit")
        assert data == ast.get_source_segment(source, fit.args[0])
    assert result.effects or result.fit_calls


def test_a_lone_surrogate_in_the_code_is_a_syntax_error_not_a_crash():
    """JSON can hold `"\\ud800"`, which is no character: Python refuses to compile it."""
    analysis = analyze_notebook(
        notebook(code("a = 1", "stage:one"), code("x = 1\ny = '\ud800'", "stage:two")), "s.ipynb"
    )
    assert [(d.code, d.cell, d.line) for d in analysis.diagnostics] == [("syntax-error", 1, 2)]
    assert "lone surrogate ('\\ud800')" in analysis.diagnostics[0].message


def test_cached_analyses_are_bounded_by_the_size_of_their_sources():
    """The cache keeps the sidebar's re-analysis quick, and no more: a worker that has seen
    a few big notebooks must not hold twenty times their code for good."""
    assert analyze_code("x = 1\ny = x") is analyze_code("x = 1\ny = x")
    cache = _Cache(entries=3, characters=100)
    sources = [f"v{i} = {i}" * 4 for i in range(10)]  # 24 characters each
    for source in sources:
        cache.put(source, analyze_code(source))
        assert len(cache.entries) <= 3
    assert list(cache.entries) == sources[-3:]
    assert cache.get(sources[-3]) is not None  # used: now the last to go
    cache.put("w = 1", analyze_code("w = 1"))
    assert list(cache.entries) == [sources[-1], sources[-3], "w = 1"]
    longer = "y = 2\n" * 10  # 60 characters: 113 in all, over the 100
    cache.put(longer, analyze_code(longer))
    assert list(cache.entries) == [sources[-3], "w = 1", longer] and cache.characters == 89
    too_big = "z = 0\n" * 20  # more than the whole budget: not kept, nothing evicted for it
    cache.put(too_big, analyze_code(too_big))
    assert list(cache.entries) == [sources[-3], "w = 1", longer]
