"""Erasing a patient: everything CareLoop holds that names them goes, found by key (never a Scan);
what stays names no one.

Kept on purpose: the audit trail (the patient is a pseudonym there, and the pseudonym's link to
the id is deleted last), counters without identity (slot places, campaign progress), and the
number's opt-outs and the address's suppression (their keys are keyed hashes, so a re-imported
number is still not texted against its STOP).

The same code runs for an admin's request (`POST /patients/{id}/erasure`) and for the retention
sweep over soft-deleted patients. Each step is idempotent: an erasure interrupted half-way is
finished by running it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

from chalicelib import clock
from chalicelib.adapters.channels import Channels
from chalicelib.adapters.executions import Executions
from chalicelib.audit_trail import erased, reason_given, recording
from chalicelib.domain import campaigns as campaign_rules
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.appointment_journey import execution_name
from chalicelib.domain.appointments import ACTIVE
from chalicelib.domain.audit import Activity, ActorKind
from chalicelib.domain.common import Document, is_valid_id
from chalicelib.domain.errors import NotFound
from chalicelib.domain.recall import execution_name as recall_execution_name
from chalicelib.domain.segments import entries, visit_entries
from chalicelib.observability import count
from chalicelib.services.audit import AuditService
from chalicelib.services.staff_queue import StaffQueue
from chalicelib.services.tenants import TenantService
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository, slot_sk
from chalicelib.store.contacts import sms_pk
from chalicelib.store.devices import DeviceRepository
from chalicelib.store.erasure import ErasureRepository, Key
from chalicelib.store.messages import DeliveryRepository
from chalicelib.store.patients import PatientRepository, mrn_claim_key
from chalicelib.store.segments import stored_partition, stored_sort

DEFAULT_DELETED_RETENTION_DAYS = 90  # a soft-deleted record can be restored until then
PURGE_BATCH = 200  # per tenant per daily run: a backlog drains over the following days
APPOINTMENTS_MAX = 10_000  # a patient's whole history, in one index Query's pages
DELIVERIES_MAX = 100_000


class PurgeReport(TypedDict):
    erased: int


class ErasureResult(TypedDict):
    patient_id: str
    erased_at: str
    items_deleted: int
    executions_stopped: int
    places_released: int
    devices_removed: int


@dataclass(frozen=True)
class Found:
    profile: Document
    appointments: list[Document]
    care: list[Document]


class ErasureService:
    def __init__(
        self,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        deliveries: DeliveryRepository,
        care: Callable[[str, str], list[Document]],
        devices: DeviceRepository,
        store: ErasureRepository,
        audit: AuditService,
        executions: Executions,
        channels: Channels,
        queue: StaffQueue,
        # Other stores that name the patient (the analytics table's visits): each forgets them.
        forget_elsewhere: Sequence[Callable[[str, str], int]] = (),
    ) -> None:
        self._forget_elsewhere = forget_elsewhere
        self._queue = queue
        self._patients = patients
        self._appointments = appointments
        self._deliveries = deliveries
        self._care = care
        self._devices = devices
        self._store = store
        self._audit = audit
        self._executions = executions
        self._channels = channels

    def request(self, principal: Principal, patient_id: str, body: Document) -> ErasureResult:
        """An admin erases a patient, giving a reason (kept in the audit trail)."""
        require_role(principal, {Role.ADMIN})
        if not is_valid_id(patient_id):
            raise NotFound("patient not found")
        reason_given(body["reason"])
        return self.erase(tenant_of(principal), patient_id)

    def requested_by_patient(self, principal: Principal) -> Document:
        """The patient asks from the app: the hospital's admins get a task to act on (they
        check the request, then erase, or answer why the law has them keep the record)."""
        require_role(principal, {Role.PATIENT})
        tenant_id = tenant_of(principal)
        patient_id = principal.patient_id
        assert patient_id is not None  # a patient token always names its patient
        if self._patients.get(tenant_id, patient_id) is None:
            raise NotFound("patient not found")
        # The task's id must not carry the patient's (the audit trail keeps task ids).
        task_id = "erasure-" + hashlib.sha256(f"{tenant_id}|{patient_id}".encode()).hexdigest()[:20]
        task = self._queue.open_task(
            tenant_id, task_id, "erasure_requested", {"patient_id": patient_id}
        )
        return {"task_id": task["id"], "status": task["status"], "requested_at": task["created_at"]}

    def erase(self, tenant_id: str, patient_id: str) -> ErasureResult:
        profile = self._patients.get_including_deleted(tenant_id, patient_id)
        if profile is None:
            raise NotFound("patient not found")
        found = Found(
            profile,
            self._appointments.for_patient(tenant_id, patient_id, limit=APPOINTMENTS_MAX),
            self._care(tenant_id, patient_id),
        )
        now = clock.iso(clock.now())
        if not profile.get("erasing_at"):
            # First out of every list, look-up and segment: a journey task that runs meanwhile
            # finds no patient and sends nothing. Marked as being erased: the analytics stream,
            # which still counts a soft-deleted patient, keeps nothing more that names them.
            marked = {**profile, "deleted_at": profile.get("deleted_at") or now, "erasing_at": now}
            self._patients.replace(tenant_id, profile, marked)
        stopped = self._stop_executions(tenant_id, found)
        released = self._release_places(tenant_id, found)
        devices = self._remove_devices(tenant_id, patient_id)
        self._forget_awaited_answers(found.profile)
        # First: should it fail, the erasure is retried while the profile still exists.
        deleted = sum(forget(tenant_id, patient_id) for forget in self._forget_elsewhere)
        deleted += self._store.delete(self._keys(tenant_id, found))
        self._audit.forget(tenant_id, patient_id)  # last: the trail then names no one
        erased(patient_id)
        count("PatientErased")
        return {
            "patient_id": patient_id,
            "erased_at": now,
            "items_deleted": deleted,
            "executions_stopped": stopped,
            "places_released": released,
            "devices_removed": devices,
        }

    def purge_expired(self, tenants: TenantService) -> PurgeReport:
        """The daily retention sweep: each tenant's soft-deleted patients whose retention has
        passed are erased by the same code as an admin's request, each with its audit entry."""
        erased = 0
        for tenant_id in tenants.all_ids():
            tenant = tenants.require(tenant_id)
            days = (tenant.get("privacy") or {}).get(
                "deleted_patient_retention_days", DEFAULT_DELETED_RETENTION_DAYS
            )
            cutoff = clock.iso(clock.now() - timedelta(days=days))
            for patient_id in self._patients.deleted_before(tenant_id, cutoff, PURGE_BATCH):
                with recording() as trail:
                    outcome = "ok"
                    try:
                        self.erase(tenant_id, patient_id)
                        erased += 1
                    except NotFound:
                        outcome = "not_found"
                    self._audit.record(
                        tenant_id,
                        Activity(
                            actor={
                                "kind": ActorKind.SYSTEM,
                                "subject": "retention_sweep",
                                "role": "system",
                            },
                            action="purge_deleted_patient",
                            subjects=(),
                            records=tuple(
                                {"type": kind, "id": record_id} for kind, record_id in trail.records
                            ),
                            fields=(),
                            outcome=outcome,
                            source={},
                            reason=f"deleted more than {days} days ago (the tenant's retention)",
                        ),
                        {patient_id},
                        found=set(),
                    )
        if erased:
            count("PatientsPurged", erased)
        return {"erased": erased}

    # -- the steps ---------------------------------------------------------------------------

    def _stop_executions(self, tenant_id: str, found: Found) -> int:
        settings = get_settings()
        patient_id = found.profile["id"]
        stops: list[tuple[str, str]] = []
        for appointment in found.appointments:
            for version in range(1, int(appointment.get("journey_version", 1)) + 1):
                name = execution_name(tenant_id, appointment["id"], version)
                stops.append((settings.appointment_journey_arn, name))
        for record in found.care:
            if record.get("kind") == "aftercare":
                stops.append((settings.aftercare_journey_arn, f"{tenant_id}-{record['id']}"))
            elif record.get("due_date") and record.get("rule_id"):
                name = recall_execution_name(
                    tenant_id, patient_id, record["rule_id"], record["due_date"]
                )
                stops.append((settings.recall_journey_arn, name))
        for campaign_pk in self._campaign_partitions(tenant_id):
            campaign_id = campaign_pk.rsplit("#", 1)[1]
            _, name = campaign_rules.execution_names(tenant_id, campaign_id, patient_id)
            stops.append((settings.campaign_outreach_arn, name))
        for machine, name in stops:
            if machine:
                self._executions.stop(machine, name, "the patient's data was erased")
        return len(stops)

    def _release_places(self, tenant_id: str, found: Found) -> int:
        now = clock.iso(clock.now())
        released = 0
        for appointment in found.appointments:
            if appointment["status"] in ACTIVE and appointment["start"] > now:
                self._store.release_place(
                    tenant_id,
                    appointment["department"],
                    slot_sk(appointment["start"], appointment["schedule_id"]),
                )
                released += 1
        return released

    def _remove_devices(self, tenant_id: str, patient_id: str) -> int:
        endpoints = self._devices.endpoints(tenant_id, patient_id)
        for endpoint in endpoints:
            self._channels.unregister_device(endpoint)
        return len(endpoints)

    def _forget_awaited_answers(self, profile: Document) -> None:
        """Answers awaited from the patient's (or guardian's) number, about this patient, go;
        others awaited from the same number (a sibling's) stay."""
        phones = {profile.get("phone"), (profile.get("guardian") or {}).get("phone")}
        for phone in sorted(p for p in phones if p):
            partition = sms_pk(phone)
            for sk, doc in self._store.awaited_for(partition):
                entries_ = doc.get("entries")
                kept = [
                    e
                    for e in (entries_ if isinstance(entries_, list) else [])
                    if e.get("patient_id") != profile["id"]
                ]
                if kept:
                    self._store.keep_awaited(partition, sk, {**doc, "entries": kept})
                else:
                    self._store.delete([(partition, sk)])

    def _campaign_partitions(self, tenant_id: str) -> list[str]:
        return sorted({pk for pk, _ in self._store.listed_by_listing(f"T#{tenant_id}#CAMPAIGNS")})

    def _keys(self, tenant_id: str, found: Found) -> list[Key]:
        """Every item that names the patient, by key."""
        patient_id = found.profile["id"]
        keys = self._store.patients_partitions(tenant_id, patient_id)
        for _, sk in list(keys):
            if sk.startswith("ACCOUNT#"):  # an app account's link, kept under the account too
                keys.append((f"LINK#{sk.removeprefix('ACCOUNT#')}", f"T#{tenant_id}"))
            elif sk.startswith("LINKCODE#"):  # a link code sent to the patient
                keys.append((sk, "CODE"))
        mrn = (found.profile.get("external_ids") or {}).get("mrn")
        if mrn:
            keys.append(mrn_claim_key(tenant_id, str(mrn)))
        live = {k: v for k, v in found.profile.items() if k != "deleted_at"}
        index_entries = set(entries(live))
        for appointment in found.appointments:
            index_entries |= visit_entries(patient_id, appointment["type"])
        keys += [(stored_partition(tenant_id, e.partition), stored_sort(e)) for e in index_entries]
        keys += [(pk, f"P#{patient_id}") for pk in self._campaign_partitions(tenant_id)]
        for delivery in self._deliveries.for_patient(tenant_id, patient_id, limit=DELIVERIES_MAX):
            if delivery.get("message_id"):
                keys.append((f"MSG#{delivery['message_id']}", "DELIVERY"))
        return keys
