"""A hospital's FHIR data as our documents: a transaction Bundle (`POST /fhir`) or the lines of
a bulk NDJSON file, each resource checked against the FHIR models and mapped to what our
services create: a patient-create document (keyed by the tenant's MRN), an imported appointment
(keyed by the hospital's own identifier), and the practitioners, schedules and slots sent
with them.

Nothing is written here, and the output depends on the input alone, so a re-sent bundle gives
the same documents (the services upsert on the MRN and the appointment's identifier). Every
problem is collected and named by its path (`$.entry[3].resource.birthDate`, `line[12].gender`)
before anything is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict
from urllib.parse import parse_qs

from chalicelib.domain.common import check_time_zone, parse_timestamp, to_e164, utc_iso
from chalicelib.domain.errors import FieldError, Problems, ValidationFailed
from chalicelib.domain.fhir.common import (
    DEPARTMENT_SYSTEM,
    LANGUAGES,
    LITERAL_REFERENCE,
    TIME_ZONE_EXTENSION,
)

# What our schemas allow (patient.json, common.json).
MRN = re.compile(r"^[A-Za-z0-9-]{1,40}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_NAME, MAX_NOTES, MAX_EMAIL, MIN_PHONE, MAX_PHONE = 100, 1000, 254, 3, 32
DANGLING = "a reference to no entry"
IMPORTED_TYPES = ("Patient", "Appointment", "Practitioner", "Schedule", "Slot")
SEXES = ("female", "male", "other", "unknown")  # FHIR's AdministrativeGender, ours too

# FHIR Appointment.status -> ours. Checked-in is arrived; pending (not every participant has
# answered) is still a proposal; an appointment entered in error never happened, and cancelling
# it is what stops its journey and frees its slot. A waitlist entry holds no slot: refused.
APPOINTMENT_STATUS = {
    "proposed": "proposed",
    "pending": "proposed",
    "booked": "booked",
    "arrived": "arrived",
    "checked-in": "arrived",
    "fulfilled": "fulfilled",
    "cancelled": "cancelled",
    "noshow": "noshow",
    "entered-in-error": "cancelled",
}
SLOT_STATUSES = ("busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error")
# v2 table 0276 codes, and our own code system's, for our appointment types.
APPOINTMENT_TYPE_CODES = {
    "FOLLOWUP": "follow_up",
    "CHECKUP": "check_up",
    "first_visit": "first_visit",
    "follow_up": "follow_up",
    "procedure": "procedure",
    "check_up": "check_up",
}
# v3 RoleCode (and v2 0131's contact roles) -> our guardian relationships.
RELATIONSHIPS = {
    "PRN": "parent",
    "MTH": "parent",
    "FTH": "parent",
    "GUARD": "legal_guardian",
    "SPS": "spouse",
    "HUSB": "spouse",
    "WIFE": "spouse",
    "CHILD": "child",
    "SON": "child",
    "DAU": "child",
    "FAMMEMB": "relative",
}
OUR_RELATIONSHIPS = (
    "parent",
    "legal_guardian",
    "spouse",
    "child",
    "relative",
    "caregiver",
    "other",
)


class ExternalIdentifier(TypedDict):
    system: str
    value: str


class PatientName(TypedDict):
    given: str
    family: NotRequired[str]
    preferred: NotRequired[str]


class Guardian(TypedDict):
    name: str
    relationship: str
    phone: NotRequired[str]
    email: NotRequired[str]


class ExternalIds(TypedDict, total=False):
    mrn: str
    fhir_id: str  # the patient's id on the hospital's FHIR server


class PatientCreate(TypedDict):
    """A patient-create document (patient-create.json). Phones are as the hospital wrote them
    unless a `phone_region` was given (then E.164); channels, consent and departments are ours
    to set, not the hospital's feed's."""

    name: PatientName
    external_ids: ExternalIds
    birth_date: NotRequired[str]
    sex: NotRequired[str]
    phone: NotRequired[str]
    email: NotRequired[str]
    language: NotRequired[str]
    time_zone: NotRequired[str]
    guardian: NotRequired[Guardian]


class ImportedPatient(TypedDict):
    source: str  # where it came from: `$.entry[0]`, `line[3]`
    mrn: str
    create: PatientCreate


class PatientKey(TypedDict, total=False):
    """How an appointment names its patient: by MRN (a patient of this bundle, or a conditional
    reference), or by the id on the hospital's server of a patient imported before."""

    mrn: str
    fhir_id: str


