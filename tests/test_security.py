"""The server extension as a door into the user's machine, tested against a real Jupyter
server (pytest-jupyter): every endpoint needs authentication, cookie-authenticated writes need
Jupyter's XSRF token, paths stay inside the server's root (no `..`, no absolute paths, no
symlinks out), run ids are validated, parameter values reach a stage as data, and no secret
of the server's environment appears in a response or a log the UI shows.

Tag edits from the UI go through JupyterLab's own contents API, not this extension, and are
tested with the UI.
"""

from __future__ import annotations

import json
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import code, notebook, wait_for, write
from tornado.httpclient import HTTPClientError, HTTPResponse
from tornado.httputil import url_concat

from jupyter_mlops.server.redact import MASK

RUN_ID = "20261127-101500-3fa2c1"  # well-formed; no such run
# Every endpoint, with a body it would accept from an authenticated user.
ENDPOINTS = [
    ("GET", "config", None),
    ("POST", "analyze", {"path": "work/nb.ipynb"}),
    ("POST", "convert", {"path": "work/nb.ipynb"}),
    ("POST", "runs", {"path": "work/nb.ipynb", "only": ["no_such_stage"]}),
    ("GET", "runs", None),
    ("GET", f"runs/{RUN_ID}", None),
    ("DELETE", f"runs/{RUN_ID}", None),
]
WRITES = [e for e in ENDPOINTS if e[0] in ("POST", "DELETE")]
# What these requests answer once let in: the run to start names no stage (400, so that no
# run starts), and the run to cancel doesn't exist (404).
ACCEPTED = {"config": 200, "analyze": 200, "convert": 200, "runs": 400, f"runs/{RUN_ID}": 404}


def _nb(root: Path) -> Path:
    return write(
        notebook(code("x = 1", "stage:load"), code("y = x + 1", "stage:train")),
        root / "work" / "nb.ipynb",
    )


async def _send(jp_fetch, method: str, path: str, body, headers: dict[str, str]) -> HTTPResponse:
    return await jp_fetch(
        "jupyter-mlops",
        *path.split("/"),
        method=method,
        body=None if body is None else json.dumps(body),
        headers=headers,
        allow_nonstandard_methods=True,
        raise_error=False,
    )


def _nothing_written(root: Path) -> bool:
    return not (root / "mlops-runs").exists() and not (root / "work" / "nb_pipeline").exists()


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("credentials", ["none", "wrong-token", "forged-cookie"])
async def test_every_endpoint_rejects_unauthenticated_requests(
    jp_fetch, jp_root_dir: Path, jp_http_port: int, method, path, body, credentials
):
    _nb(jp_root_dir)
    # A matching XSRF cookie and header, so that it is authentication that says no.
    xsrf = "0123456789abcdef"
    login = f"username-127-0-0-1-{jp_http_port}=2|1:0|10:1700000000|forged"
    headers = {
        "none": {"Authorization": ""},
        "wrong-token": {"Authorization": "token not-the-token"},
        "forged-cookie": {"Authorization": "", "Cookie": f"{login}; _xsrf={xsrf}"},
    }[credentials]
    headers.setdefault("Cookie", f"_xsrf={xsrf}")
    response = await _send(jp_fetch, method, path, body, {**headers, "X-XSRFToken": xsrf})
    assert response.code == 403, response.body
    assert b"_xsrf" not in response.body
    assert _nothing_written(jp_root_dir)


async def _log_in(http_server_client, jp_base_url: str, jp_serverapp) -> SimpleCookie:
    """Log in through Jupyter's login form with the server's token, as a browser does: the
    login cookie and the `_xsrf` cookie it gets."""
    login = f"{jp_base_url}login"
    page = await http_server_client.fetch(login)
    cookies = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        cookies.load(header)
    form = {"password": jp_serverapp.identity_provider.token, "_xsrf": cookies["_xsrf"].value}
    with pytest.raises(HTTPClientError) as redirect:
        await http_server_client.fetch(
            url_concat(login, {"next": jp_base_url}),
            method="POST",
            body=urlencode(form),
            headers={"Cookie": _header(cookies)},
            follow_redirects=False,
        )
    assert redirect.value.code == 302
    for header in redirect.value.response.headers.get_list("Set-Cookie"):
        cookies.load(header)
    return cookies


