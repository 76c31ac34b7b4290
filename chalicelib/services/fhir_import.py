"""A hospital's FHIR data into CareLoop: patients upserted by MRN, appointments by the hospital's
own identifier (they stay owned by its system: see `domain.hospital_appointments`).

An import is checked whole before anything is written: the bundle against the FHIR models and
our rules, then every patient and appointment against what is stored (departments, schedules,
patients named by MRN), and a 400 names every failing entry and field. Writes are upserts keyed
by the hospital's identifiers, each one transaction (a patient and its MRN claim; an appointment,
its slot and its journey marker), so a bundle sent twice changes nothing the second time and a
bundle whose import was cut short is completed by sending it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import patients as patient_rules
from chalicelib.domain.access import Principal, Role, require_role, tenant_of
from chalicelib.domain.appointments import day_of, fulfilled_event
from chalicelib.domain.common import Document, utc_iso
from chalicelib.domain.errors import Conflict, FieldError, Problems, Retryable, ValidationFailed
from chalicelib.domain.fhir.common import LITERAL_REFERENCE, mrn_system_of
from chalicelib.domain.fhir.imports import (
    EntryResult,
    ImportedAppointment,
    ImportedPatient,
    ParsedBundle,
    parse_transaction_bundle,
    transaction_response,
)
from chalicelib.domain.hospital_appointments import (
    DEFAULT_TYPE,
    HOSPITAL_SCHEDULE,
    OWNER_HOSPITAL,
    ImportedChange,
    department_from_hints,
    hospital_appointment_id,
    imported_change,
    is_hospital_owned,
)
from chalicelib.domain.scheduling import find_slot
from chalicelib.domain.tenants import department_names
from chalicelib.observability import count, run_hooks
from chalicelib.schemas import validate
from chalicelib.services.appointments import waiting_for_sends
from chalicelib.services.patients import new_patient_id
from chalicelib.services.tenants import TenantService
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.config import ConfigRepository
from chalicelib.store.patients import PatientRepository

IMPORTERS = frozenset({Role.ADMIN})
# A visit first heard of as already fulfilled is news (its care plans start, as after a visit
# CareLoop followed) when it was this recent; older ones are history: they count for recall
# and analytics, and no message follows them.
RECENT_VISIT = timedelta(days=7)
# Writes of one appointment raced by its own journey before the import gives up (retryable).
WRITE_ATTEMPTS = 3
# How far back the patient's latest visit is looked for among their appointments.
VISITS_LOOKED_AT = 50
# Fields of a profile the hospital's record sets; the rest (channels, consent, departments)
# are CareLoop's.
COMPARED_PROFILE_FIELDS = (
    "name",
    "birth_date",
    "sex",
    "phone",
    "email",
    "language",
    "time_zone",
    "guardian",
    "external_ids",
)


@dataclass(frozen=True)
class Places:
    schedules: dict[str, Document]
    clinicians: dict[str, Document]


@dataclass
class PlannedPatient:
    source: str
    mrn: str
    previous: Document | None  # None: a new patient
    doc: Document | None  # None: unchanged


@dataclass
class PlannedAppointment:
    source: str
    previous: Document | None
    change: ImportedChange | None  # None: unchanged (or nothing to keep)
    capacity: int | None = None
    note: str | None = None
    incoming: Document | None = None  # as the hospital sent it: redone over a newer version


@dataclass
class ImportPlan:
    patients: list[PlannedPatient] = field(default_factory=list)
    appointments: list[PlannedAppointment] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)


def _repathed(failure: ValidationFailed, source: str) -> list[FieldError]:
    """A profile rule's failure (`$.guardian`) named by the entry it came from."""
    return [
        FieldError(f"{source}.resource ({detail.path.removeprefix('$.')})", detail.message)
        for detail in failure.details
    ]


def _profile_changed(previous: Document, doc: Document) -> bool:
    return any(previous.get(k) != doc.get(k) for k in COMPARED_PROFILE_FIELDS)


