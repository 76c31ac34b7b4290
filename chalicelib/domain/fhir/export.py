"""Our stored records as FHIR resources (plain JSON), and a patient's export as a Bundle.

Ids are ours (`Patient/<id>`, `Appointment/<id>`, ...); a resource we derive from part of a record
(a channel's consent, a flag, a message, a recall) gets an id hashed from what identifies it, so
the same record always exports the same resource. Only what our records hold is said; a field
with no FHIR home is left out unless a reader needs it (a time zone), then it goes in an
extension of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.domain.common import Document
from chalicelib.domain.fhir.common import (
    CODE_SYSTEM_BASE,
    DEPARTMENT_SYSTEM,
    LANGUAGE_SYSTEM,
    STRUCTURE_DEFINITION_BASE,
    TIME_ZONE_EXTENSION,
    Resource,
    Value,
    coding,
    concept,
    derived_id,
    option_code,
    reference,
    text_concept,
    typed_value,
    with_meta,
)
from chalicelib.domain.fhir.questionnaires import questionnaire_to_fhir
from chalicelib.domain.hospital_appointments import HOSPITAL_SCHEDULE

CHANNEL_EXTENSION = STRUCTURE_DEFINITION_BASE + "contact-channel"
RISK_EXTENSION = STRUCTURE_DEFINITION_BASE + "questionnaire-risk"

V2_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_APPOINTMENT_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0276"
V3_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
CANCELLATION_REASON = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
LOINC = "http://loinc.org"

APPOINTMENT_TYPE_SYSTEM = CODE_SYSTEM_BASE + "appointment-type"
JOURNEY_KIND_SYSTEM = CODE_SYSTEM_BASE + "journey-kind"
JOURNEY_STEP_SYSTEM = CODE_SYSTEM_BASE + "journey-step"
RISK_FLAG_SYSTEM = CODE_SYSTEM_BASE + "risk-flag"
ALLERGY_TAG_SYSTEM = CODE_SYSTEM_BASE + "allergy-tag"
DELIVERY_KEY_SYSTEM = "https://careloop.example/fhir/NamingSystem/delivery-key"

# Our appointment statuses are FHIR's own codes (chalicelib/domain/appointments.py); the table
# says so, and fails loudly if one is ever added without a mapping.
APPOINTMENT_STATUS = {
    "proposed": "proposed",
    "booked": "booked",
    "arrived": "arrived",
    "fulfilled": "fulfilled",
    "cancelled": "cancelled",
    "noshow": "noshow",
}
# The patient's answer to the invitation as their participation. A reschedule request keeps the
# appointment booked while staff call back: for this time, the patient declined.
PARTICIPATION_STATUS = {
    "pending": "needs-action",
    "confirmed": "accepted",
    "declined": "declined",
    "reschedule_requested": "declined",
}
# v2 table 0276 has codes for two of our types; the others are said by our own code system only.
V2_APPOINTMENT_TYPES = {"follow_up": "FOLLOWUP", "check_up": "CHECKUP"}
GUARDIAN_ROLES = {
    "parent": "PRN",
    "legal_guardian": "GUARD",
    "spouse": "SPS",
    "child": "CHILD",
    "relative": "FAMMEMB",
}
# A message's life as the event-status FHIR's Communication uses.
COMMUNICATION_STATUS = {
    "sending": "in-progress",
    "failed": "on-hold",  # tried again
    "sent": "completed",
    "delivered": "completed",
    "bounced": "stopped",  # left, never arrived
    "suppressed": "not-done",
    "skipped": "not-done",
    "unknown": "unknown",
}
JOURNEY_STATUS = {
    "running": "active",
    "completed": "completed",
    "scheduled": "active",  # a recall waiting for its due date
    "invited": "active",
    "unconverted": "active",  # never at rest: the next cycle is written with it
    "converted": "completed",
    "handed_over": "on-hold",  # staff phone the patient
    "cancelled": "revoked",
    "stopped": "revoked",
}
STEP_STATUS = {
    "planned": "scheduled",
    "awaiting_answer": "in-progress",
    "awaiting_booking": "in-progress",
    "answered": "completed",
    "answered_late": "completed",
    "booked": "completed",
    "done": "completed",
    "unanswered": "stopped",  # handed over to staff
    "not_booked": "stopped",
    "failed": "stopped",
}
RECALL_CYCLE_STATUS = {
    "converted": "completed",
    "visited": "completed",
    "unconverted": "stopped",
    "cancelled": "cancelled",
}
OPEN_RECALL_STATUS = {"scheduled": "scheduled", "invited": "in-progress"}


# -- Patient ------------------------------------------------------------------------------------


def _names(name: Mapping[str, str]) -> list[Resource]:
    official: Resource = {"use": "official", "given": [name["given"]]}
    if "family" in name:
        official["family"] = name["family"]
    names = [official]
    if "preferred" in name:  # the name the patient goes by
        names.append({"use": "usual", "given": [name["preferred"]]})
    return names


def _telecom(holder: Mapping[str, Any]) -> list[Resource]:
    """Phone and email, ranked in the order of the preferred channels."""
    channels: Sequence[str] = holder.get("preferred_channels", [])
    points: list[Resource] = []
    for field, system, channel in (("phone", "phone", "sms"), ("email", "email", "email")):
        if not holder.get(field):
            continue
        point: Resource = {"system": system, "value": holder[field]}
        if system == "phone":
            point["use"] = "mobile"  # texted: a mobile
        if channel in channels:
            point["rank"] = channels.index(channel) + 1
        points.append(point)
    return points


def _guardian_contact(guardian: Mapping[str, Any]) -> Resource:
    relationship = guardian["relationship"]
    role = GUARDIAN_ROLES.get(relationship)
    contact: Resource = {
        "relationship": [
            concept(V3_ROLE_CODE, role, relationship) if role else text_concept(relationship)
        ],
        "name": {"text": guardian["name"]},
    }
    telecom = _telecom(guardian)
    if telecom:
        contact["telecom"] = telecom
    return contact


def patient_to_fhir(patient: Document, *, mrn_system: str) -> Resource:
    """A patient; the MRN as an identifier of the tenant's `mrn_system`."""
    resource: Resource = with_meta({"resourceType": "Patient", "id": patient["id"]}, patient)
    if patient.get("time_zone"):
        resource["extension"] = [{"url": TIME_ZONE_EXTENSION, "valueCode": patient["time_zone"]}]
    mrn = patient.get("external_ids", {}).get("mrn")
    if mrn:
        resource["identifier"] = [
            {
                "use": "usual",
                "type": concept(V2_IDENTIFIER_TYPE, "MR", "Medical record number"),
                "system": mrn_system,
                "value": mrn,
            }
        ]
    resource["active"] = True
    resource["name"] = _names(patient["name"])
    telecom = _telecom(patient)
    if telecom:
        resource["telecom"] = telecom
    if "sex" in patient:
        resource["gender"] = patient["sex"]  # the same four codes as FHIR's AdministrativeGender
    if "birth_date" in patient:
        resource["birthDate"] = patient["birth_date"]
    if patient.get("guardian"):
        resource["contact"] = [_guardian_contact(patient["guardian"])]
    if patient.get("language"):
        language = patient["language"]
        resource["communication"] = [
            {
                "language": {"coding": [coding(LANGUAGE_SYSTEM, language)], "text": language},
                "preferred": True,
            }
        ]
    return resource


