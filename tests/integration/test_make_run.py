"""`make run`'s real path: `python -m local serve` in its own process, driven over HTTP and
through the CLI a newcomer uses (token, clock, outbox)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.runtime import free_port
from tests.conftest import ROOT, patient_body, tenant_body, unique


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def request(url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    sent = urllib.request.Request(
        url,
        data=data,
        headers=headers,
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    banner = ""
    while "CareLoop is serving" not in banner:
        assert time.monotonic() < deadline and process.poll() is None, banner
        banner += process.stdout.readline()
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0


def test_newcomer_path(server: str) -> None:
    tenant_id = unique("run")
    operator = cli("token", "--role", "operator")
    status, _ = request(f"{server}/tenants", operator, tenant_body(tenant_id))
    assert status == 201
    staff = cli("token", "--tenant", tenant_id, "--role", "staff")
    status, patient = request(f"{server}/patients", staff, patient_body())
    assert status == 201
    status, page = request(f"{server}/patients", staff)
    assert status == 200 and [p["id"] for p in page["items"]] == [patient["id"]]
    status, _ = request(f"{server}/patients", "not-a-token")
    assert status == 401
    status, spec = request(f"{server}/openapi.json")
    assert status == 200 and "/local/outbox" in spec["paths"]


def test_clock_and_outbox_commands(server: str) -> None:
    before = cli("clock", "--server", server)
    after = cli("clock", "--server", server, "advance", "1d")
    assert after > before and after.endswith("Z")
    assert cli("outbox", "--server", server, "--channel", "push") == "(nothing sent yet)"
    for change, field in (
        ({"advance": "tomorrow"}, "$.advance"),
        ({"advance": "99999999999w"}, "$.advance"),  # past what a timedelta holds: was a 500
        ({"advance": "9999999w"}, "$.advance"),  # past year 9999
        ({"set": "9999-12-31T23:59:59-01:00"}, "$.set"),
    ):
        status, body = request(f"{server}/local/clock", body=change)
        assert status == 400, (change, body)
        assert body["error"]["details"][0]["path"] == field
