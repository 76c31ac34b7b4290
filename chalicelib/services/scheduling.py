"""Clinicians, schedules and free slots."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import scheduling as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.appointments import TYPES
from chalicelib.domain.common import (
    Document,
    check_year,
    is_valid_id,
    parse_timestamp,
    utc_iso,
)
from chalicelib.domain.errors import NotFound, invalid
from chalicelib.domain.tenants import department_names
from chalicelib.services.tenants import TenantService
from chalicelib.services.versions import revise
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.config import ConfigRepository

ADMINS = frozenset({Role.ADMIN})
EVERYONE = CLINIC_ROLES | {Role.PATIENT}


def parse_moment(name: str, raw: str | None, zone: ZoneInfo) -> datetime:
    """A query bound: a date (midnight at the hospital) or a date-time with an offset."""
    if not raw:
        raise invalid(name, "is required (a date such as 2027-03-01, or a date-time)")
    if len(raw) == 10:
        try:
            day = datetime.fromisoformat(raw).date()
        except ValueError as exc:
            raise invalid(name, "is not an ISO-8601 date or date-time") from exc
        check_year(name, day.year)
        return datetime.combine(day, time(0), tzinfo=zone)
    return parse_timestamp(name, raw).astimezone(UTC)


class SchedulingService:
    def __init__(
        self, config: ConfigRepository, appointments: AppointmentRepository, tenants: TenantService
    ) -> None:
        self._config = config
        self._appointments = appointments
        self._tenants = tenants

    def _put(
        self, principal: Principal, kind: str, record_id: str, body: Document, if_match: str | None
    ) -> tuple[Document, Document]:
        require_role(principal, ADMINS)
        if not is_valid_id(record_id):
            raise invalid(f"{kind.lower()}_id", "use 2 to 40 lowercase letters, digits or -")
        tenant = self._tenants.require(tenant_of(principal))
        current = self._config.get(tenant["id"], kind, record_id)
        doc = revise(current, body, record_id, if_match, utc_iso(clock.now()))
        return tenant, {"doc": doc, "version": current["version"] if current else None}

    def put_clinician(
        self, principal: Principal, clinician_id: str, body: Document, if_match: str | None
    ) -> Document:
        tenant, draft = self._put(principal, "CLINICIAN", clinician_id, body, if_match)
        if body["department"] not in department_names(tenant):
            raise invalid("$.department", "is not a department of this hospital")
        return self._config.put(tenant["id"], "CLINICIAN", draft["doc"], draft["version"])

    def put_schedule(
        self, principal: Principal, schedule_id: str, body: Document, if_match: str | None
    ) -> Document:
        tenant, draft = self._put(principal, "SCHEDULE", schedule_id, body, if_match)
        clinician = self._config.get(tenant["id"], "CLINICIAN", body["clinician"])
        rules.check_schedule(body, tenant, clinician["department"] if clinician else None)
        return self._config.put(tenant["id"], "SCHEDULE", draft["doc"], draft["version"])

    def records(self, principal: Principal, kind: str) -> list[Document]:
        require_role(principal, CLINIC_ROLES)
        return self._config.records(tenant_of(principal), kind)

    def schedule(self, principal: Principal, schedule_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        found = (
            self._config.get(tenant_of(principal), "SCHEDULE", schedule_id)
            if is_valid_id(schedule_id)
            else None
        )
        if found is None:
            raise NotFound("schedule not found")
        return found

    def free_slots(
        self,
        principal: Principal,
        department: str | None,
        start_raw: str | None,
        end_raw: str | None,
        appointment_type: str | None,
    ) -> list[Document]:
        require_role(principal, EVERYONE)
        tenant = self._tenants.require(tenant_of(principal))
        zone = ZoneInfo(tenant["time_zone"])
        if department is None or department not in department_names(tenant):
            raise invalid("department", "is not a department of this hospital")
        if appointment_type is not None and appointment_type not in TYPES:
            raise invalid("type", f"is one of {', '.join(TYPES)}")
        start, end = parse_moment("from", start_raw, zone), parse_moment("to", end_raw, zone)
        rules.check_range(start, end)
        # Nothing past the booking horizon is offered: it could not be booked.
        now = clock.now()
        start, end = max(start, now), min(end, rules.booking_horizon(tenant, now))
        if start >= end:
            return []
        schedules = [
            s
            for s in self._config.records(tenant["id"], "SCHEDULE")
            if s["department"] == department
            and (appointment_type is None or appointment_type in s.get("appointment_types", TYPES))
        ]
        taken = self._appointments.booked_counts(
            tenant["id"], department, utc_iso(start), utc_iso(end)
        )
        free = []
        for schedule in schedules:
            for slot in rules.slots_between(schedule, zone, start, end):
                remaining = slot.capacity - taken.get((utc_iso(slot.start), slot.schedule_id), 0)
                if remaining > 0:
                    free.append(
                        {
                            "schedule_id": slot.schedule_id,
                            "department": slot.department,
                            "clinician": slot.clinician,
                            "location": slot.location,
                            "start": utc_iso(slot.start),
                            "end": utc_iso(slot.end),
                            "local_start": slot.start.astimezone(zone).isoformat(),
                            "remaining": remaining,
                        }
                    )
        return sorted(free, key=lambda s: (s["start"], s["schedule_id"]))