def clinician_to_fhir(clinician: Document) -> Resource:
    """A clinician as the Practitioner appointments refer to."""
    resource: Resource = with_meta(
        {"resourceType": "Practitioner", "id": clinician["id"]}, clinician
    )
    resource["active"] = True
    resource["name"] = [{"text": clinician["name"]}]
    if clinician.get("title"):
        resource["qualification"] = [{"code": text_concept(clinician["title"])}]
    return resource


# -- Consent and flags --------------------------------------------------------------------------


def _consent(
    patient: Document, whose: str, channel: str, record: Mapping[str, Any], performer: Resource
) -> Resource:
    granted = record["status"] == "granted"
    resource: Resource = {
        "resourceType": "Consent",
        "id": derived_id("consent", patient["id"], whose, channel),
        # Which channel the consent is for has no home in FHIR's Consent, and is its point.
        "extension": [{"url": CHANNEL_EXTENSION, "valueCode": channel}],
        "status": "active",  # the patient's decision in force, whichever way it went
        "scope": concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        "category": [concept(LOINC, "59284-0", "Patient Consent")],
        "patient": reference("Patient", patient["id"]),
        "performer": [performer],
        "policyRule": concept(V3_ACT_CODE, "OPTIN" if granted else "OPTOUT"),
        "provision": {"type": "permit" if granted else "deny"},
    }
    if "at" in record:
        resource["dateTime"] = record["at"]
    return resource