def _header(cookies: SimpleCookie) -> str:
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_cookie_authenticated_writes_need_the_xsrf_token(
    jp_fetch, jp_root_dir: Path, http_server_client, jp_base_url, jp_serverapp, method, path, body
):
    _nb(jp_root_dir)
    browser = await _log_in(http_server_client, jp_base_url, jp_serverapp)
    cookie_only = {"Authorization": "", "Cookie": _header(browser)}
    response = await _send(jp_fetch, method, path, body, cookie_only)
    assert response.code == 403, response.body
    assert _nothing_written(jp_root_dir)
    wrong = {**cookie_only, "X-XSRFToken": "2|00000000|" + "0" * 32 + "|1700000000"}
    assert (await _send(jp_fetch, method, path, body, wrong)).code == 403
    assert _nothing_written(jp_root_dir)
    # The same browser with its token gets in: the 403s above were the XSRF check.
    with_token = {**cookie_only, "X-XSRFToken": browser["_xsrf"].value}
    response = await _send(jp_fetch, method, path, body, with_token)
    assert response.code == ACCEPTED[path], response.body


async def test_cookie_authenticated_reads_need_no_xsrf_token(
    jp_fetch, http_server_client, jp_base_url, jp_serverapp
):
    browser = await _log_in(http_server_client, jp_base_url, jp_serverapp)
    cookie_only = {"Authorization": "", "Cookie": _header(browser)}
    assert (await _send(jp_fetch, "GET", "config", None, cookie_only)).code == 200
    assert (await _send(jp_fetch, "GET", "runs", None, cookie_only)).code == 200


# --- paths stay inside the root -------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path, jp_root_dir: Path) -> Path:
    """A folder outside the server's root holding a notebook, reachable through symlinks in
    the root: `link.ipynb` (to the notebook) and `linked/` (to the folder)."""
    folder = tmp_path / "outside"
    _nb(folder)
    (jp_root_dir / "link.ipynb").symlink_to(folder / "work" / "nb.ipynb")
    (jp_root_dir / "linked").symlink_to(folder / "work")
    return folder


def _escaping_paths(root: Path, outside: Path) -> list[str]:
    return [
        "../outside/work/nb.ipynb",
        "work/../../outside/work/nb.ipynb",
        "work\\..\\..\\outside\\work\\nb.ipynb",
        str(outside / "work" / "nb.ipynb"),
        str(root / "work" / "nb.ipynb"),  # absolute, even inside the root
        "/etc/passwd",
        "link.ipynb",
        "linked/nb.ipynb",
    ]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_paths_outside_the_root_are_rejected_everywhere(
    api, jp_root_dir: Path, outside: Path
):
    _nb(jp_root_dir)
    before = _tree(outside)
    rejected = 0
    for path in _escaping_paths(jp_root_dir, outside):
        for endpoint, body in (
            ("analyze", {"path": path}),
            ("convert", {"path": path}),
            ("convert", {"path": "work/nb.ipynb", "output": path.removesuffix("/nb.ipynb")}),
            ("runs", {"path": path}),
        ):
            error = await api("POST", endpoint, body=body, expect=403)
            assert "root" in error["message"], (endpoint, body, error)
            rejected += 1
    assert rejected == 32
    assert _tree(outside) == before
    assert _nothing_written(jp_root_dir)


# --- run ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run_id",
    [
        "not-a-run-id",
        "..",
        "..%2F..%2Fetc",
        "%2e%2e",
        f"{RUN_ID}x",
        RUN_ID.upper(),
        f"{RUN_ID[:-1]}*",
        "20261127-101500-3fa2c1%00",
    ],
)
async def test_run_ids_are_validated(api, run_id: str):
    for method in ("GET", "DELETE"):
        error = await api(method, f"runs/{run_id}", expect=400)
        assert "is not a run id" in error["message"]


async def test_a_well_formed_unknown_run_id_is_not_found(api):
    for method in ("GET", "DELETE"):
        await api(method, f"runs/{RUN_ID}", expect=404)


# --- parameters are data ----------------------------------------------------------------------


