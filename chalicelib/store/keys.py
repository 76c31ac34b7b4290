"""Key builders. Every partition key starts with the tenant, so one tenant's items can never be
addressed with another tenant's keys."""

from __future__ import annotations


def tenant_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}"


def patient_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}"


def patients_listing_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#PATIENTS"


def phone_lookup_pk(tenant_id: str, e164: str) -> str:
    return f"T#{tenant_id}#PHONE#{e164}"


def mrn_claim_pk(tenant_id: str, mrn: str) -> str:
    return f"T#{tenant_id}#MRN#{mrn}"


def config_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#CONFIG"


def slots_pk(tenant_id: str, department: str) -> str:
    return f"T#{tenant_id}#SLOTS#{department}"


def appointment_pk(tenant_id: str, appointment_id: str) -> str:
    return f"T#{tenant_id}#A#{appointment_id}"


def patient_appointments_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}#APPTS"


def department_day_pk(tenant_id: str, department: str, local_date: str) -> str:
    return f"T#{tenant_id}#DAY#{department}#{local_date}"


def idempotency_pk(scope: str) -> str:
    return f"{scope}#IDEM"


TENANT_SK = "TENANT"
APPOINTMENT_SK = "APPT"
IDEMPOTENCY_SK = "REQUEST"
PROFILE_SK = "PROFILE"
CLAIM_SK = "CLAIM"
SEND_LOCK_SK = "SENDING"
JOURNEY_SYNC_SK = "JOURNEYSYNC"