class FhirImportService:
    def __init__(
        self,
        tenants: TenantService,
        patients: PatientRepository,
        appointments: AppointmentRepository,
        config: ConfigRepository,
        # (tenant, appointment id): the journeys a write owes, settled now or by the sweep.
        settle_journeys: Callable[[Document, str], None],
        # An `appointment.fulfilled` event for the journey-events topic (care plans, recall).
        publish_event: Callable[[Document], None],
        on_patient_changed: Sequence[Callable[[str, Document], None]] = (),
        on_booked: Sequence[Callable[[str, Document], None]] = (),
        # A patient's latest visit, from history: recall counts restart from it.
        on_history_visit: Sequence[Callable[[str, Document], None]] = (),
    ) -> None:
        self._tenants = tenants
        self._patients = patients
        self._appointments = appointments
        self._config = config
        self._settle_journeys = settle_journeys
        self._publish_event = publish_event
        self._on_patient_changed = on_patient_changed
        self._on_booked = on_booked
        self._on_history_visit = on_history_visit

    # -- the endpoint --------------------------------------------------------------------------

    def transaction(self, principal: Principal, bundle: Document) -> Document:
        """`POST /fhir`: a transaction Bundle, answered with a `transaction-response` Bundle
        (201 for what was created, 200 for what was updated or already so)."""
        require_role(principal, IMPORTERS)
        tenant = self._tenants.require(tenant_of(principal))
        parsed = parse_transaction_bundle(
            bundle, mrn_system_of(tenant), phone_region=tenant.get("country")
        )
        by_source = self.import_parsed(tenant, parsed, "the bundle")
        results: list[EntryResult] = [
            by_source.get(
                f"$.entry[{index}]",
                {"status": "200 OK", "note": "read to place the appointments; not kept"},
            )
            for index in range(len(bundle.get("entry", [])))
        ]
        return transaction_response(results)

    def places(self, tenant: Document) -> Places:
        """The tenant's schedules and clinicians, read once for many imports (a bulk page)."""
        return Places(
            schedules={s["id"]: s for s in self._config.records(tenant["id"], "SCHEDULE")},
            clinicians={c["id"]: c for c in self._config.records(tenant["id"], "CLINICIAN")},
        )

    def import_parsed(
        self, tenant: Document, parsed: ParsedBundle, what: str, places: Places | None = None
    ) -> dict[str, EntryResult]:
        """Check `parsed` (a bundle's or a bulk file line's) whole against what is stored, then
        write it: what became of each entry, by its source (`$.entry[3]`, `line[12]`). Raises
        ValidationFailed naming every failing entry and field, having written nothing."""
        plan = self.plan(tenant, parsed, places or self.places(tenant))
        if plan.problems.details:
            summary = "; ".join(f"{d.path}: {d.message}" for d in plan.problems.details[:5])
            raise ValidationFailed(
                f"{what} cannot be imported: {summary}", details=plan.problems.details
            )
        return self.apply(tenant, plan)

    # -- checking everything before anything is written ----------------------------------------

    def plan(self, tenant: Document, parsed: ParsedBundle, places: Places) -> ImportPlan:
        plan = ImportPlan()
        by_mrn: dict[str, Document] = {}  # this import's patients, for its appointments
        for imported in parsed["patients"]:
            planned = self._plan_patient(tenant, imported, plan.problems)
            if planned is not None:
                plan.patients.append(planned)
                current = planned.doc or planned.previous
                if current is not None:
                    by_mrn[planned.mrn] = current
        schedules, clinicians = places.schedules, places.clinicians
        for appointment in parsed["appointments"]:
            planned_appointment = self._plan_appointment(
                tenant, appointment, parsed, by_mrn, schedules, clinicians, plan.problems
            )
            if planned_appointment is not None:
                plan.appointments.append(planned_appointment)
        return plan

    def _plan_patient(
        self, tenant: Document, imported: ImportedPatient, problems: Problems
    ) -> PlannedPatient | None:
        source, now = imported["source"], clock.now()
        previous = self._patients.find_by_mrn(tenant["id"], imported["mrn"])
        body: Document = json.loads(json.dumps(imported["create"]))
        try:
            if previous is None:
                validate("patient-create", body)
                doc = patient_rules.new_patient(body, tenant, new_patient_id(), now, clock.iso(now))
            else:
                # The hospital's fields over ours; the ids it does not send are kept.
                doc = patient_rules.patched_patient(
                    previous, body, tenant, now, clock.iso(now), by_patient=False
                )
                validate("patient", {k: v for k, v in doc.items() if k != "opt_outs"})
        except ValidationFailed as failure:
            problems.details.extend(_repathed(failure, source))
            return None
        if previous is not None and not _profile_changed(previous, doc):
            return PlannedPatient(source, imported["mrn"], previous, None)
        return PlannedPatient(source, imported["mrn"], previous, doc)

    def _patient_of(
        self,
        tenant: Document,
        appointment: ImportedAppointment,
        by_mrn: dict[str, Document],
        problems: Problems,
    ) -> Document | None:
        key, source = appointment["patient"], appointment["source"]
        found: Document | None = None
        if "mrn" in key:
            if key["mrn"] in by_mrn:
                return by_mrn[key["mrn"]]
            found = self._patients.find_by_mrn(tenant["id"], key["mrn"])
            if found is None:
                problems.add(
                    f"{source}.resource.participant",
                    "names a patient by an MRN CareLoop does not know: send the Patient too",
                )
        elif "fhir_id" in key:
            found = self._patients.get(tenant["id"], key["fhir_id"])
            if found is None:
                problems.add(
                    f"{source}.resource.participant",
                    "refers to a patient by an id CareLoop does not know: refer to them by "
                    f"MRN (Patient?identifier={mrn_system_of(tenant)}|<MRN>)",
                )
        return found

    def _placement(
        self,
        tenant: Document,
        appointment: ImportedAppointment,
        parsed: ParsedBundle,
        schedules: dict[str, Document],
        clinicians: dict[str, Document],
        problems: Problems,
    ) -> tuple[Document, int | None] | None:
        """Department, clinician, schedule and place; with the capacity of a slot in a schedule
        CareLoop manages, else None (no place is held)."""
        source = appointment["source"]
        clinician = _ours(appointment.get("practitioner"), "Practitioner", clinicians)
        schedule_ids = [
            slot["schedule"] for slot in parsed["slots"] if slot["ref"] == appointment.get("slot")
        ]
        schedule = next(
            (s for ref in schedule_ids if (s := _ours(ref, "Schedule", schedules)) is not None),
            None,
        )
        if schedule is None and clinician is not None:
            schedule = next(
                (s for s in schedules.values() if s["clinician"] == clinician["id"]), None
            )
        start = appointment.get("start")
        if schedule is not None and start is not None:
            slot = find_slot(schedule, ZoneInfo(tenant["time_zone"]), datetime.fromisoformat(start))
            if slot is not None:
                placed = {
                    "department": slot.department,
                    "clinician": slot.clinician,
                    "schedule_id": slot.schedule_id,
                    "location": slot.location,
                }
                return placed, slot.capacity
        departments = department_names(tenant)
        department = department_from_hints(appointment.get("department_hints", []), departments)
        if department is None and clinician is not None:
            department = clinician["department"]
        if department is None:
            problems.add(
                f"{source}.resource.serviceType",
                "names none of the hospital's departments (by code or name: "
                f"{', '.join(sorted(departments))})",
            )
            return None
        placed = {
            "department": department,
            "clinician": clinician["id"] if clinician is not None else HOSPITAL_SCHEDULE,
            "schedule_id": HOSPITAL_SCHEDULE,
            "location": appointment.get("location", ""),
        }
        return placed, None

    def _plan_appointment(
        self,
        tenant: Document,
        appointment: ImportedAppointment,
        parsed: ParsedBundle,
        by_mrn: dict[str, Document],
        schedules: dict[str, Document],
        clinicians: dict[str, Document],
        problems: Problems,
    ) -> PlannedAppointment | None:
        source = appointment["source"]
        external = appointment["external_id"]
        appointment_id = hospital_appointment_id(
            tenant["id"], external["system"], external["value"]
        )
        previous = self._appointments.get(tenant["id"], appointment_id)
        if previous is not None and not is_hospital_owned(previous):
            problems.add(f"{source}.resource.identifier", "names an appointment made in CareLoop")
            return None
        patient = self._patient_of(tenant, appointment, by_mrn, problems)
        placement = self._placement(tenant, appointment, parsed, schedules, clinicians, problems)
        if patient is None or placement is None:
            return None
        if previous is not None and previous["patient_id"] != patient["id"]:
            problems.add(
                f"{source}.resource.participant",
                "names another patient than the one this appointment was imported for",
            )
            return None
        placed, capacity = placement
        times: Document = {}
        if "start" in appointment and "end" in appointment:
            times = {"start": appointment["start"], "end": appointment["end"]}
        else:  # a cancellation sent without its times
            if previous is None:
                return PlannedAppointment(
                    source, None, None, note="a cancelled appointment never imported: not kept"
                )
            times = {"start": previous["start"], "end": previous["end"]}
            placed = {
                k: previous[k] for k in ("department", "clinician", "schedule_id", "location")
            }
        incoming: Document = {
            "id": appointment_id,
            "owner": OWNER_HOSPITAL,
            "external_id": dict(external),
            "patient_id": patient["id"],
            **placed,
            "type": appointment.get("type", DEFAULT_TYPE),
            **times,
            "status": appointment["status"],
            "patient_time_zone": patient.get("time_zone") or tenant["time_zone"],
            "booked_by": OWNER_HOSPITAL,
        }
        if appointment.get("practitioner_name"):
            incoming["clinician_name"] = appointment["practitioner_name"]
        if "notes_for_patient" in appointment:
            incoming["notes_for_patient"] = appointment["notes_for_patient"]
        now = clock.now()
        change = imported_change(previous, incoming, now, utc_iso(now))
        return PlannedAppointment(source, previous, change, capacity, incoming=incoming)

    # -- writing -------------------------------------------------------------------------------

    def apply(self, tenant: Document, plan: ImportPlan) -> dict[str, EntryResult]:
        results: dict[str, EntryResult] = {}
        for patient in plan.patients:
            results[patient.source] = self._write_patient(tenant, patient)
        history: dict[str, set[str]] = {}  # patient -> visits imported as history
        for appointment in plan.appointments:
            results[appointment.source] = self._write_appointment(tenant, appointment, history)
        for patient_id, visits in history.items():
            self._latest_visit_counts(tenant, patient_id, visits)
        return results

    def _write_patient(self, tenant: Document, planned: PlannedPatient) -> EntryResult:
        if planned.doc is None:
            current = planned.previous or {}
            return {"status": "200 OK", "location": _location("Patient", current)}
        if planned.previous is None:
            saved = self._patients.create(tenant["id"], planned.doc)
            count("PatientImported")
            status = "201 Created"
        else:
            saved = self._patients.replace(tenant["id"], planned.previous, planned.doc)
            count("PatientUpdatedByImport")
            status = "200 OK"
        run_hooks(
            self._on_patient_changed, tenant["id"], {"before": planned.previous, "after": saved}
        )
        return {"status": status, "location": _location("Patient", saved)}

    def _write_appointment(
        self, tenant: Document, planned: PlannedAppointment, history: dict[str, set[str]]
    ) -> EntryResult:
        change = planned.change
        if change is None:
            if planned.previous is None:
                return {"status": "200 OK", "note": planned.note or "nothing to keep"}
            return {"status": "200 OK", "location": _location("Appointment", planned.previous)}
        for _ in range(WRITE_ATTEMPTS):
            try:
                saved = self._put_appointment(tenant, planned.previous, change, planned.capacity)
                break
            except Conflict as conflict:
                # The journey wrote to it meanwhile (its answer token, say): the hospital's
                # version goes over the one now stored.
                if conflict.code not in ("version_conflict", "concurrent_change"):
                    raise
                assert planned.incoming is not None
                previous = self._appointments.get(tenant["id"], planned.incoming["id"])
                now = clock.now()
                redone = imported_change(previous, planned.incoming, now, utc_iso(now))
                if redone is None:
                    assert previous is not None
                    return {"status": "200 OK", "location": _location("Appointment", previous)}
                planned.previous, change = previous, redone
        else:
            raise Retryable("the appointment kept changing while it was imported")
        count("AppointmentImported" if change.created else "AppointmentUpdatedByImport")
        if change.stop_version is not None or change.start_version is not None:
            self._settle_journeys(tenant, saved["id"])
        if change.start_version is not None:
            run_hooks(self._on_booked, tenant["id"], saved)  # recalls and re-checks convert
        if saved["status"] == "fulfilled" and (change.created or change.became_fulfilled):
            recent = datetime.fromisoformat(saved["start"]) > clock.now() - RECENT_VISIT
            if change.became_fulfilled or recent:
                self._publish_event(fulfilled_event(tenant["id"], saved))
            else:
                history.setdefault(saved["patient_id"], set()).add(saved["id"])
        return {
            "status": "201 Created" if change.created else "200 OK",
            "location": _location("Appointment", saved),
        }

    def _put_appointment(
        self,
        tenant: Document,
        previous: Document | None,
        change: ImportedChange,
        capacity: int | None,
    ) -> Document:
        return waiting_for_sends(
            lambda: self._appointments.put_imported(
                tenant["id"],
                previous,
                change,
                day_of(change.doc, tenant),
                capacity,
                utc_iso(clock.now()),
            )
        )

    def _latest_visit_counts(self, tenant: Document, patient_id: str, visits: set[str]) -> None:
        """Recall counts restart from the patient's latest visit: only if history brought it
        (an older visit imported after a newer one changes nothing)."""
        found = self._appointments.for_patient(
            tenant["id"],
            patient_id,
            before=utc_iso(clock.now()),
            newest_first=True,
            limit=VISITS_LOOKED_AT,
        )
        latest = next((a for a in found if a["status"] == "fulfilled"), None)
        if latest is not None and latest["id"] in visits:
            run_hooks(self._on_history_visit, tenant["id"], fulfilled_event(tenant["id"], latest))


def _ours(reference: str | None, kind: str, records: dict[str, Document]) -> Document | None:
    """Our record a hospital's reference names by our id (`Practitioner/<clinician id>`,
    `Schedule/<schedule id>`), as our own export writes them."""
    literal = LITERAL_REFERENCE.search(reference or "")
    if literal is None or literal["type"] != kind:
        return None
    return records.get(literal["id"])


def _location(kind: str, doc: Document) -> str:
    return f"{kind}/{doc.get('id', '')}/_history/{doc.get('version', 1)}"
