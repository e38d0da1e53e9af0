"""Process-wide state a notebook's statements set, and how each kind crosses a stage boundary.

In a notebook every cell runs in one process, so `np.random.seed(0)` in one cell decides the
numbers drawn three cells later, and `sklearn.set_config(transform_output="pandas")` changes
what every later cell gets back. A pipeline runs each stage in a fresh kernel, so such state
must be carried, or each stage starts somewhere the notebook never was. Two kinds:

* **random state** (the global generators of NumPy, `random` and torch): a generator's state
  at the end of one stage is where the next stage's draws continue, so once the notebook seeds
  one, every later stage takes the generators' state from the stage before it in notebook
  order (a value named :data:`RANDOM_STATE`) and hands its own on. Replaying the seed would
  restart the sequence instead of continuing it.
* **configuration** (library options, warnings filters, the environment, `sys.path`, the
  working folder, plotting style): setting it twice is the same as setting it once, so the
  statements that set it are *replayed* at the start of every later stage, in notebook order.

Statements are recognised by the dotted name they call or assign into, resolved through the
notebook's imports (`np` -> `numpy`), never by a value's type name.
"""

from __future__ import annotations

from typing import Literal

RANDOM_STATE = "__mlops_random_state__"  # the pseudo-variable the generators' states travel as

Kind = Literal["seed", "config"]

GENERATORS = ("numpy", "random", "torch")  # the global generators whose state is carried
# Seeding calls -> the generators they seed.
SEED_CALLS = {
    "numpy.random.seed": ("numpy",),
    "random.seed": ("random",),
    "torch.manual_seed": ("torch",),
    "torch.random.manual_seed": ("torch",),
    "torch.cuda.manual_seed_all": ("torch",),
    "lightning.seed_everything": GENERATORS,
    "pytorch_lightning.seed_everything": GENERATORS,
    "keras.utils.set_random_seed": GENERATORS,
    "tensorflow.keras.utils.set_random_seed": GENERATORS,
}

# Calls that make a random generator object: drawing from it changes it, so a stage that
# uses one (directly, or through an estimator holding it) hands the changed one on.
GENERATOR_CALLS = frozenset(
    {
        "numpy.random.RandomState",
        "numpy.random.default_rng",
        "numpy.random.Generator",
        "random.Random",
        "torch.Generator",
        "sklearn.utils.check_random_state",
    }
)

CONFIG_CALLS = frozenset(
    {
        "sklearn.set_config",
        "pandas.set_option",
        "pandas.reset_option",
        "matplotlib.use",
        "matplotlib.rc",
        "matplotlib.rcdefaults",
        "matplotlib.style.use",
        "matplotlib.rcParams.update",
        "matplotlib.pyplot.rc",
        "matplotlib.pyplot.rcdefaults",
        "matplotlib.pyplot.style.use",
        "matplotlib.pyplot.rcParams.update",
        "matplotlib.pyplot.switch_backend",
        "seaborn.set",
        "seaborn.set_theme",
        "seaborn.set_style",
        "seaborn.set_context",
        "seaborn.set_palette",
        "warnings.filterwarnings",
        "warnings.simplefilter",
        "warnings.resetwarnings",
        "os.environ.update",
        "os.environ.setdefault",
        "os.environ.pop",
        "os.putenv",
        "os.unsetenv",
        "os.chdir",
        "sys.path.append",
        "sys.path.insert",
        "sys.path.extend",
        "sys.path.remove",
        "sys.setrecursionlimit",
        "numpy.set_printoptions",
        "numpy.seterr",
        "torch.set_default_dtype",
        "torch.set_num_threads",
        "torch.use_deterministic_algorithms",
        "torch.set_grad_enabled",
        "torch.set_printoptions",
        "logging.basicConfig",
        "%matplotlib",
        "%config",
        "%env",
        "%cd",
        "%precision",
        "%autoreload",
    }
)

# Assigning into these (`plt.rcParams["figure.dpi"] = 120`, `os.environ["X"] = "1"`,
# `pd.options.display.max_rows = 20`) configures too.
CONFIG_TARGETS = (
    "matplotlib.rcParams",
    "matplotlib.pyplot.rcParams",
    "os.environ",
    "pandas.options",
    "torch.backends",
    "sys.path",
)


def value_name(variable: str) -> str:
    """A handed-over value as the user knows it: the generators' state has no name of hers."""
    return "(random state)" if variable == RANDOM_STATE else variable


def resolve(dotted: str, imports: dict[str, str]) -> str:
    """`np.random.seed` -> `numpy.random.seed`, given the names the notebook imported."""
    if dotted.startswith("%"):
        return dotted
    first, dot, rest = dotted.partition(".")
    return imports.get(first, first) + dot + rest


def seeded(dotted: str, imports: dict[str, str]) -> tuple[str, ...]:
    """The generators a call (as written) seeds: none for most calls."""
    return SEED_CALLS.get(resolve(dotted, imports), ())


def classify(dotted: str, imports: dict[str, str]) -> Kind | None:
    """Whether a call or assignment (as written) seeds a generator or configures."""
    name = resolve(dotted, imports)
    if name in SEED_CALLS:
        return "seed"
    if name in CONFIG_CALLS or any(
        name == target or name.startswith(target + ".") for target in CONFIG_TARGETS
    ):
        return "config"
    return None