def patient_consents(patient: Document) -> list[Resource]:
    """One Consent per channel the patient (or their guardian, for the guardian's contacts) said
    yes or no to: a grant permits, a withdrawal denies."""
    consents = [
        _consent(patient, "patient", channel, record, reference("Patient", patient["id"]))
        for channel, record in sorted(patient.get("consent", {}).items())
    ]
    guardian = patient.get("guardian") or {}
    consents += [
        _consent(patient, "guardian", channel, record, {"display": guardian["name"]})
        for channel, record in sorted(guardian.get("consent", {}).items())
    ]
    return consents


def _flag(
    patient_id: str, flag_id: str, category: str, code: Resource, status: str = "active"
) -> Resource:
    return {
        "resourceType": "Flag",
        "id": flag_id,
        "status": status,
        "category": [concept(FLAG_CATEGORY, category)],
        "code": code,
        "subject": reference("Patient", patient_id),
    }


def _opt_out_text(opt_out: Mapping[str, Any]) -> str:
    channel = "SMS" if opt_out["channel"] == "sms" else "email"
    whose = "" if opt_out["whose"] == "patient" else "the guardian's "
    how = {
        "sms_reply": f"texted {opt_out.get('keyword', 'STOP')}",
        "bounce": "bounced",
        "complaint": "complained",
    }.get(opt_out.get("how", ""), "opted out")
    return f"No {channel} to {whose}{opt_out['address']} ({how})"


def _opt_out_flag(patient_id: str, opt_out: Mapping[str, Any]) -> Resource:
    flag = _flag(
        patient_id,
        derived_id("opt-out", patient_id, opt_out["whose"], opt_out["channel"], opt_out["address"]),
        "admin",
        text_concept(_opt_out_text(opt_out)),
        "active" if opt_out["opted_out"] else "inactive",
    )
    period = {"start": opt_out["at"]}
    if not opt_out["opted_out"] and "lifted_at" in opt_out:
        period["end"] = opt_out["lifted_at"]
    flag["period"] = period
    return flag


def patient_flags(patient: Document) -> list[Resource]:
    """Flags a clinician should see: the patient's risk flags and allergy tags, and each contact
    that opted out of messages (inactive once lifted). Condition tags are not warnings: they
    stay out (their FHIR home would be Condition)."""
    patient_id = patient["id"]
    medical = patient.get("medical", {})
    flags = [
        _flag(
            patient_id,
            derived_id("risk", patient_id, tag),
            "clinical",
            concept(RISK_FLAG_SYSTEM, tag),
        )
        for tag in medical.get("risk_flags", [])
    ]
    flags += [
        _flag(
            patient_id,
            derived_id("allergy", patient_id, tag),
            "clinical",
            concept(ALLERGY_TAG_SYSTEM, tag, f"Allergy: {tag}"),
        )
        for tag in medical.get("allergies", [])
    ]
    # A contact that never opted out has no `at`, and nothing to flag.
    flags += [_opt_out_flag(patient_id, o) for o in patient.get("opt_outs", []) if "at" in o]
    return flags


# -- Appointments -------------------------------------------------------------------------------