class ImportedAppointment(TypedDict):
    source: str
    external_id: ExternalIdentifier  # the hospital's appointment number: the upsert key
    status: str  # ours (appointment.json)
    patient: PatientKey
    start: NotRequired[str]  # UTC, as we store times; absent only on a cancelled one
    end: NotRequired[str]
    practitioner: NotRequired[str]  # a practitioner's `ref` when in the bundle, else as written
    location: NotRequired[str]
    slot: NotRequired[str]  # a slot's `ref` when in the bundle, else as written
    type: NotRequired[str]  # ours, when the appointment type's coding says which
    appointment_type_text: NotRequired[str]
    service_type_text: NotRequired[str]
    # What may name the department, best first: our department system's codes, then every
    # code, display and text of serviceType, specialty and serviceCategory.
    department_hints: NotRequired[list[str]]
    practitioner_name: NotRequired[str]  # as the participant's display gives it
    notes_for_patient: NotRequired[str]


class ImportedPractitioner(TypedDict):
    source: str
    ref: str  # what other entries call it: its fullUrl, else `Practitioner/<id>`
    identifiers: list[ExternalIdentifier]
    name: NotRequired[str]


class ImportedSchedule(TypedDict):
    source: str
    ref: str
    active: bool
    actors: list[str]  # practitioners' refs (as resolved), locations as written
    service_type_text: NotRequired[str]


class ImportedSlot(TypedDict):
    source: str
    ref: str
    schedule: str
    status: str
    start: str
    end: str


class ParsedBundle(TypedDict):
    """Each kind in the order of the entries (or lines)."""

    patients: list[ImportedPatient]
    appointments: list[ImportedAppointment]
    practitioners: list[ImportedPractitioner]
    schedules: list[ImportedSchedule]
    slots: list[ImportedSlot]


@dataclass
class _Entry:
    source: str  # `$.entry[3]` or `line[3]`
    path: str  # the resource's own: `$.entry[3].resource` or `line[3]`
    resource: Mapping[str, Any]
    ref: str
    mrn: str | None = None  # a patient's, once mapped


@dataclass
class _Import:
    """One bundle's (or line's) parse: its settings, its entries by reference, its problems."""

    mrn_system: str
    phone_region: str | None
    entries: list[_Entry] = field(default_factory=list)
    by_reference: dict[str, _Entry] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)

    def add(self, entry: _Entry, full_url: str | None) -> None:
        self.entries.append(entry)
        kind, resource_id = entry.resource["resourceType"], entry.resource.get("id")
        keys = [full_url] if full_url else []
        literal = LITERAL_REFERENCE.search(full_url or "")
        if literal:  # `Patient/123` resolves against `https://host/fhir/Patient/123`
            keys.append(f"{literal['type']}/{literal['id']}")
        elif resource_id:
            keys.append(f"{kind}/{resource_id}")
        for key in keys:
            self.by_reference.setdefault(key, entry)

    def resolve(self, reference: str) -> _Entry | None:
        return self.by_reference.get(reference)


def _empty() -> ParsedBundle:
    return {"patients": [], "appointments": [], "practitioners": [], "schedules": [], "slots": []}


def _raise_if_any(problems: Problems, what: str) -> None:
    if problems.details:
        summary = "; ".join(f"{d.path}: {d.message}" for d in problems.details[:5])
        raise ValidationFailed(f"{what} cannot be imported: {summary}", details=problems.details)


# -- Small readers ------------------------------------------------------------------------------


def _instant(value: str, path: str, problems: Problems) -> str | None:
    """A FHIR instant as we store times: UTC, Z, seconds."""
    try:
        return utc_iso(parse_timestamp(path, value))
    except ValidationFailed as failure:
        problems.details.extend(failure.details)
        return None


