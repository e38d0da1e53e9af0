from jupyter_mlops.dataflow import Event, analyze_code


def events(source: str) -> list[tuple[str, str]]:
    return [(e.kind.value, e.name) for e in analyze_code(source).events]


def test_read_then_write_in_execution_order():
    assert events("y = x + 1") == [("read", "x"), ("write", "y")]
    assert events("x += 1") == [("read", "x"), ("write", "x")]


def test_attribute_and_subscript_assignment_mutate_the_base_name():
    assert ("mutate", "df") in events("df['c'] = 1")
    assert ("mutate", "cfg") in events("cfg.a.b = 2")
    assert ("mutate", "arr") in events("arr[0] += 1")
    assert ("read", "i") in events("arr[i] = 1")
    assert ("mutate", "d") in events("del d['k']")


def test_method_calls_mutate_unless_known_read_only():
    assert ("mutate", "items") in events("items.append(1)")
    assert ("mutate", "model") in events("model.fit(X, y)")
    assert ("mutate", "df") not in events("df.head()")
    assert ("mutate", "df") in events("df.dropna(inplace=True)")
    assert ("mutate", "df") not in events("df.dropna()")


def test_function_bodies_are_deferred_reads():
    found = events("def f(a, b=default):\n    return a + outer\n")
    assert ("read", "default") in found
    assert ("deferred_read", "outer") in found
    assert ("write", "f") in found
    assert ("deferred_read", "a") not in found


def test_global_assignment_in_a_function_is_a_write():
    assert ("write", "cache") in events("def f():\n    global cache\n    cache = 1\n")


def test_lambda_and_comprehension_scopes():
    assert ("deferred_read", "k") in events("f = lambda x: x * k")
    found = events("[i * k for i in range(n)]")
    assert ("read", "k") in found and ("read", "n") in found
    assert ("read", "i") not in found


def test_class_body_reads_now_and_methods_later():
    found = events("class A(Base):\n    z = w\n    def m(self):\n        return q\n")
    assert ("read", "Base") in found and ("read", "w") in found
    assert ("deferred_read", "q") in found
    assert ("write", "m") not in found and ("write", "A") in found


def test_control_flow_and_binding_forms():
    found = events(
        "for i in items:\n    total = i\n"
        "with open(p) as fh:\n    data = fh.read()\n"
        "try:\n    pass\nexcept ValueError as err:\n    pass\n"
        "if (n := size):\n    pass\n"
    )
    for name in ("i", "total", "fh", "data", "err", "n"):
        assert ("write", name) in found
    assert ("read", "items") in found and ("read", "size") in found


def test_match_statement_captures():
    found = events("match point:\n    case (a, b):\n        c = a\n")
    assert ("write", "a") in found and ("write", "c") in found


def test_imports_are_writes_and_recorded():
    result = analyze_code("import numpy as np\nfrom sklearn.svm import SVC\nimport os.path\n")
    assert {"np", "SVC", "os"} <= result.touched
    assert result.imports == ["numpy", "sklearn", "os"]
    assert result.imported == {"np", "SVC", "os"}


def test_builtins_and_kernel_names_are_not_reads():
    assert events("print(len(x)); display(x)") == [("read", "x"), ("read", "x")]


def test_magics_and_shell_lines_do_not_break_analysis():
    result = analyze_code("%matplotlib inline\nfiles = !ls\ny = x\n")
    assert result.syntax_error is None
    assert ("write", "files") in [(e.kind.value, e.name) for e in result.events]
    assert "x" in result.reads


def test_cell_magics():
    assert analyze_code("%%bash\necho $HOME\n").events == []
    captured = events("%%capture out\nimport pandas\nz = y\n")
    assert ("write", "out") in captured and ("read", "y") in captured
    assert ("write", "t") in events("%%time\nt = s\n")
    assert ("write", "x") in events("%time x = compute()")


def test_dynamic_code_is_flagged():
    assert analyze_code("from numpy import *").dynamic
    assert analyze_code("%run helpers.py").dynamic
    assert analyze_code("exec('a = 1')").dynamic
    assert analyze_code("globals()['a'] = 1").dynamic
    assert not analyze_code("a = 1").dynamic


def test_fit_calls_name_the_training_data():
    assert analyze_code("clf.fit(X_train, y)").fit_calls == {"clf": "X_train"}
    assert analyze_code("m = make_pipeline(s).fit(X[cols], y)").fit_calls == {"m": "X[cols]"}


def test_printed_names_and_top_level_assignments():
    result = analyze_code("acc = 0.9\nprint(acc)\nprint(loss)\nfor k in range(2):\n    inner = k\n")
    assert result.printed == ["acc", "loss"]
    assert result.top_level_assigned == ["acc"]


def test_syntax_errors_are_reported_not_raised():
    result = analyze_code("def broken(:\n")
    assert result.syntax_error and result.syntax_error_line == 1
    assert result.events == []


def test_event_kinds_are_strings():
    assert Event.READ == "read"
