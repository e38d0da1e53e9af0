"""Keeping the server's secrets out of what it sends to the browser.

Runs inherit the server's environment, because stages need its credentials (an MLflow token,
cloud keys for an `s3://` artifact store). A stage may print one, or an exception may carry
it, and run logs and tracebacks go to the browser; so may a tracking URI with a password in
it. Every response is masked on its way out, as CI systems mask their secrets in logs.
"""

from __future__ import annotations

import json
import os
import re

MASK = "***"
# Environment variables whose values are credentials, by the conventions of MLflow, the
# cloud SDKs and Jupyter (MLFLOW_TRACKING_TOKEN, AWS_SECRET_ACCESS_KEY, JUPYTER_TOKEN...).
SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|SECRET_KEY|CREDENTIALS?)$", re.I
)
MIN_SECRET = 6  # shorter values ("1", "true") would mask ordinary text
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@\"']+:[^/\s@\"']+@")


def environment_secrets() -> list[str]:
    """Secret values of this process's environment, longest first (so none masks a part of
    another), each also as it appears inside a JSON string."""
    values = {
        value
        for name, value in os.environ.items()
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET
    }
    forms = values | {json.dumps(value)[1:-1] for value in values}
    return sorted(forms, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with environment secrets and the passwords of `scheme://user:password@` URLs
    masked."""
    text = _URL_CREDENTIALS.sub(f"{MASK}@", text)
    for secret in environment_secrets():
        text = text.replace(secret, MASK)
    return text