def _concept_text(concept: Mapping[str, Any]) -> str | None:
    """What a CodeableConcept says to a person: its text, else a coding's display or code."""
    if concept.get("text"):
        text: str = concept["text"]
        return text
    for item in concept.get("coding", []):
        if item.get("display") or item.get("code"):
            shown: str = item.get("display") or item["code"]
            return shown
    return None


def _identifier(identifiers: list[Mapping[str, Any]]) -> ExternalIdentifier | None:
    """The official identifier, else the first with a system and a value."""
    usable = [i for i in identifiers if i.get("system") and i.get("value")]
    usable.sort(key=lambda i: i.get("use") != "official")
    if not usable:
        return None
    return {"system": usable[0]["system"], "value": usable[0]["value"]}


def _phone(value: str, path: str, work: _Import) -> str | None:
    if not MIN_PHONE <= len(value) <= MAX_PHONE:
        work.problems.add(path, f"a phone number has {MIN_PHONE} to {MAX_PHONE} characters")
        return None
    if work.phone_region is None:
        return value
    try:
        return to_e164(path, value, work.phone_region)
    except ValidationFailed as failure:
        work.problems.details.extend(failure.details)
        return None


def _email(value: str, path: str, work: _Import) -> str | None:
    address = value.strip().lower().removeprefix("mailto:")
    if len(address) > MAX_EMAIL or not EMAIL.fullmatch(address):
        work.problems.add(path, "is not an email address")
        return None
    return address


def _contact_points(holder: Mapping[str, Any], path: str, work: _Import) -> dict[str, str]:
    """The phone and the email to reach someone by: a mobile first, then by rank."""
    found: dict[str, str] = {}
    points = list(enumerate(holder.get("telecom", [])))
    points.sort(key=lambda p: (p[1].get("use") != "mobile", p[1].get("rank", 10**6), p[0]))
    for index, point in points:
        at = f"{path}.telecom[{index}].value"
        system, value = point.get("system"), point.get("value")
        if not value or point.get("period", {}).get("end"):
            continue  # nothing to use, or a number that was given up
        if system in ("phone", "sms") and "phone" not in found:
            phone = _phone(value, at, work)
            if phone:
                found["phone"] = phone
        elif system == "email" and "email" not in found:
            email = _email(value, at, work)
            if email:
                found["email"] = email
    return found


def _joined(parts: list[str] | None) -> str:
    return " ".join(p for p in (parts or []) if p)


def _check_length(value: str, path: str, problems: Problems) -> None:
    if len(value) > MAX_NAME:
        problems.add(path, f"at most {MAX_NAME} characters")


# -- Patient ------------------------------------------------------------------------------------


def _mrn(resource: Mapping[str, Any], path: str, work: _Import) -> str | None:
    for index, identifier in enumerate(resource.get("identifier", [])):
        if identifier.get("system") == work.mrn_system:
            value = identifier.get("value", "")
            if not MRN.fullmatch(value):
                work.problems.add(
                    f"{path}.identifier[{index}].value",
                    "an MRN has 1 to 40 letters, digits or hyphens",
                )
                return None
            found: str = value
            return found
    work.problems.add(
        f"{path}.identifier",
        f"needs the patient's MRN: an identifier of system {work.mrn_system}",
    )
    return None


def _name(resource: Mapping[str, Any], path: str, problems: Problems) -> PatientName | None:
    names = list(enumerate(resource.get("name", [])))
    # The official name, else one in everyday use, else any.
    names.sort(key=lambda n: ({"official": 0, None: 1, "usual": 1}.get(n[1].get("use"), 2), n[0]))
    if not names:
        problems.add(f"{path}.name", "a patient needs a name")
        return None
    index, chosen = names[0]
    given = _joined(chosen.get("given")) or chosen.get("text", "")
    if not given:
        problems.add(f"{path}.name[{index}].given", "a patient needs a given name (or a text)")
        return None
    _check_length(given, f"{path}.name[{index}].given", problems)
    name: PatientName = {"given": given}
    if chosen.get("family") and _joined(chosen.get("given")):
        _check_length(chosen["family"], f"{path}.name[{index}].family", problems)
        name["family"] = chosen["family"]
    for other_index, other in names[1:]:
        preferred = _joined(other.get("given"))
        if other.get("use") in ("usual", "nickname") and preferred and preferred != given:
            _check_length(preferred, f"{path}.name[{other_index}].given", problems)
            name["preferred"] = preferred
            break
    return name


