"""Complaints: filed by a patient (or staff for them), or opened for recovery by a low
satisfaction score; worked by staff through their statuses, escalated to the department's
leads when overdue, and answered to the patient when they end.

Every complaint also puts a task in the staff queue for its department (the existing alert
path: the department's topic or the staff topic), closed when the complaint ends; an overdue
one adds an urgent task naming the leads. Messages to the patient (a complaint's closing
message, a promoter's thank-you) go through Deliveries, so consent, opt-outs and quiet hours
apply: each is owed first (a pending item), sent at once when it can be, and otherwise by the
sweep when quiet hours end.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import complaints as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.complaints import (
    Complaint,
    ComplaintCategory,
    ComplaintSource,
    ComplaintStatus,
)
from chalicelib.domain.errors import Forbidden, NotFound, Problems, Retryable, invalid
from chalicelib.domain.satisfaction import Verdict, flagged_by, settings_of
from chalicelib.domain.staff import StaffStatus
from chalicelib.domain.tenants import department_names, is_active
from chalicelib.observability import count, logger
from chalicelib.services.deliveries import patient_fields
from chalicelib.services.owed_messages import OwedMessage, OwedMessages
from chalicelib.services.patients import decode_cursor, encode_cursor, parse_limit
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.complaints import ComplaintRepository
from chalicelib.store.patients import PatientRepository
from chalicelib.store.staff import StaffRepository
from chalicelib.store.tenants import TenantRepository

PATIENTS = frozenset({Role.PATIENT})
TASK_KINDS = {
    ComplaintSource.PATIENT: "complaint",
    ComplaintSource.STAFF: "complaint",
    ComplaintSource.SATISFACTION: "complaint_recovery",
}
OVERDUE_KIND = "complaint_overdue"


def complaint_link(complaint_id: str) -> str:
    return f"{get_settings().app_link_base}/complaints/{complaint_id}"


def _task_id(complaint: Complaint, kind: str) -> str:
    return f"{complaint['id']}-{kind.replace('_', '-')}"


class ComplaintService:
    def __init__(
        self,
        complaints: ComplaintRepository,
        owed: OwedMessages,
        tenants: TenantRepository,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        staff: StaffRepository,
        queue: StaffQueue,
        # A member's act on a patient outside their departments: refused without a reason.
        check_access: Callable[[Principal, Document], None] | None = None,
    ) -> None:
        self._check_access = check_access
        self._complaints = complaints
        self._owed = owed
        owed.compose("satisfaction_thanks", self._thanks)
        owed.compose("complaint_closed", self._closing)
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._staff = staff
        self._queue = queue

    # -- filing ------------------------------------------------------------------------------

    def file(self, principal: Principal, body: Document) -> Document:
        """A patient's own complaint, or staff's for a patient (`patient_id`)."""
        require_role(principal, CLINIC_ROLES | PATIENTS)
        tenant_id = tenant_of(principal)
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise NotFound("tenant not found")
        problems = Problems()
        if principal.role is Role.PATIENT:
            patient_id = str(principal.patient_id)
            if body.get("patient_id") not in (None, patient_id):
                raise NotFound("patient not found")
            source = ComplaintSource.PATIENT
        else:
            patient_id = body.get("patient_id") or ""
            if not patient_id:
                problems.add("$.patient_id", "staff name the patient the complaint is for")
            source = ComplaintSource.STAFF
        if body["department"] not in department_names(tenant):
            problems.add("$.department", f"no department {body['department']!r}")
        problems.raise_if_any()
        patient = self._patients.get(tenant_id, patient_id) if is_valid_id(patient_id) else None
        if patient is None:
            raise NotFound("patient not found")
        if source is ComplaintSource.STAFF and self._check_access is not None:
            self._check_access(principal, patient)  # break-glass outside their departments
        extra: Document = {}
        appointment_id = body.get("appointment_id")
        if appointment_id is not None:
            appointment = (
                self._appointments.get(tenant_id, appointment_id)
                if is_valid_id(appointment_id)
                else None
            )
            if appointment is None or appointment["patient_id"] != patient_id:
                raise invalid("$.appointment_id", "no appointment of this patient has this id")
            extra["appointment_id"] = appointment_id
            if appointment.get("clinician"):
                extra["clinician"] = appointment["clinician"]
        complaint = self._open(
            tenant,
            "c-" + secrets.token_hex(8),
            patient_id,
            source,
            ComplaintCategory(body["category"]),
            body["department"],
            body["text"],
            by=principal.subject,
            role=principal.role.value,
            extra=extra,
        )
        count("ComplaintFiled")
        return rules.patient_view(complaint) if principal.role is Role.PATIENT else dict(complaint)

    def open_recovery(
        self,
        tenant: Document,
        patient: Document,
        response: Document,
        verdict: Verdict,
        department: str,
        appointment: Document | None,
    ) -> Complaint:
        """A low score or a flagged comment: a recovery complaint for the visit's department,
        once per response (its id comes from the response)."""
        digest = hashlib.sha256(f"{tenant['id']}|{response['id']}".encode()).hexdigest()[:16]
        complaint_id = f"c-{digest}"
        existing = self._complaints.get(tenant["id"], complaint_id)
        if existing is not None:
            return existing
        extra: Document = {
            "response_id": response["id"],
            "score": verdict["score"],
            "flagged_by": flagged_by(verdict),
        }
        if appointment is not None:
            extra["appointment_id"] = appointment["id"]
            if appointment.get("clinician"):
                extra["clinician"] = appointment["clinician"]
        complaint = self._open(
            tenant,
            complaint_id,
            patient["id"],
            ComplaintSource.SATISFACTION,
            ComplaintCategory(verdict["category"]),
            department,
            str(response["answers"].get("comment") or ""),
            by="system",
            role="system",
            extra=extra,
        )
        count("SatisfactionRecoveryOpened")
        return complaint

    def _open(
        self,
        tenant: Document,
        complaint_id: str,
        patient_id: str,
        source: ComplaintSource,
        category: ComplaintCategory,
        department: str,
        text: str,
        *,
        by: str,
        role: str,
        extra: Document,
    ) -> Complaint:
        now = clock.now()
        year = now.astimezone(ZoneInfo(tenant["time_zone"])).year
        reference = rules.reference_of(year, self._complaints.next_number(tenant["id"], year))
        complaint = rules.new_complaint(
            complaint_id=complaint_id,
            reference=reference,
            patient_id=patient_id,
            source=source,
            category=category,
            department=department,
            text=text,
            now=now,
            recovery_hours=settings_of(tenant)["recovery_hours"],
            by=by,
            role=role,
            extra=extra,
        )
        saved, _ = self._complaints.create(tenant["id"], complaint)
        kind = TASK_KINDS[ComplaintSource(saved["source"])]
        self._queue.open_task(
            tenant["id"],
            _task_id(saved, kind),
            kind,
            {
                "patient_id": saved["patient_id"],
                "department": saved["department"],
                "complaint_id": saved["id"],
                "deadline": saved["deadline"],
            },
            tenant=tenant,
        )
        return saved

    # -- reading -----------------------------------------------------------------------------

    def _fence(self, principal: Principal) -> set[str] | None:
        """The departments a staff member assigned to some sees complaints of (None: all)."""
        if principal.role is not Role.STAFF:
            return None
        member = self._staff.get(tenant_of(principal), principal.subject)
        departments = set(member["departments"]) if member else set()
        return departments or None

    def listing(
        self,
        principal: Principal,
        *,
        status: str | None,
        department: str | None,
        limit: str | None,
        cursor: str | None,
    ) -> tuple[list[Document], str | None]:
        require_role(principal, CLINIC_ROLES)
        if status is not None and status not in set(ComplaintStatus):
            raise invalid("status", f"one of {', '.join(ComplaintStatus)}")
        if department is not None and not is_valid_id(department):
            raise invalid("department", "not a department id")
        fence = self._fence(principal)
        departments: list[str] | None = [department] if department else None
        if fence is not None:
            if department is not None and department not in fence:
                raise Forbidden(
                    "staff assigned to departments read their departments' complaints",
                    code="departments_only",
                )
            departments = [department] if department else sorted(fence)
        after = decode_cursor(cursor) if cursor else None
        found, position = self._complaints.page(
            tenant_of(principal), departments, status, parse_limit(limit), after
        )
        return [dict(c) for c in found], encode_cursor(position) if position else None

    def _visible(self, principal: Principal, complaint_id: str) -> Complaint:
        require_role(principal, CLINIC_ROLES)
        found = (
            self._complaints.get(tenant_of(principal), complaint_id)
            if is_valid_id(complaint_id)
            else None
        )
        fence = self._fence(principal)
        if found is None or (fence is not None and found["department"] not in fence):
            raise NotFound("complaint not found")
        return found

    def get(self, principal: Principal, complaint_id: str) -> Document:
        return dict(self._visible(principal, complaint_id))

    def mine(self, principal: Principal) -> list[Document]:
        """The patient's own complaints, as they see them (no staff notes)."""
        require_role(principal, PATIENTS)
        found = self._complaints.for_patient(tenant_of(principal), str(principal.patient_id))
        return [rules.patient_view(c) for c in found if rules.visible_to_patient(c)]

    # -- working on it -----------------------------------------------------------------------

    def change_status(self, principal: Principal, complaint_id: str, body: Document) -> Document:
        """Staff move the complaint on, with a note; ending it tells the patient (once)."""
        current = self._visible(principal, complaint_id)
        tenant_id = tenant_of(principal)
        changed = rules.changed_status(
            current,
            ComplaintStatus(body["status"]),
            note=body.get("note"),
            closing_message=body.get("closing_message"),
            by=principal.subject,
            role=principal.role.value,
            now=clock.now(),
        )
        ended = changed["status"] in rules.ENDED
        saved = self._complaints.save(tenant_id, current, changed, drop_due=ended)
        count(f"Complaint{''.join(p.capitalize() for p in saved['status'].split('_'))}")
        if ended:
            for kind in {*TASK_KINDS.values(), OVERDUE_KIND}:
                self._queue.close_task(tenant_id, _task_id(saved, kind), "complaint_ended")
            if rules.closing_message_due(saved):
                self._owed.owe_and_try(
                    tenant_id,
                    saved["patient_id"],
                    f"closing-{saved['id']}",
                    {"kind": "complaint_closed", "complaint_id": saved["id"]},
                )
        return dict(saved)

    # -- the sweep ---------------------------------------------------------------------------

    def sweep(self) -> Document:
        """Every 15 minutes, for each tenant: escalate the complaints past their deadline (a
        Query of the deadline index), and send the messages whose moment has come."""
        now = clock.now()
        escalated = sent = failed = 0
        for tenant_id in self._tenants.all_ids():
            for complaint_id in self._complaints.overdue(tenant_id, utc_iso(now)):
                try:
                    escalated += self.escalate(tenant_id, complaint_id, now)
                except Exception:
                    logger.exception("complaint escalation failed")
                    failed += 1
            sent_now, not_yet = self._owed.send_due(tenant_id)
            sent, failed = sent + sent_now, failed + not_yet
        count("ComplaintsEscalated", escalated)
        if failed:
            raise Retryable(f"{failed} complaints or messages could not be handled yet")
        return {"escalated": escalated, "sent": sent}

    def escalate(self, tenant_id: str, complaint_id: str, now: datetime) -> int:
        """An overdue complaint escalates once: an urgent task naming the department's leads
        (alerted on the department's topic, ids only), then the complaint is marked escalated
        and leaves the deadline index in one conditional write. A run that fails between the
        two finds it again; the task is opened (and alerted) once by its id."""
        tenant = self._tenants.get(tenant_id)
        complaint = self._complaints.get(tenant_id, complaint_id)
        if tenant is None or complaint is None or not is_active(tenant):
            return 0  # a hospital that left (its stack deleted, its topics gone): no alerts
        if not rules.is_overdue(complaint, now):
            if complaint["status"] not in rules.ACTIVE or "escalated_at" in complaint:
                self._complaints.save(tenant_id, complaint, complaint, drop_due=True)
            return 0
        leads = [
            member["id"]
            for member in self._staff.all(tenant_id)
            if complaint["department"] in member["leads"] and member["status"] == StaffStatus.ACTIVE
        ]
        self._queue.open_task(
            tenant_id,
            _task_id(complaint, OVERDUE_KIND),
            OVERDUE_KIND,
            {
                "patient_id": complaint["patient_id"],
                "department": complaint["department"],
                "complaint_id": complaint["id"],
                "deadline": complaint["deadline"],
                "leads": sorted(leads),
            },
            tenant=tenant,
            priority="urgent",
            notify=leads,
        )
        self._complaints.save(
            tenant_id, complaint, rules.escalated(complaint, leads, now), drop_due=True
        )
        count("ComplaintEscalated")
        return 1

    # -- messages owed to the patient --------------------------------------------------------

    def owe_thanks(self, tenant_id: str, patient_id: str, response_id: str) -> None:
        self._owed.owe_and_try(
            tenant_id,
            patient_id,
            f"thanks-{response_id}",
            {"kind": "satisfaction_thanks", "response_id": response_id},
        )

    def _thanks(self, tenant: Document, patient: Document, owed: Document) -> OwedMessage | None:
        review_url = settings_of(tenant)["thank_you"].get("review_url")
        if not review_url:  # the tenant took the thank-you off meanwhile
            return None
        return OwedMessage(
            f"satisfaction#{owed['response_id']}#thanks",
            {**patient_fields(tenant, patient), "link": review_url},
            {"response_id": owed["response_id"]},
        )

    def _closing(self, tenant: Document, patient: Document, owed: Document) -> OwedMessage | None:
        complaint = self._complaints.get(tenant["id"], owed["complaint_id"])
        if complaint is None:
            return None
        fields = {
            **patient_fields(tenant, patient),
            "reference": complaint["reference"],
            "message": complaint.get("closing_message", ""),
            "department": department_names(tenant).get(complaint["department"], ""),
            "link": complaint_link(complaint["id"]),
        }
        return OwedMessage(
            f"complaint#{complaint['id']}#closing", fields, {"complaint_id": complaint["id"]}
        )
