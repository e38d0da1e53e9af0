"""`--tracking-uri` pointing elsewhere than ./mlflow.db: every call goes there, registry
included, and a stage cache shared by two stores never names a model the other store lacks.

MLflow's registry resolves a logged model's `models:/m-...` through the process-wide tracking
URI, not its client's: a run given another sqlite store used to fail at registration with
"Logged model with ID 'm-...' not found", and a second store sharing the first one's stage
cache failed the same way.
"""

import pytest
from conftest import cli, code, notebook, write
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def model_notebook():
    return notebook(
        code("import numpy as np", "setup"),
        code(
            "rng = np.random.default_rng(0)\n"
            "X = rng.random((60, 3))\n"
            "y = (X[:, 0] > 0.5).astype(int)",
            "stage:data",
        ),
        code(
            "from sklearn.linear_model import LogisticRegression\n"
            "clf = LogisticRegression().fit(X, y)",
            "stage:train",
            "model:clf",
        ),
        code("accuracy = float(clf.score(X, y))", "stage:evaluate", "metrics"),
        model_name="stores",
    )


def versions(store: str) -> list[str]:
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    return sorted(str(v.version) for v in client.search_model_versions("name='stores'"))


def test_two_other_stores_each_get_their_model_registered(workdir):
    write(model_notebook(), workdir / "nb.ipynb")
    first, second = (f"sqlite:///{workdir / 'stores' / name}" for name in ("a.db", "b.db"))
    (workdir / "stores").mkdir()

    result = cli("run", "nb.ipynb", "--tracking-uri", first, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert versions(first) == ["1"]

    # Same runs folder, so the same stage cache: the data stage is reused, but the stage
    # whose model lives in the first store runs again for the second.
    result = cli("run", "nb.ipynb", "--tracking-uri", second, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "= data" in result.stderr and "cached" in result.stderr
    assert "✓ train" in result.stderr
    assert versions(second) == ["1"]
    assert versions(first) == ["1"]

    # Back to the first store: everything, the model included, comes from its cache.
    result = cli("run", "nb.ipynb", "--tracking-uri", first, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "✓ train" not in result.stderr
    assert versions(first) == ["1", "2"]

    assert not (workdir / "mlflow.db").exists()  # nothing went to the default store