def _language(resource: Mapping[str, Any], path: str, problems: Problems) -> str | None:
    languages = list(enumerate(resource.get("communication", [])))
    languages.sort(key=lambda c: (not c[1].get("preferred", False), c[0]))
    for index, communication in languages:
        concept = communication["language"]
        codes = [c.get("code") for c in concept.get("coding", [])] + [concept.get("text")]
        for code in codes:
            ours = next((lang for lang in LANGUAGES if lang.lower() == str(code).lower()), None)
            if ours:
                return ours
        problems.add(
            f"{path}.communication[{index}].language",
            f"is not one of our languages ({', '.join(LANGUAGES)})",
        )
        return None
    return None


def _time_zone(resource: Mapping[str, Any], path: str, problems: Problems) -> str | None:
    for index, extension in enumerate(resource.get("extension", [])):
        if extension.get("url") == TIME_ZONE_EXTENSION and "valueCode" in extension:
            at = f"{path}.extension[{index}].valueCode"
            with problems.check():
                check_time_zone(at, extension["valueCode"])
                zone: str = extension["valueCode"]
                return zone
    return None


def _relationship(contact: Mapping[str, Any]) -> str:
    for concept in contact.get("relationship", []):
        for item in concept.get("coding", []):
            if item.get("code") in RELATIONSHIPS:
                return RELATIONSHIPS[item["code"]]
        text = str(concept.get("text", "")).lower().replace(" ", "_")
        if text in OUR_RELATIONSHIPS:
            return text
    return "other"


def _guardian(resource: Mapping[str, Any], path: str, work: _Import) -> Guardian | None:
    """The first contact we could write to: a name and a phone or an email."""
    for index, contact in enumerate(resource.get("contact", [])):
        at = f"{path}.contact[{index}]"
        name = contact.get("name", {})
        full_name = name.get("text") or _joined([name.get("family", ""), *name.get("given", [])])
        reach = _contact_points(contact, at, work)
        if not full_name or not reach:
            continue
        _check_length(full_name, f"{at}.name", work.problems)
        guardian: Guardian = {"name": full_name, "relationship": _relationship(contact)}
        if "phone" in reach:
            guardian["phone"] = reach["phone"]
        if "email" in reach:
            guardian["email"] = reach["email"]
        return guardian
    return None


def _check_alive_and_active(resource: Mapping[str, Any], path: str, problems: Problems) -> None:
    """No reminders to the dead, nor to a record the hospital retired (merged, in error)."""
    if resource.get("deceasedBoolean") or "deceasedDateTime" in resource:
        kind = "deceasedBoolean" if "deceasedBoolean" in resource else "deceasedDateTime"
        problems.add(f"{path}.{kind}", "a deceased patient is not imported")
    if resource.get("active") is False:
        problems.add(f"{path}.active", "an inactive patient record is not imported")


def _demographics(
    resource: Mapping[str, Any], path: str, create: PatientCreate, problems: Problems
) -> None:
    if "birthDate" in resource:
        if FULL_DATE.fullmatch(resource["birthDate"]):
            create["birth_date"] = resource["birthDate"]
        else:
            problems.add(f"{path}.birthDate", "a full date (YYYY-MM-DD) is needed")
    if "gender" in resource:
        if resource["gender"] in SEXES:
            create["sex"] = resource["gender"]
        else:
            problems.add(f"{path}.gender", f"is not one of {', '.join(SEXES)}")
    language = _language(resource, path, problems)
    if language:
        create["language"] = language
    zone = _time_zone(resource, path, problems)
    if zone:
        create["time_zone"] = zone


