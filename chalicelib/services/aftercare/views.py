"""What staff and patients read of care journeys: a patient's aftercare journeys and recalls,
and what a booking link (a re-check's or a recall's) asks the patient to book.
"""

from __future__ import annotations

from chalicelib.domain import aftercare, recall
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id
from chalicelib.domain.errors import NotFound
from chalicelib.services.care_config import CareConfigService
from chalicelib.settings import get_settings
from chalicelib.store.care import CareRepository
from chalicelib.store.patients import PatientRepository


def booking_link(ref: str) -> str:
    """An opaque link: which department the patient is asked back to (oncology, say) is health
    information and stays out of texts; the app resolves it (`CareJourneyViews.invitation`)."""
    return f"{get_settings().app_link_base}/book?ref={ref}"


class CareJourneyViews:
    def __init__(
        self, store: CareRepository, patients: PatientRepository, config: CareConfigService
    ) -> None:
        self._store = store
        self._patients = patients
        self._config = config

    def invitation(self, principal: Principal, ref: str) -> Document:
        """What a booking link asks the patient to book (their own invitations only)."""
        require_role(principal, {Role.PATIENT})
        tenant_id, patient_id = tenant_of(principal), str(principal.patient_id)
        for record in self._store.for_patient(tenant_id, patient_id):
            if record.get("kind") == aftercare.KIND and record["id"] == ref:
                recheck = record["plan"].get("recheck", {})
                department = recheck.get("department") or record["department"]
                wanted = recheck.get("appointment_type")
            elif record.get("kind") == recall.KIND and record.get("ref") == ref:
                rule = self._config.rule(tenant_id, record["rule_id"]) or {"book": {}}
                department = rule["book"].get("department", "")
                wanted = rule["book"].get("appointment_type")
            else:
                continue
            found: Document = {"ref": ref, "department": department}
            if wanted:
                found["appointment_type"] = wanted
            return found
        raise NotFound("invitation not found")

    def for_patient(self, principal: Principal, patient_id: str) -> list[Document]:
        """A patient's aftercare journeys (with their steps) and recalls, for clinic staff."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        if not is_valid_id(patient_id) or self._patients.get(tenant_id, patient_id) is None:
            raise NotFound("patient not found")
        return self._store.for_patient(tenant_id, patient_id)
