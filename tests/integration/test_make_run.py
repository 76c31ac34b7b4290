"""`make run`'s real path: `python -m local serve` in its own process, driven over HTTP and
through the CLI a newcomer uses (token, clock, outbox)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.runtime import free_port
from tests.conftest import ROOT, patient_body, tenant_body, unique, unique_reply_number


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


@dataclass
class Served:
    url: str
    banner: str  # what `make run` printed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server, with its state (keys, address) in a folder of its own, so that a developer's
    own `make run` in this folder is left alone; the CLI calls below read the same folder."""
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CARELOOP_LOCAL_STATE", str(tmp_path_factory.mktemp("run-state")))
        env.delenv("CARELOOP_LOCAL_URL", raising=False)
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
        while "API description" not in banner:
            assert time.monotonic() < deadline and process.poll() is None, banner
            banner += process.stdout.readline()
        yield Served(f"http://127.0.0.1:{port}", banner)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


@pytest.fixture(scope="module")
def server(served: Served) -> str:
    return served.url


BASH = shutil.which("bash") or "/bin/bash"


def run_shell(script: str) -> str:
    """Commands as a newcomer pastes them into bash in the repository folder."""
    done = subprocess.run(
        [BASH, "-c", "set -euo pipefail\n" + script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def check_quick_start(output: str, server: str, before: str, tenant_id: str) -> None:
    assert '"error"' not in output, output
    assert f'"id":"{tenant_id}"' in output, output  # the tenant
    assert '"phone":"+8613800138000"' in output, output  # the patient
    assert '"id":"dr-li-cardiology"' in output, output  # the schedule, in its department
    assert "received as" in output, output  # the SMS reply
    status, moved = request(f"{server}/local/clock")
    # `clock advance 1d` without --server reached this server, on its own port.
    assert status == 200 and moved["now"] >= (
        datetime.fromisoformat(before) + timedelta(days=1)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_printed_hints_work_as_printed(served: Served) -> None:
    """Every indented line `make run` prints, pasted as it is (a port other than 8000)."""
    commands = [line[2:] for line in served.banner.splitlines() if line.startswith("  ")]
    assert any("local clock advance" in c for c in commands), served.banner
    _, before = request(f"{served.url}/local/clock")
    check_quick_start(run_shell("\n".join(commands)), served.url, before["now"], "demo-clinic")


def test_the_readme_quick_start_works(served: Served) -> None:
    """The README's commands, on this server's port, for a tenant of their own."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Trying it") :]
    block = section[section.index("```sh\n") + 6 : section.index("\n```", section.index("```sh"))]
    port = served.url.rsplit(":", 1)[1]
    tenant_id = unique("readme")
    # A tenant and a two-way number of its own: numbers are unique across tenants.
    script = (
        block.replace("localhost:8000", f"localhost:{port}")
        .replace("demo-clinic", tenant_id)
        .replace("+8610690000001", unique_reply_number())
    )
    _, before = request(f"{served.url}/local/clock")
    check_quick_start(run_shell(script), served.url, before["now"], tenant_id)


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


def test_the_readme_onboarding_works(served: Served, tmp_path: Path) -> None:
    """The README's "A hospital from its stack, locally": `make onboard` with a hospital file,
    the first admin signs in, adds a clinician and invites a staff member who signs in."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### A hospital from its stack, locally") :]
    block = section[section.index("```sh\n") + 6 : section.index("\n```", section.index("```sh"))]
    port = served.url.rsplit(":", 1)[1]
    tenant_id = unique("onboard")
    hospital = json.loads((ROOT / "infra" / "hospitals" / "example.json").read_text())
    admin, nurse = unique("admin"), unique("wang.fang")
    hospital_file = tmp_path / "hospital.json"
    admin_email = f"{admin}@renji-east.example.com"
    hospital_file.write_text(
        json.dumps({**hospital, "tenant_id": tenant_id, "first_admin_email": admin_email})
    )
    script = (
        block.replace("make onboard HOSPITAL=infra/hospitals/example.json",
                      f"make onboard PORT={port} HOSPITAL={hospital_file}")
        .replace("localhost:8000", f"localhost:{port}")
        .replace("admin@renji-east", f"{admin}@renji-east")
        .replace("wang.fang@renji-east", f"{nurse}@renji-east")
    )  # fmt: skip
    output = run_shell(script + '\necho "staff token: ${#STAFF}"')
    assert '"error"' not in output, output
    assert f'"tenant_id": "{tenant_id}"' in output, output
    assert '"id":"dr-li"' in output, output  # the clinician
    assert f'"email":"{nurse}@renji-east.example.com"' in output, output  # the invited staff
    length = int(output.rsplit("staff token: ", 1)[1].split()[0])
    assert length > 100, output  # a signed-in ID token