def _patient(entry: _Entry, work: _Import) -> ImportedPatient | None:
    resource, path = entry.resource, entry.path
    _check_alive_and_active(resource, path, work.problems)
    mrn = _mrn(resource, path, work)
    name = _name(resource, path, work.problems)
    if mrn is None or name is None:
        return None
    ids: ExternalIds = {"mrn": mrn}
    if FHIR_ID.fullmatch(str(resource.get("id", ""))):
        ids["fhir_id"] = resource["id"]
    create: PatientCreate = {"name": name, "external_ids": ids}
    _demographics(resource, path, create, work.problems)
    reach = _contact_points(resource, path, work)
    if "phone" in reach:
        create["phone"] = reach["phone"]
    if "email" in reach:
        create["email"] = reach["email"]
    guardian = _guardian(resource, path, work)
    if guardian:
        create["guardian"] = guardian
    entry.mrn = mrn
    return {"source": entry.source, "mrn": mrn, "create": create}


# -- References ---------------------------------------------------------------------------------


def _actor_type(actor: Mapping[str, Any], work: _Import) -> str | None:
    """What kind of resource a participant is, from its entry, its reference or its type."""
    reference = actor.get("reference")
    if reference:
        target = work.resolve(reference)
        if target is not None:
            kind: str = target.resource["resourceType"]
            return kind
        if reference.startswith("Patient?"):
            return "Patient"
        literal = LITERAL_REFERENCE.search(reference)
        if literal:
            return literal["type"]
        if reference.startswith("urn:"):
            return DANGLING  # meant for an entry of the bundle that is not there
    declared: str | None = actor.get("type")
    return declared


def _conditional_mrn(reference: str, path: str, work: _Import) -> str | None:
    """The MRN of `Patient?identifier=<system>|<value>`."""
    query = parse_qs(reference.partition("?")[2])
    system, _, value = (query.get("identifier") or [""])[0].partition("|")
    if system != work.mrn_system or not value:
        work.problems.add(
            path, f"a conditional reference must be Patient?identifier={work.mrn_system}|<MRN>"
        )
        return None
    return value


def _patient_key(actor: Mapping[str, Any], path: str, work: _Import) -> PatientKey | None:
    reference = actor.get("reference")
    if reference is None:
        identifier = actor.get("identifier", {})
        if identifier.get("system") == work.mrn_system and identifier.get("value"):
            return {"mrn": identifier["value"]}
        work.problems.add(path, f"name the patient by reference or by MRN ({work.mrn_system})")
        return None
    target = work.resolve(reference)
    if target is not None:  # a patient of this bundle: None if it failed (said there)
        return {"mrn": target.mrn} if target.mrn else None
    if reference.startswith("Patient?"):
        mrn = _conditional_mrn(reference, f"{path}.reference", work)
        return {"mrn": mrn} if mrn else None
    literal = LITERAL_REFERENCE.search(reference)
    if literal and not reference.startswith("urn:"):
        return {"fhir_id": literal["id"]}  # a patient imported before, by the hospital's id
    work.problems.add(f"{path}.reference", "refers to no entry of this bundle")
    return None


def _ref_of(actor: Mapping[str, Any], path: str, work: _Import) -> str | None:
    """A reference as our documents keep it: the entry's ref when it is in the bundle, else as
    written (a server's `Practitioner/7`); a `urn:` meant for an entry that is not there fails."""
    reference = actor.get("reference")
    if reference:
        target = work.resolve(reference)
        if target is not None:
            return target.ref
        if reference.startswith("urn:"):
            work.problems.add(f"{path}.reference", "refers to no entry of this bundle")
            return None
        return str(reference)
    identifier = actor.get("identifier", {})
    if identifier.get("value"):
        return f"{identifier.get('system', '')}|{identifier['value']}"
    display: str | None = actor.get("display")
    return display


# -- Appointment, practitioner, schedule, slot --------------------------------------------------


