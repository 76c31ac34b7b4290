"""What the journey tests share: the virtual clock moved to local moments, and one patient of a
journey-enabled clinic with what reached them."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import Api, ClinicCtx, payload

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENTS = Path(__file__).resolve().parents[1] / "events"


def unique_phone() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def local_moment(days: int, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    from chalicelib import clock

    day = (clock.now().astimezone(zone) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def move_to(runtime: Any, moment: datetime) -> None:
    from chalicelib import clock

    assert moment >= clock.now(), f"{moment} is already past: the test miscounted"
    runtime.clock.set(moment)
    runtime.settle()


def open_cardiology(api: Api, admin: str, *, until: str = "17:00", capacity: int = 5) -> None:
    """Dr Li's cardiology schedule ("cardio"), 08:00 to `until` every day, 30-minute slots."""
    response = api.call(
        "PUT", "/clinicians/dr-li", admin, {"name": "Li", "department": "cardiology"}
    )
    assert response.status_code == 200, response.body
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    schedule = {
        "department": "cardiology",
        "clinician": "dr-li",
        "location": "Building 2",
        "weekly_hours": {d: [{"start": "08:00", "end": until}] for d in days},
        "slot_minutes": 30,
        "capacity": capacity,
    }
    response = api.call("PUT", "/schedules/cardio", admin, schedule)
    assert response.status_code == 200, response.body


def iso(moment: datetime) -> str:
    from chalicelib.domain.common import utc_iso

    return utc_iso(moment)


class Journey:
    """One patient of a journey-enabled clinic, and what reached them."""

    def __init__(
        self, runtime: Any, api: Api, clinic: ClinicCtx, make_patient: Any, **patient: Any
    ) -> None:
        self.runtime, self.api, self.clinic = runtime, api, clinic
        self.phone = patient.pop("phone", unique_phone())
        patient.setdefault("email", f"p{self.phone}@patients.example.com")
        self.patient = make_patient(clinic.tenant, phone=self.phone, **patient)
        self.token = runtime.token("patient", clinic.tenant.id, self.patient["id"])

    def book(self, start: datetime) -> dict[str, Any]:
        response = self.api.call(
            "POST",
            "/appointments",
            self.token,
            {
                "slot": {"schedule_id": self.clinic.schedule_id, "start": iso(start)},
                "type": "follow_up",
                "notes_for_patient": "Bring your glucose diary",
            },
        )
        assert response.status_code == 201, response.body
        self.runtime.settle()
        booked: dict[str, Any] = payload(response)
        return booked

    def sms(self) -> list[Any]:
        sent: list[Any] = self.runtime.outbox.messages(to=f"+86{self.phone}", channel="sms")
        return sent

    def execution(self, appointment: dict[str, Any]) -> dict[str, Any]:
        from chalicelib.adapters.executions import execution_arn
        from chalicelib.domain.appointment_journey import execution_name
        from chalicelib.settings import get_settings

        sfn = self.runtime.client("stepfunctions")
        name = execution_name(
            self.clinic.tenant.id, appointment["id"], appointment["journey_version"]
        )
        arn = execution_arn(get_settings().appointment_journey_arn, name)
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        return described

    def act(
        self, appointment: dict[str, Any], action: str, token: str | None = None, body: Any = None
    ) -> dict[str, Any]:
        response = self.api.call(
            "POST", f"/appointments/{appointment['id']}/{action}", token or self.token, body
        )
        assert response.status_code == 200, response.body
        self.runtime.settle()
        changed: dict[str, Any] = payload(response)
        return changed

    def tasks(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = payload(
            self.api.call("GET", "/tasks", self.clinic.tenant.staff)
        )["items"]
        return [t for t in items if t["patient_id"] == self.patient["id"]]

    def appointment(self, appointment: dict[str, Any]) -> dict[str, Any]:
        """The appointment as the patient's app reads it now."""
        found: dict[str, Any] = payload(
            self.api.call("GET", f"/appointments/{appointment['id']}", self.token)
        )
        return found

    def record(self) -> dict[str, Any]:
        """The patient's record as staff read it now."""
        response = self.api.call("GET", f"/patients/{self.patient['id']}", self.clinic.tenant.staff)
        assert response.status_code == 200, response.body
        found: dict[str, Any] = payload(response)
        return found

    def sms_opt_out(self) -> dict[str, Any]:
        """The patient's own phone's opt-out, as the record shows it."""
        shown: list[dict[str, Any]] = self.record()["opt_outs"]
        [own] = [o for o in shown if o["channel"] == "sms" and o["whose"] == "patient"]
        return own

    def deliveries(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = payload(
            self.api.call(
                "GET", f"/patients/{self.patient['id']}/deliveries", self.clinic.tenant.staff
            )
        )["items"]
        return items


def assert_stopped(execution: dict[str, Any]) -> None:
    """Stopped by the service. AWS reports ABORTED; moto reports a stop that lands while the
    execution is inside a Parallel state as FAILED with States.Runtime. Either way it has ended,
    and the tests then check that nothing more is sent."""
    assert execution["status"] in ("ABORTED", "FAILED"), execution["status"]
    if execution["status"] == "FAILED":
        # Only moto's stop-inside-Parallel failure, not an error of the state machine itself.
        assert execution.get("error") == "States.Runtime"
        assert "MUST NOT begin with the prefix 'States.'" in execution.get("cause", "")


def run_schedule(runtime: Any, name: str) -> dict[str, Any]:
    """One run of the app's schedule `name` (recall_sweep, repair_sweep), as EventBridge
    invokes it, with its recorded event."""
    import app
    from local.lambdas import LambdaContext

    event = json.loads((EVENTS / "scheduled-recall-sweep.json").read_text())
    context = LambdaContext(function_name=f"careloop-local-{name}", invoked_function_arn="")
    result: dict[str, Any] = getattr(app, name)(event, context)
    runtime.settle()
    return result


def repair_sweep(runtime: Any) -> dict[str, Any]:
    return run_schedule(runtime, "repair_sweep")
