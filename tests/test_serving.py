"""The engineer's hand-off: serve the registered candidate over HTTP and get predictions."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from conftest import cli, code, notebook, write
from s3_server import free_port

pytestmark = pytest.mark.slow


def test_the_candidate_serves_predictions(workdir):
    write(
        notebook(
            code(
                "import numpy as np\nimport pandas as pd\n"
                "from sklearn.linear_model import LogisticRegression",
                "setup",
            ),
            code(
                "rng = np.random.default_rng(3)\n"
                "X = pd.DataFrame(rng.random((60, 3)), columns=['a', 'b', 'c'])\n"
                "y = (X['a'] > 0.5).astype(int)",
                "stage:data",
            ),
            code("clf = LogisticRegression().fit(X, y)", "stage:train", "model:clf"),
            model_name="served",
        ),
        workdir / "serve_me.ipynb",
    )
    assert cli("run", "serve_me.ipynb", cwd=workdir).returncode == 0
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    version = mlflow.MlflowClient(uri).get_model_version_by_alias("served", "candidate")
    port = free_port()
    command = (
        f'mlflow models serve -m "models:/served/{version.version}" --env-manager local '
        f"-h 127.0.0.1 -p {port}"
    )
    assert command.replace(f" -p {port}", " -p 5001") in version.description  # the card's own
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/served@candidate",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=workdir,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.time() < deadline, "the model server did not start"
                time.sleep(0.5)
        mlflow.set_tracking_uri(uri)
        example = mlflow.pyfunc.load_model("models:/served@candidate").input_example
        mlflow.set_tracking_uri(None)
        body = json.dumps({"dataframe_split": example.to_dict(orient="split")}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        predictions = json.loads(urllib.request.urlopen(request, timeout=30).read())
        assert len(predictions["predictions"]) == len(example) == 5
        assert set(predictions["predictions"]) <= {0, 1}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