def _appointment_type(our_type: str) -> Resource:
    codings = [coding(APPOINTMENT_TYPE_SYSTEM, our_type)]
    if our_type in V2_APPOINTMENT_TYPES:
        codings.append(coding(V2_APPOINTMENT_TYPE, V2_APPOINTMENT_TYPES[our_type]))
    return {"coding": codings, "text": our_type.replace("_", " ")}


def _cancellation(cancelled_by: str) -> Resource:
    if cancelled_by == "patient":
        return concept(CANCELLATION_REASON, "pat", "cancelled by the patient")
    return text_concept(f"cancelled by {cancelled_by}")


def _clinician_actor(appointment: Document) -> Resource:
    """Our clinician by reference; the hospital system's (an imported appointment outside our
    schedules, no Practitioner of ours) by the name its system gave."""
    if appointment["clinician"] == HOSPITAL_SCHEDULE:
        return {
            "type": "Practitioner",
            "display": appointment.get("clinician_name") or "a clinician of the hospital",
        }
    return reference("Practitioner", appointment["clinician"])


def appointment_to_fhir(appointment: Document) -> Resource:
    """An appointment: the patient (answer as participation), the clinician and the place as
    participants; the hospital's time zone as an extension (the times are UTC instants)."""
    resource: Resource = with_meta(
        {"resourceType": "Appointment", "id": appointment["id"]}, appointment
    )
    tenant_zone = appointment.get("local", {}).get("tenant", {}).get("time_zone")
    if tenant_zone:
        resource["extension"] = [{"url": TIME_ZONE_EXTENSION, "valueCode": tenant_zone}]
    if appointment.get("external_id"):  # the hospital's own number, for one its system keeps
        resource["identifier"] = [dict(appointment["external_id"])]
    resource["status"] = APPOINTMENT_STATUS[appointment["status"]]
    if appointment["status"] == "cancelled" and "cancelled_by" in appointment:
        resource["cancelationReason"] = _cancellation(appointment["cancelled_by"])
    resource["serviceType"] = [concept(DEPARTMENT_SYSTEM, appointment["department"])]
    resource["appointmentType"] = _appointment_type(appointment["type"])
    resource["start"] = appointment["start"]
    resource["end"] = appointment["end"]
    if "created_at" in appointment:
        resource["created"] = appointment["created_at"]
    if appointment.get("notes_for_patient"):
        resource["patientInstruction"] = appointment["notes_for_patient"]
    resource["participant"] = [
        {
            "actor": reference("Patient", appointment["patient_id"]),
            "required": "required",
            "status": PARTICIPATION_STATUS[appointment["patient_response"]],
        },
        {"actor": _clinician_actor(appointment), "required": "required", "status": "accepted"},
    ]
    if appointment.get("location"):
        resource["participant"].append(
            {
                "actor": {"type": "Location", "display": appointment["location"]},
                "required": "information-only",
                "status": "accepted",
            }
        )
    return resource


# -- Questionnaire responses --------------------------------------------------------------------


def _answer_value(item: Mapping[str, Any] | None, value: Value) -> Resource:
    """An answer as FHIR's typed value: by the question's type when the questionnaire is known,
    else by the JSON type of the answer."""
    kind = item["type"] if item else None
    if kind == "choice":
        return {"valueCoding": {"code": option_code(value)}}
    if kind == "date":
        return {"valueDate": value}
    if kind == "decimal" and not isinstance(value, bool):
        return {"valueDecimal": value}
    return typed_value("value", value)


def questionnaire_response_to_fhir(
    response: Document, questionnaire: Document | None = None
) -> Resource:
    """A response, answers in the questionnaire's item order (by linkId without it), the risk its
    scoring gave as an extension, and the aftercare journey it answers as `basedOn`."""
    resource: Resource = with_meta(
        {"resourceType": "QuestionnaireResponse", "id": response["id"]}, response
    )
    if "risk" in response:
        resource["extension"] = [{"url": RISK_EXTENSION, "valueCode": response["risk"]}]
    if "journey" in response:
        resource["basedOn"] = [reference("CarePlan", response["journey"]["id"])]
    resource["questionnaire"] = f"Questionnaire/{response['questionnaire']}"
    resource["status"] = response["status"]  # in-progress | completed: FHIR's codes
    resource["subject"] = reference("Patient", response["patient_id"])
    if "authored_at" in response:
        resource["authored"] = response["authored_at"]
    items = {i["linkId"]: i for i in (questionnaire or {}).get("items", [])}
    answers: Mapping[str, Any] = response["answers"]
    order = [link for link in items if link in answers] + sorted(set(answers) - set(items))
    if order:
        resource["item"] = [
            {"linkId": link, "answer": [_answer_value(items.get(link), answers[link])]}
            for link in order
        ]
    return resource