def _appointment_participants(
    resource: Mapping[str, Any], path: str, appointment: ImportedAppointment, work: _Import
) -> bool:
    """The patient (exactly one), the practitioner and the place. False if no patient."""
    patients = []
    dangling = False
    for index, participant in enumerate(resource["participant"]):
        actor = participant.get("actor")
        if not actor:
            continue
        kind = _actor_type(actor, work)
        at = f"{path}.participant[{index}].actor"
        if kind == DANGLING:
            work.problems.add(f"{at}.reference", "refers to no entry of this bundle")
            dangling = True
        elif kind == "Patient":
            patients.append((at, actor))
        elif kind == "Practitioner" and "practitioner" not in appointment:
            ref = _ref_of(actor, at, work)
            if ref:
                appointment["practitioner"] = ref
            if actor.get("display"):
                appointment["practitioner_name"] = actor["display"]
        elif kind == "Location" and "location" not in appointment:
            place = actor.get("display") or _ref_of(actor, at, work)
            if place:
                appointment["location"] = place
    if len(patients) != 1:
        if not dangling:  # a dangling reference may well have been the patient: said already
            work.problems.add(f"{path}.participant", "needs exactly one patient among them")
        return False
    at, actor = patients[0]
    key = _patient_key(actor, at, work)
    if key is None:
        return False
    appointment["patient"] = key
    return True


def _appointment_kind(resource: Mapping[str, Any], appointment: ImportedAppointment) -> None:
    concept = resource.get("appointmentType")
    if concept:
        for item in concept.get("coding", []):
            if item.get("code") in APPOINTMENT_TYPE_CODES:
                appointment["type"] = APPOINTMENT_TYPE_CODES[item["code"]]
                break
        text = _concept_text(concept)
        if text:
            appointment["appointment_type_text"] = text
    for service in resource.get("serviceType", []):
        text = _concept_text(service)
        if text:
            appointment["service_type_text"] = text
            break
    concepts = [
        *resource.get("serviceType", []),
        *resource.get("specialty", []),
        *resource.get("serviceCategory", []),
    ]
    ours = [
        item["code"]
        for concept in concepts
        for item in concept.get("coding", [])
        if item.get("system") == DEPARTMENT_SYSTEM and item.get("code")
    ]
    others = [
        value
        for concept in concepts
        for value in (
            *(
                v
                for item in concept.get("coding", [])
                for v in (item.get("code"), item.get("display"))
            ),
            concept.get("text"),
        )
        if value
    ]
    hints = list(dict.fromkeys([*ours, *others]))
    if hints:
        appointment["department_hints"] = hints


def _appointment_times(
    resource: Mapping[str, Any], path: str, appointment: ImportedAppointment, work: _Import
) -> None:
    times: dict[str, str] = {}
    for name in ("start", "end"):
        if name in resource:
            moment = _instant(resource[name], f"{path}.{name}", work.problems)
            if moment:
                times[name] = moment
        elif appointment["status"] != "cancelled":
            work.problems.add(f"{path}.{name}", "is required unless the appointment is cancelled")
    if "start" in times:
        appointment["start"] = times["start"]
    if "end" in times:
        appointment["end"] = times["end"]
    if times.get("start", "") > times.get("end", "~"):
        work.problems.add(f"{path}.end", "must not be before start")


def _appointment(entry: _Entry, work: _Import) -> ImportedAppointment | None:
    resource, path = entry.resource, entry.path
    external_id = _identifier(resource.get("identifier", []))
    if external_id is None:
        work.problems.add(
            f"{path}.identifier",
            "needs the hospital's appointment identifier (system and value): a re-sent "
            "appointment updates the one it names",
        )
    status = APPOINTMENT_STATUS.get(resource["status"])
    if status is None:
        work.problems.add(f"{path}.status", f"{resource['status']!r} is not imported")
    if external_id is None or status is None:
        return None
    appointment: ImportedAppointment = {
        "source": entry.source,
        "external_id": external_id,
        "status": status,
        "patient": {},
    }
    has_patient = _appointment_participants(resource, path, appointment, work)
    _appointment_times(resource, path, appointment, work)
    _appointment_kind(resource, appointment)
    if resource.get("slot"):
        slot = _ref_of(resource["slot"][0], f"{path}.slot[0]", work)
        if slot:
            appointment["slot"] = slot
    notes = resource.get("patientInstruction")
    if notes:
        if len(notes) > MAX_NOTES:
            work.problems.add(f"{path}.patientInstruction", f"at most {MAX_NOTES} characters")
        appointment["notes_for_patient"] = notes
    return appointment if has_patient else None


