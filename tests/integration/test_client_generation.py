"""A mobile developer generates a client from `/openapi.json` with a standard generator: every
model is there (none dropped), the generated code imports, and it reads the API's own answers."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Api, TenantCtx, payload

PACKAGE = "careloop_client"
# Without post hooks (ruff --fix over the output): the import below is the check that matters.
CONFIG = "post_hooks: []\n"


@pytest.fixture(scope="module")
def generated(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The client `openapi-python-client` generates from the served document, imported."""
    work = tmp_path_factory.mktemp("client")
    response = api.call("GET", "/openapi.json")
    assert response.status_code == 200
    (work / "openapi.json").write_bytes(response.body)
    (work / "config.yaml").write_text(CONFIG, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(work / "openapi.json"),
            "--config",
            str(work / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(work / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # The generator says what it could not use and drops it (with the schema that refers to it).
    for complaint in ("Unable to process", "WARNING", "Could not", "removal of"):
        assert complaint not in output, output
    sys.path.insert(0, str(work))
    try:
        for module in pkgutil.walk_packages([str(work / PACKAGE)], f"{PACKAGE}."):
            importlib.import_module(module.name)  # every model and endpoint module parses
        yield importlib.import_module(f"{PACKAGE}.models")
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def model_names(spec: dict[str, Any]) -> set[str]:
    """The class each object component becomes: its title, or its name in CamelCase
    (`patient-create` → PatientCreate, `patient.guardian` → PatientGuardian)."""
    names = set()
    for name, schema in spec["components"]["schemas"].items():
        if schema.get("type") == "object":
            words = re.split(r"[-._ ]", schema.get("title") or name)
            names.add("".join(w[:1].upper() + w[1:] for w in words))
    return names


def test_every_model_is_generated(api: Api, generated: Any) -> None:
    spec = payload(api.call("GET", "/openapi.json"))
    for name in ("Patient", "Appointment", "Tenant", "Questionnaire", "PatientGuardian"):
        assert isinstance(getattr(generated, name, None), type), name
    missing = sorted(n for n in model_names(spec) if not hasattr(generated, n))
    assert not missing, f"not generated: {missing}"


def test_the_generated_models_read_what_the_api_answers(
    api: Api, generated: Any, tenant: TenantCtx
) -> None:
    body = {"name": {"given": "Wei", "family": "Zhang"}, "phone": "13800138000"}
    created = payload(api.call("POST", "/patients", tenant.staff, body))
    patient = generated.Patient.from_dict(created)
    assert patient.name.given == "Wei" and patient.phone == "+8613800138000"
    assert json.loads(json.dumps(patient.to_dict(), default=str))["id"] == created["id"]
    read = payload(api.call("GET", f"/tenants/{tenant.id}", tenant.staff))
    assert generated.Tenant.from_dict(read).id == tenant.id
    questionnaire = api.call("GET", "/questionnaires/post-operative", tenant.staff)
    assert generated.Questionnaire.from_dict(payload(questionnaire)).id == "post-operative"


TS_TOOLS = ROOT / "tools" / "openapi-ts"
TS_BIN = TS_TOOLS / "node_modules" / ".bin"
TS_USE = """\
import type { components, paths } from "./api";
type Schemas = components["schemas"];
export const guardian: Schemas["patient.guardian"]["relationship"] = "parent";
export type Booking = paths["/appointments"]["post"]["requestBody"]["content"]["application/json"];
export type Patient = Schemas["patient"];
"""


def test_the_typescript_types_compile_strictly(api: Api, tmp_path: Path) -> None:
    """openapi-typescript's output passes `tsc --strict` (a reference into a property of a
    `$defs` entry used to type as `unknown` there)."""
    if not (TS_BIN / "tsc").exists():
        if os.environ.get("CI"):
            pytest.fail("tools/openapi-ts is not installed (make test runs npm ci there)")
        pytest.skip("run `cd tools/openapi-ts && npm ci` (make test does)")
    (tmp_path / "openapi.json").write_bytes(api.call("GET", "/openapi.json").body)
    (tmp_path / "use.ts").write_text(TS_USE, encoding="utf-8")
    for command in (
        [str(TS_BIN / "openapi-typescript"), "openapi.json", "-o", "api.d.ts"],
        [str(TS_BIN / "tsc"), "--strict", "--noEmit", "--target", "es2022", "api.d.ts", "use.ts"],
    ):
        done = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