# -- Messages -----------------------------------------------------------------------------------


def _medium(channel: str) -> Resource:
    if channel == "email":
        return concept(V3_PARTICIPATION_MODE, "EMAILWRIT", "email")
    return text_concept({"sms": "SMS", "push": "app notification"}.get(channel, channel))


def _status_reason(delivery: Mapping[str, Any]) -> str | None:
    if delivery["status"] == "bounced":
        return "bounced"
    if delivery.get("why"):
        return str(delivery["why"])
    if delivery.get("reasons"):
        return "; ".join(delivery["reasons"])
    return None


def _based_on(delivery: Mapping[str, Any]) -> list[dict[str, str]]:
    if "journey_id" in delivery:
        return [reference("CarePlan", delivery["journey_id"])]
    if "recall_rule" in delivery:
        return [reference("CarePlan", recall_id(delivery["patient_id"], delivery["recall_rule"]))]
    return []


def delivery_to_communication(delivery: Document) -> Resource:
    """One message of a journey or campaign. Its text is not stored (no PHI kept in the log):
    what was sent, when, how and about what is."""
    resource: Resource = {
        "resourceType": "Communication",
        "id": derived_id("msg", delivery["patient_id"], delivery["key"]),
        "identifier": [{"system": DELIVERY_KEY_SYSTEM, "value": delivery["key"]}],
    }
    based_on = _based_on(delivery)
    if based_on:
        resource["basedOn"] = based_on
    resource["status"] = COMMUNICATION_STATUS[delivery["status"]]
    reason = _status_reason(delivery)
    if reason:
        resource["statusReason"] = text_concept(reason)
    if delivery.get("channel"):
        resource["medium"] = [_medium(delivery["channel"])]
    resource["subject"] = reference("Patient", delivery["patient_id"])
    resource["topic"] = text_concept(delivery["step"])
    if "appointment_id" in delivery:
        resource["about"] = [reference("Appointment", delivery["appointment_id"])]
    if "sent_at" in delivery:
        resource["sent"] = delivery["sent_at"]
    if "delivered_at" in delivery and delivery["status"] != "bounced":
        resource["received"] = delivery["delivered_at"]
    if delivery.get("to_guardian"):
        resource["recipient"] = [{"type": "RelatedPerson", "display": "the patient's guardian"}]
    else:
        resource["recipient"] = [reference("Patient", delivery["patient_id"])]
    return resource


# -- Care journeys and recalls ------------------------------------------------------------------


def recall_id(patient_id: str, rule_id: str) -> str:
    """A recall is stored under its rule's id, per patient: its CarePlan's id joins the two."""
    return derived_id("recall", patient_id, rule_id)


def _step_activity(step: Mapping[str, Any]) -> Resource:
    detail: Resource = {
        "code": concept(JOURNEY_STEP_SYSTEM, step["kind"]),
        "status": STEP_STATUS[step["status"]],
        "scheduledPeriod": {"start": step["at"]},
    }
    if step.get("questionnaire"):
        detail["instantiatesCanonical"] = [f"Questionnaire/{step['questionnaire']}"]
    activity: Resource = {"detail": detail}
    if step.get("response_id") and step["status"] in ("answered", "answered_late"):
        activity["outcomeReference"] = [reference("QuestionnaireResponse", step["response_id"])]
    return activity


