"""Shared fixtures. The embedded runtime starts once per test session (on a frozen virtual clock);
tests isolate themselves by creating their own tenant, as tenants are isolated in production."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local import api_client

# The tests import these from here; they live in local/ since the bench calls the API the same way.
Api = api_client.Api
payload = api_client.payload

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
# Every AWS call each function makes during the suite (local/aws_calls.py): the permissions
# tier (tests/permissions), run after the suite by `make test`, evaluates them.
AWS_CALLS = ROOT / "build" / "aws-calls"
PERMISSIONS = ROOT / "tests" / "permissions"


def _permissions_tier(config: pytest.Config) -> bool:
    """Is this the run of tests/permissions alone (which reads the calls, and makes none)?"""
    return bool(config.args) and all(
        Path(arg.split("::")[0]).resolve().is_relative_to(PERMISSIONS) for arg in config.args
    )


def pytest_configure(config: pytest.Config) -> None:
    import os
    import shutil

    from local.aws_calls import ENV

    if _permissions_tier(config) or os.environ.get(ENV):  # a worker has it from the controller
        return
    shutil.rmtree(AWS_CALLS, ignore_errors=True)
    os.environ[ENV] = str(AWS_CALLS)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The permissions tier judges what the rest of the suite did: it runs after it."""
    if collection_path == PERMISSIONS and not _permissions_tier(config):
        return True
    return None


# The order the workers take the tiers in: the long ones first, the many short ones last, so
# that no worker is left waiting on one long test at the end (pyproject: --no-loadscope-reorder).
TIER_ORDER = ("faults", "journeys", "integration", "infra", "events", "services", "unit")


def _tier_rank(item: pytest.Item) -> int:
    tier = Path(item.nodeid.split("::")[0]).parts[1:2]
    return TIER_ORDER.index(tier[0]) if tier and tier[0] in TIER_ORDER else len(TIER_ORDER)


# Test files run whole on one worker (their module fixtures are built once, and a file's tests
# may rely on its earlier ones), except a file that says its tests are independent and long:
# those spread over the workers (the fault tier's profiles, a minute each).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_tier_rank)  # stable: each file's tests keep their order
    for item in items:
        if getattr(getattr(item, "module", None), "SPREAD_OVER_WORKERS", False):
            continue
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from local.runtime import quiet_logs, start
    from local.vclock import VirtualClock

    quiet_logs()
    rt = start(clock=VirtualClock(START))
    yield rt
    rt.settle()  # let background handlers finish before the emulator goes away
    rt.stop()


@pytest.fixture
def own_runtime(runtime: Any) -> Iterator[Any]:
    """The runtime emptied and its clock at START, for a test that plays months or years: no
    other test's tenants play along, and its moments are the same on every run. Emptied again
    afterwards, at the time the other tests had reached."""
    resumed = runtime.clock.now()
    runtime.reset(START)
    yield runtime
    runtime.reset(resumed)


@pytest.fixture(scope="session")
def http(runtime: Any) -> Any:
    from chalice.test import Client

    client = Client(runtime.app, stage_name="local", project_dir=str(ROOT))
    return client.http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_paths(response: Any) -> list[str]:
    """The JSON paths a 400 names, in order."""
    return [d["path"] for d in payload(response)["error"]["details"]]


def error_code(response: Any) -> str:
    code: str = payload(response)["error"]["code"]
    return code


@pytest.fixture(scope="session")
def api(http: Any) -> Api:
    return Api(http)


@dataclass
class TenantCtx:
    id: str
    doc: dict[str, Any]
    operator: str
    admin: str
    staff: str


def tenant_body(tenant_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "id": tenant_id,
        "name": "Test Hospital",
        "time_zone": "Asia/Shanghai",
        "default_language": "zh-CN",
        "country": "CN",
        "sender": {
            "sms_sender_id": "TestHosp",
            "sms_reply_number": unique_reply_number(),
            "email_from": "care@hospital.example.com",
        },
        "departments": [{"id": "cardiology", "name": "心内科"}],
    }
    body.update(overrides)
    return body


def unique_reply_number() -> str:
    """A two-way number of the hospital's own: numbers are unique across tenants."""
    return f"+1555{uuid.uuid4().int % 10**7:07d}"


@pytest.fixture
def make_tenant(runtime: Any, api: Api) -> Any:
    def make(**overrides: Any) -> TenantCtx:
        tenant_id = unique("t")
        operator = runtime.token("operator")
        response = api.call("POST", "/tenants", operator, tenant_body(tenant_id, **overrides))
        assert response.status_code == 201, response.body
        return TenantCtx(
            id=tenant_id,
            doc=payload(response),
            operator=operator,
            admin=runtime.token("admin", tenant_id),
            staff=runtime.token("staff", tenant_id),
        )

    return make


@pytest.fixture
def tenant(make_tenant: Any) -> TenantCtx:
    ctx: TenantCtx = make_tenant()
    return ctx


def patient_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": {"given": "Wei", "family": "Zhang"},
        "birth_date": "1961-04-12",
        "phone": "138 0013 8000",
        "email": "zhang.wei@example.com",
        "preferred_channels": ["sms"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_patient(api: Api) -> Any:
    def make(tenant: TenantCtx, **overrides: Any) -> dict[str, Any]:
        response = api.call("POST", "/patients", tenant.staff, patient_body(**overrides))
        assert response.status_code == 201, response.body
        created: dict[str, Any] = payload(response)
        return created

    return make


ALL_WEEK = {
    day: [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


@dataclass
class ClinicCtx:
    tenant: TenantCtx
    schedule_id: str


@pytest.fixture
def make_clinic(api: Api, make_tenant: Any) -> Any:
    """A tenant with a cardiology clinician and a schedule open every day, 30-minute slots."""

    def make(capacity: int = 1, journeys: bool = False, **tenant_overrides: Any) -> ClinicCtx:
        tenant_overrides.setdefault("journey", {"enabled": journeys})
        departments = [
            {"id": "cardiology", "name": "心内科"},
            {"id": "dermatology", "name": "皮肤科"},
        ]
        tenant: TenantCtx = make_tenant(departments=departments, **tenant_overrides)
        for clinician, department in (("dr-li", "cardiology"), ("dr-wang", "dermatology")):
            response = api.call(
                "PUT",
                f"/clinicians/{clinician}",
                tenant.admin,
                {"name": clinician, "department": department},
            )
            assert response.status_code == 200, response.body
        for schedule_id, clinician, department in (
            ("cardio", "dr-li", "cardiology"),
            ("derma", "dr-wang", "dermatology"),
        ):
            response = api.call(
                "PUT",
                f"/schedules/{schedule_id}",
                tenant.admin,
                {
                    "department": department,
                    "clinician": clinician,
                    "location": "Building 2",
                    "weekly_hours": ALL_WEEK,
                    "slot_minutes": 30,
                    "capacity": capacity,
                },
            )
            assert response.status_code == 200, response.body
        return ClinicCtx(tenant, "cardio")

    return make


def free_slots(
    api: Api, token: str, department: str = "cardiology", days_ahead: int = 1, days: int = 1
) -> list[dict[str, Any]]:
    from datetime import timedelta

    from chalicelib import clock

    start = (clock.now() + timedelta(days=days_ahead)).date()
    end = start + timedelta(days=days)
    response = api.call("GET", f"/slots?department={department}&from={start}&to={end}", token)
    assert response.status_code == 200, response.body
    items: list[dict[str, Any]] = payload(response)["items"]
    return items


def slot_ref(slot: dict[str, Any]) -> dict[str, str]:
    return {"schedule_id": slot["schedule_id"], "start": slot["start"]}