def _practitioner(entry: _Entry) -> ImportedPractitioner:
    resource = entry.resource
    identifiers = [
        ExternalIdentifier(system=i["system"], value=i["value"])
        for i in resource.get("identifier", [])
        if i.get("system") and i.get("value")
    ]
    practitioner: ImportedPractitioner = {
        "source": entry.source,
        "ref": entry.ref,
        "identifiers": identifiers,
    }
    for name in resource.get("name", []):
        shown = name.get("text") or _joined([*name.get("given", []), name.get("family", "")])
        if shown:
            practitioner["name"] = shown
            break
    return practitioner


def _schedule(entry: _Entry, work: _Import) -> ImportedSchedule:
    resource = entry.resource
    actors = [
        _ref_of(actor, f"{entry.path}.actor[{index}]", work)
        for index, actor in enumerate(resource["actor"])
    ]
    schedule: ImportedSchedule = {
        "source": entry.source,
        "ref": entry.ref,
        "active": resource.get("active", True),
        "actors": [actor for actor in actors if actor],
    }
    for service in resource.get("serviceType", []):
        text = _concept_text(service)
        if text:
            schedule["service_type_text"] = text
            break
    return schedule


def _slot(entry: _Entry, work: _Import) -> ImportedSlot | None:
    resource, path = entry.resource, entry.path
    if resource["status"] not in SLOT_STATUSES:
        work.problems.add(f"{path}.status", f"is not one of {', '.join(SLOT_STATUSES)}")
        return None
    start = _instant(resource["start"], f"{path}.start", work.problems)
    end = _instant(resource["end"], f"{path}.end", work.problems)
    schedule = _ref_of(resource["schedule"], f"{path}.schedule", work)
    if start is None or end is None or schedule is None:
        return None
    return {
        "source": entry.source,
        "ref": entry.ref,
        "schedule": schedule,
        "status": resource["status"],
        "start": start,
        "end": end,
    }


# -- Putting it together ------------------------------------------------------------------------


def _check_unique(parsed: ParsedBundle, problems: Problems) -> None:
    """One patient per MRN and one appointment per identifier in what is sent together."""
    first_of: dict[str, str] = {}
    for patient in parsed["patients"]:
        earlier = first_of.setdefault(f"mrn {patient['mrn']}", patient["source"])
        if earlier != patient["source"]:
            problems.add(f"{patient['source']}.resource.identifier", f"the same MRN as {earlier}")
    for appointment in parsed["appointments"]:
        key = appointment["external_id"]
        earlier = first_of.setdefault(f"{key['system']}|{key['value']}", appointment["source"])
        if earlier != appointment["source"]:
            problems.add(
                f"{appointment['source']}.resource.identifier",
                f"the same identifier as {earlier}",
            )


def _map_entries(work: _Import) -> ParsedBundle:
    """Patients first (appointments name them by MRN), then the rest, each in entry order."""
    parsed = _empty()
    for entry in work.entries:
        if entry.resource["resourceType"] == "Patient":
            patient = _patient(entry, work)
            if patient is not None:
                parsed["patients"].append(patient)
    for entry in work.entries:
        kind = entry.resource["resourceType"]
        if kind == "Appointment":
            appointment = _appointment(entry, work)
            if appointment is not None:
                parsed["appointments"].append(appointment)
        elif kind == "Practitioner":
            parsed["practitioners"].append(_practitioner(entry))
        elif kind == "Schedule":
            parsed["schedules"].append(_schedule(entry, work))
        elif kind == "Slot":
            slot = _slot(entry, work)
            if slot is not None:
                parsed["slots"].append(slot)
    return parsed


def _usable(resource: object, path: str, work: _Import) -> bool:
    """A valid FHIR resource of a type we import (problems noted otherwise)."""
    from chalicelib.domain.fhir.validation import resource_problems

    problems = resource_problems(resource, path)
    work.problems.details.extend(problems)
    if problems or not isinstance(resource, Mapping):
        return False
    if resource["resourceType"] not in IMPORTED_TYPES:
        work.problems.add(
            f"{path}.resourceType",
            f"{resource['resourceType']} is not imported (only {', '.join(IMPORTED_TYPES)})",
        )
        return False
    return True