def _hostile_values(marker: Path) -> dict[str, str]:
    command = f"__import__('os').system('touch {marker}')"
    return {
        "expression": command,
        "breakout": f"'; {command}; '",
        "multiline": f'"""\n{command}\n"""\\',
    }


@pytest.mark.slow
async def test_parameter_values_reach_the_stage_as_strings(api, jp_root_dir: Path, tmp_path: Path):
    write(
        notebook(
            code("expression = 'a'\nbreakout = 'b'\nmultiline = 'c'", "parameters"),
            code(
                "import json\nseen = [expression, breakout, multiline]\n"
                "assert all(isinstance(v, str) for v in seen)\n"
                "json.dump(seen, open('seen.json', 'w'))",
                "stage:echo",
            ),
        ),
        jp_root_dir / "inject.ipynb",
    )
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    hostile = _hostile_values(marker)
    for body in (
        {"path": "inject.ipynb", "parameters": {"expression": {"__class__": "os"}}},
        {"path": "inject.ipynb", "parameters": {"x = __import__('os') #": 1}},
    ):
        await api("POST", "runs", body=body, expect=400)
    assert _nothing_written(jp_root_dir)
    body = {"path": "inject.ipynb", "parameters": hostile}
    started = await api("POST", "runs", body=body, expect=202)
    run = await wait_for(api, started["id"])
    assert run["status"] == "succeeded", run["log_tail"]
    assert run["parameters"] == hostile
    seen = json.loads((jp_root_dir / "seen.json").read_text())
    assert seen == list(hostile.values())
    assert not marker.exists()


# --- secrets ------------------------------------------------------------------------------------


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """An MLflow token in the server's environment (which runs inherit); with a quote and a
    backslash, so it also looks different inside JSON."""
    value = f'sekrit-{uuid.uuid4().hex}"\\'
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", value)
    return value


def _leaks(response_text: str, secret: str) -> bool:
    return secret in response_text or json.dumps(secret)[1:-1] in response_text


@pytest.mark.slow
async def test_no_secret_reaches_a_response_or_a_log_the_ui_shows(
    api, jp_fetch, jp_root_dir: Path, secret: str
):
    write(
        notebook(
            code(
                "import os\ntoken = os.environ['MLFLOW_TRACKING_TOKEN']\nprint('using', token)",
                "stage:connect",
            ),
            code("raise PermissionError('the tracking server refused ' + token)", "stage:fail"),
        ),
        jp_root_dir / "leaky.ipynb",
    )

    async def text(method: str, path: str, body=None) -> str:
        response = await _send(jp_fetch, method, path, body, headers={})  # token-authenticated
        assert response.code < 300, response.body
        assert not _leaks(response.body.decode(), secret), (path, response.body)
        return response.body.decode()

    await text("GET", "config")
    await text("POST", "analyze", {"path": "leaky.ipynb"})
    await text("POST", "convert", {"path": "leaky.ipynb"})
    run_id = json.loads(await text("POST", "runs", {"path": "leaky.ipynb"}))["id"]
    await wait_for(api, run_id)
    run = json.loads(await text("GET", f"runs/{run_id}"))
    assert run["status"] == "failed"
    assert MASK in run["error"]["message"] and MASK in run["stages"][0]["log_tail"]
    await text("GET", "runs")
    # The files on disk keep everything (they are the user's); only what is sent is masked.
    [state] = (jp_root_dir / "mlops-runs").glob(f"*/{run_id}/run.json")
    assert _leaks(state.read_text(), secret)


@pytest.fixture
def tracking_with_password(jp_server_config: dict) -> dict:
    """A tracking server and MLflow UI whose URL carries a password (basic auth)."""
    url = "http://alice:hunter2-pw@127.0.0.1:9/"
    jp_server_config["MlopsExtension"] = {"tracking_uri": url, "mlflow_ui_url": url}
    return jp_server_config


async def test_credentials_in_the_tracking_uri_are_masked(tracking_with_password, jp_fetch):
    config = json.loads((await jp_fetch("jupyter-mlops", "config")).body)
    assert config["tracking_uri"] == f"http://{MASK}@127.0.0.1:9/"
    assert "hunter2" not in json.dumps(config)