def _cycle_activity(due_date: str, status: str, appointment_id: str | None = None) -> Resource:
    activity: Resource = {
        "detail": {
            "code": concept(JOURNEY_STEP_SYSTEM, "recall"),
            "status": status,
            "scheduledPeriod": {"start": due_date},
        }
    }
    if appointment_id:
        activity["outcomeReference"] = [reference("Appointment", appointment_id)]
    return activity


def _recall_activities(recall: Mapping[str, Any]) -> list[Resource]:
    """Every settled cycle, then the open one (the recall's own status and due date)."""
    activities = [
        _cycle_activity(
            cycle["due_date"], RECALL_CYCLE_STATUS[cycle["outcome"]], cycle.get("appointment_id")
        )
        for cycle in recall.get("cycles", [])
    ]
    if recall["status"] in OPEN_RECALL_STATUS and "due_date" in recall:
        activities.append(_cycle_activity(recall["due_date"], OPEN_RECALL_STATUS[recall["status"]]))
    return activities


def care_journey_to_fhir(journey: Document) -> Resource:
    """An aftercare journey (its steps as activities) or a recall (its cycles) as a CarePlan, as
    `GET /patients/{id}/care-journeys` lists them."""
    is_recall = journey["kind"] == "recall"
    plan_id = recall_id(journey["patient_id"], journey["rule_id"]) if is_recall else journey["id"]
    resource: Resource = with_meta({"resourceType": "CarePlan", "id": plan_id}, journey)
    resource["status"] = JOURNEY_STATUS[journey["status"]]
    resource["intent"] = "plan"
    resource["category"] = [concept(JOURNEY_KIND_SYSTEM, journey["kind"])]
    title = journey.get("plan", {}).get("name")
    if title:
        resource["title"] = title
    resource["subject"] = reference("Patient", journey["patient_id"])
    if journey.get("started_at"):
        resource["period"] = {"start": journey["started_at"]}
    if journey.get("created_at") or journey.get("started_at"):
        resource["created"] = journey.get("created_at") or journey["started_at"]
    activities = (
        _recall_activities(journey)
        if is_recall
        else [_step_activity(step) for step in journey.get("steps", [])]
    )
    if activities:
        resource["activity"] = activities
    return resource


# -- A patient's export -------------------------------------------------------------------------


def patient_export_bundle(
    patient: Document,
    *,
    mrn_system: str,
    base_url: str,
    timestamp: str,
    appointments: Iterable[Document] = (),
    clinicians: Iterable[Document] = (),
    responses: Iterable[Document] = (),
    questionnaires: Mapping[str, Document] | None = None,
    deliveries: Iterable[Document] = (),
    journeys: Iterable[Document] = (),
    default_language: str = "zh-CN",
) -> Resource:
    """Everything we hold on a patient as a `collection` Bundle: each entry's fullUrl is its
    address under `base_url` (the tenant's FHIR base), so `Patient/<id>` references resolve
    within the bundle. `questionnaires` (by id) type the answers and are included."""
    questionnaires = questionnaires or {}
    resources = [
        patient_to_fhir(patient, mrn_system=mrn_system),
        *patient_consents(patient),
        *patient_flags(patient),
        *(clinician_to_fhir(c) for c in clinicians),
        *(appointment_to_fhir(a) for a in appointments),
        *(questionnaire_to_fhir(q, default_language) for q in questionnaires.values()),
        *(
            questionnaire_response_to_fhir(r, questionnaires.get(r["questionnaire"]))
            for r in responses
        ),
        *(care_journey_to_fhir(j) for j in journeys),
        *(delivery_to_communication(d) for d in deliveries),
    ]
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": timestamp,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


def searchset_bundle(
    resources: Sequence[Resource], *, base_url: str, self_url: str, timestamp: str
) -> Resource:
    """The answer to a search: every match at once (a search names one patient, whose records
    are few enough not to page), each entry's fullUrl under `base_url`, the search itself as
    the `self` link. No match gives no `entry` (FHIR allows no empty array)."""
    base = base_url.rstrip("/")
    bundle: Resource = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": timestamp,
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
    }
    if resources:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return bundle
