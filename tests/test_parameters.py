import math

import pytest

from jupyter_mlops.errors import BadInput
from jupyter_mlops.parameters import (
    ParameterProblem,
    coerce,
    parse_parameters,
    python_literal,
    resolve,
)


def test_typed_parameters_with_help():
    params = parse_parameters(
        "n_estimators: int = 100  # trees in the forest\n"
        "rate: float = 1\n"
        "name = 'x'\n"
        "flags: list = [1, 2]\n"
        "depth: int | None = None  # unlimited\n"
        "negative = -3\n"
    )
    by_name = {p.name: p for p in params}
    assert by_name["n_estimators"].type == "int" and by_name["n_estimators"].default == 100
    assert by_name["n_estimators"].help == "trees in the forest"
    assert by_name["rate"].default == 1.0 and isinstance(by_name["rate"].default, float)
    assert by_name["name"].type == "str"
    assert by_name["flags"].type == "list"
    assert by_name["depth"].optional and by_name["depth"].type == "int"
    assert by_name["negative"].default == -3
    assert [p.line for p in params] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("import os\n", "not a plain assignment"),
        ("x = compute()\n", "literal values"),
        ("x: int\n", "no default"),
        ("x: int = 'a'\n", "must be an integer"),
        ("x: numpy.ndarray = 1\n", "unsupported parameter type"),
        ("mlops_artifacts = 'a'\n", "reserved"),
        ("for i in range(3):\n    pass\n", "not a plain assignment"),
    ],
)
def test_parameter_cell_problems(code, fragment):
    with pytest.raises(ParameterProblem) as raised:
        parse_parameters(code)
    assert fragment in str(raised.value)
    assert raised.value.line == 1


def test_command_line_values_are_parsed_by_type():
    assert coerce("int", "10", "n", from_text=True) == 10
    assert coerce("float", "1e-3", "r", from_text=True) == 0.001
    assert coerce("bool", "yes", "b", from_text=True) is True
    assert coerce("str", "10", "s", from_text=True) == "10"
    assert coerce("list", "[1, 2]", "l", from_text=True) == [1, 2]
    assert coerce("dict", "{a: 1}", "d", from_text=True) == {"a": 1}
    assert coerce("any", "3", "a", from_text=True) == 3


@pytest.mark.parametrize(
    ("kind", "text"),
    [("int", "abc"), ("int", "1.5"), ("float", "fast"), ("bool", "maybe"), ("list", "{a: 1}")],
)
def test_bad_command_line_values(kind, text):
    with pytest.raises(BadInput) as raised:
        coerce(kind, text, "p", from_text=True)
    assert "parameter `p`" in str(raised.value)


def test_file_values_must_match_types():
    assert coerce("float", 3, "x") == 3.0
    with pytest.raises(BadInput):
        coerce("int", True, "x")
    with pytest.raises(BadInput):
        coerce("int", 2.5, "x")
    with pytest.raises(BadInput):
        coerce("str", 5, "x")


def test_resolve_applies_file_then_command_line():
    params = parse_parameters("n: int = 1\nname = 'a'\nlimit: int | None = None\n")
    values = resolve(params, {"n": 2, "limit": None}, [("n", "3")])
    assert values == {"n": 3, "name": "a", "limit": None}


def test_unknown_parameter_suggests_the_closest():
    params = parse_parameters("n_estimators = 1\n")
    with pytest.raises(BadInput, match="did you mean `n_estimators`"):
        resolve(params, None, [("n_estimator", "2")])
    with pytest.raises(BadInput, match="no parameters cell"):
        resolve([], None, [("x", "1")])


def test_values_stay_data():
    params = parse_parameters("command = 'ls'\n")
    hostile = "__import__('os').system('touch /tmp/x')"
    assert resolve(params, None, [("command", hostile)]) == {"command": hostile}


@pytest.mark.parametrize(
    "value",
    [
        1e999,
        -1e999,
        [1e999, (0.5,), {"a": -1e999}],
        (),
        ("x",),
        {"k": [None, True, "it's"]},
        {1e999},
        set(),
    ],
)
def test_generated_literals_evaluate_back_to_the_value(value):
    assert eval(python_literal(value), {}) == value


def test_not_a_number_stays_not_a_number():
    assert math.isnan(eval(python_literal(math.nan), {}))


def test_values_are_checked_by_the_rule_for_defaults():
    with pytest.raises(BadInput, match="too large for a float"):
        coerce("float", 10**400, "x")
    with pytest.raises(BadInput, match="got 1e-05; quote it to pass it as text"):
        coerce("str", 1e-05, "tag")
    with pytest.raises(BadInput, match=r"`x` \(at `x\[1\]\['k'\]`\) is a set"):
        coerce("any", [1, {"k": {1}}], "x")
    assert coerce("str", "1e-05", "tag", from_text=True) == "1e-05"
    assert coerce("any", "1e-05", "x", from_text=True) == 1e-05
    assert math.isnan(coerce("any", "NaN", "x", from_text=True))


@pytest.mark.parametrize("code", ["x: list = (1, 2)\n", "x: dict = {1: 2}\n", "x = [1j]\n"])
def test_declared_types_do_not_make_a_bad_default_pass(code):
    with pytest.raises(ParameterProblem, match="parameter `x`"):
        parse_parameters(code)


def test_a_name_and_value_given_as_one_word_is_explained():
    params = parse_parameters("lr = 0.1\n")
    with pytest.raises(BadInput, match="two words: -p lr 1e-05"):
        resolve(params, None, [("lr=1e-05", "x")])


@pytest.mark.parametrize("text", ["None", "null", "NULL", "~", "", " none "])
def test_none_on_the_command_line_for_an_optional_parameter(text):
    """`max_depth: int | None = 8  # None: no limit` takes `-p max_depth None` (issue 15)."""
    params = parse_parameters("max_depth: int | None = 8\nname: str | None = 'a'\nn: int = 1\n")
    assert resolve(params, None, [("max_depth", text)])["max_depth"] is None
    with pytest.raises(BadInput, match="must be an integer"):
        resolve(params, None, [("n", text)])  # not optional: still refused


def test_text_that_is_a_string_stays_one_for_an_optional_text_parameter():
    params = parse_parameters("penalty: str | None = 'l2'\n")
    assert resolve(params, None, [("penalty", "None")]) == {"penalty": None}
    assert resolve(params, None, [("penalty", "null")]) == {"penalty": None}
    for text in ("none", "", "~"):
        assert resolve(params, None, [("penalty", text)]) == {"penalty": text}
