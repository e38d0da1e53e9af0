from jupyter_mlops.dataflow import Event, analyze_code


def events(source: str) -> list[tuple[str, str]]:
    return [(e.kind.value, e.name) for e in analyze_code(source).events]


def test_read_then_write_in_execution_order():
    assert events("y = x + 1") == [("read", "x"), ("write", "y")]
    # `x += [1]` changes a list in place: a mutation, seen through every alias of x.
    assert events("x += 1") == [("read", "x"), ("mutate", "x")]


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


def test_a_top_level_function_is_a_definition_read_where_it_is_used():
    result = analyze_code("@trace\ndef f(a, b=default):\n    return a + outer + g(a)\n")
    found = [(e.kind.value, e.name) for e in result.events]
    assert ("read", "default") in found and ("read", "trace") in found
    assert found[-1] == ("write", "f")
    definition = result.events[-1].definition
    assert definition is result.definitions["f"]
    assert definition.free == {"outer", "g"}  # read when f is called, not now
    assert definition.needs == {"default", "trace"}
    assert definition.source.startswith("@trace\ndef f(a, b=default):")


def test_nested_functions_defer_their_reads():
    found = events("if ok:\n    def f(a):\n        return a + outer\n")
    assert ("deferred_read", "outer") in found and ("write", "f") in found
    assert ("deferred_read", "a") not in found


def test_what_a_function_changes_when_called():
    result = analyze_code(
        "def f():\n    global cache\n    cache = 1\n    log.append(1)\n    np.random.seed(0)\n"
    )
    # `np` too: that it is a module is the analysis' to know
    assert result.definitions["f"].changes_globals == {"cache", "log", "np"}
    assert "np.random.seed" in result.definitions["f"].seeds  # the analysis keeps the seeding
    assert ("write", "cache") not in events("def f():\n    global cache\n    cache = 1\n")
    nested = "if ok:\n    def f():\n        global cache\n        cache = 1\n"
    assert ("write", "cache") in events(nested)  # a value: its effect counted where defined


def test_lambda_and_comprehension_scopes():
    assert ("deferred_read", "k") in events("f = lambda x: x * k")
    found = events("[i * k for i in range(n)]")
    assert ("read", "k") in found and ("read", "n") in found
    assert ("read", "i") not in found


def test_class_body_reads_now_and_methods_later():
    result = analyze_code("class A(Base):\n    z = w\n    def m(self):\n        return q\n")
    found = [(e.kind.value, e.name) for e in result.events]
    assert ("read", "Base") in found and ("read", "w") in found
    assert ("write", "m") not in found and ("write", "A") in found
    assert result.definitions["A"].free == {"q"}


def test_aliases():
    def aliases(source):
        return [(e.name, e.others) for e in analyze_code(source).events if e.kind == "alias"]

    assert aliases("a = b") == [("a", ("b",))]
    assert aliases("a = b['x']") == [("a", ("b",))]
    assert aliases("frames = [df, other]") == [("frames", ("df", "other"))]
    assert aliases("a, b = c, d") == [("a", ("c",)), ("b", ("d",))]
    assert aliases("for d in [df]:\n    pass") == [("d", ("df",))]
    assert aliases("for k, m in models.items():\n    pass") == [
        ("k", ("models",)),
        ("m", ("models",)),
    ]
    assert aliases("model = pipe.fit(X, y)") == [("model", ("pipe",))]
    assert aliases("a = b.copy()") == [] and aliases("a = f(b)") == []


def test_effects_are_recorded_with_the_statement_to_replay():
    result = analyze_code(
        "import numpy as np\nnp.random.seed(0)\nplt.rcParams['x'] = 1\n"
        "for s in seeds:\n    pd.set_option('a', s)\ndf['c'] = 1\ndf.head()\n%matplotlib inline\n"
    )
    found = [(e.dotted, e.statement) for e in result.effects]
    assert found == [
        ("np.random.seed", "np.random.seed(0)"),
        ("plt.rcParams", "plt.rcParams['x'] = 1"),
        ("pd.set_option", None),  # inside a loop: can't be replayed alone
        ("%matplotlib", "get_ipython().run_line_magic('matplotlib', 'inline')"),
    ]
    assert result.imported_as == {"np": "numpy"}


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


def test_builtins_and_kernel_names_are_not_among_a_cells_reads():
    assert analyze_code("print(len(x)); display(x)").reads == {"x"}


def test_magics_and_shell_lines_do_not_break_analysis():
    result = analyze_code("%matplotlib inline\nfiles = !ls\ny = x\n")
    assert result.syntax_error is None
    assert ("write", "files") in [(e.kind.value, e.name) for e in result.events]
    assert "x" in result.reads


def test_cell_magics():
    assert analyze_code("%%bash\necho $HOME\n").reads == set()
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


def test_calls_name_their_arguments_and_definitions_the_parameters_they_change():
    result = analyze_code("def clean(df, n=1):\n    df.dropna(inplace=True)\nclean(frame, n=k)")
    assert result.definitions["clean"].changes == {"df"}
    assert result.definitions["clean"].parameters == ("df", "n")
    [call] = [e for e in result.events if e.kind == "call"]
    assert call.name == "clean" and call.arguments == (("0", "frame"), ("n", "k"))