def _check_request(entry: Mapping[str, Any], source: str, problems: Problems) -> None:
    request = entry.get("request")
    if request is None:
        problems.add(f"{source}.request", "each entry of a transaction needs a request")
    elif request.get("method") not in ("POST", "PUT"):
        problems.add(f"{source}.request.method", "only POST and PUT (create or update)")


def _bundle_shell_problems(bundle: object) -> list[FieldError]:
    """The bundle itself, its entries' resources left to be checked one by one."""
    from chalicelib.domain.fhir.validation import resource_problems

    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        return [FieldError("$.resourceType", "must be Bundle")]
    entries = bundle.get("entry")
    shell = dict(bundle)
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, Mapping) else e
            for e in entries
        ]
    problems = resource_problems(shell)
    if bundle.get("type") != "transaction":
        problems.append(FieldError("$.type", "must be transaction"))
    return problems


def parse_transaction_bundle(
    bundle: Mapping[str, Any], mrn_system: str, *, phone_region: str | None = None
) -> ParsedBundle:
    """A hospital's transaction Bundle as our documents. `mrn_system` is the tenant's MRN
    identifier system; with `phone_region` (the tenant's country) phones are checked and given
    in E.164 here, named by their entry. Raises ValidationFailed naming every failing entry and
    field (`$.entry[3].resource.birthDate`)."""
    shell = _bundle_shell_problems(bundle)
    if shell:
        raise ValidationFailed(
            "the bundle cannot be imported: "
            + "; ".join(f"{d.path}: {d.message}" for d in shell[:5]),
            details=shell,
        )
    work = _Import(mrn_system, phone_region)
    for index, raw in enumerate(bundle.get("entry", [])):
        source = f"$.entry[{index}]"
        _check_request(raw, source, work.problems)
        resource = raw.get("resource")
        if resource is None:
            work.problems.add(f"{source}.resource", "each entry needs a resource")
        elif _usable(resource, f"{source}.resource", work):
            full_url = raw.get("fullUrl")
            ref = full_url or f"{resource['resourceType']}/{resource.get('id', index)}"
            work.add(_Entry(source, f"{source}.resource", resource, ref), full_url)
    parsed = _map_entries(work)
    _check_unique(parsed, work.problems)
    _raise_if_any(work.problems, "the bundle")
    return parsed


def parse_ndjson_line(
    line: str, line_number: int, mrn_system: str, *, phone_region: str | None = None
) -> ParsedBundle:
    """One line of a bulk import (one resource), as `parse_transaction_bundle` maps it; paths are
    `line[<line_number>]...`. A blank line gives nothing. An appointment names its patient by a
    conditional reference (`Patient?identifier=<mrn system>|<MRN>`), an identifier of the MRN
    system, or `Patient/<id>` of a patient imported before (`fhir_id`)."""
    source = f"line[{line_number}]"
    if not line.strip():
        return _empty()
    try:
        resource = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{source}: not JSON", details=[FieldError(source, f"is not JSON: {exc.msg}")]
        ) from exc
    work = _Import(mrn_system, phone_region)
    if _usable(resource, source, work):
        ref = f"{resource['resourceType']}/{resource.get('id', line_number)}"
        work.entries.append(_Entry(source, source, resource, ref))
    parsed = _map_entries(work) if work.entries else _empty()
    _raise_if_any(work.problems, source)
    return parsed


class EntryResult(TypedDict):
    """What became of one entry of a transaction (its `response`)."""

    status: str  # "201 Created", "200 OK"
    location: NotRequired[str]  # `Patient/<id>/_history/<version>`
    note: NotRequired[str]  # why nothing was kept, for an entry we only read


def transaction_response(results: list[EntryResult]) -> dict[str, Any]:
    """The `transaction-response` Bundle: one entry per entry sent, in the same order."""
    entries: list[dict[str, Any]] = []
    for result in results:
        response: dict[str, Any] = {"status": result["status"]}
        if "location" in result:
            response["location"] = result["location"]
            response["etag"] = 'W/"' + result["location"].rsplit("/", 1)[1] + '"'
        if "note" in result:
            response["outcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "diagnostics": result["note"],
                    }
                ],
            }
        entries.append({"response": response})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction-response"}
    if entries:  # FHIR allows no empty array
        bundle["entry"] = entries
    return bundle
