"""An urgent alert as FHIR: what a hospital's system receives when a patient's answer alerted
staff (the outbound webhooks' `alert.urgent`). Pure mapping, no I/O.

The alert is the staff task it opened (`<response>-urgent`, kind `urgent_answer`), said as an
urgent `Communication` of category `alert` about the patient and the response that raised it:
ids and times only, the answers stay in the QuestionnaireResponse.
"""

from __future__ import annotations

from chalicelib.domain.common import Document
from chalicelib.domain.fhir.common import Resource, concept, reference, text_concept, with_meta

COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
# An open task: the alert stands; a closed one: staff have acted on it.
ALERT_STATUS = {"open": "in-progress", "closed": "completed"}


def urgent_alert_to_fhir(task: Document) -> Resource:
    resource: Resource = with_meta(
        {"resourceType": "Communication", "id": task["id"]},
        {k: task[k] for k in ("version",) if k in task},
    )
    about = (
        [reference("QuestionnaireResponse", task["response_id"])] if "response_id" in task else []
    )
    if task.get("journey_id"):
        about.append(reference("CarePlan", task["journey_id"]))
    resource["status"] = ALERT_STATUS.get(task.get("status", "open"), "in-progress")
    resource["category"] = [concept(COMMUNICATION_CATEGORY, "alert", "Alert")]
    resource["priority"] = "urgent"
    resource["subject"] = reference("Patient", task["patient_id"])
    resource["topic"] = text_concept("urgent_answer")
    if about:
        resource["about"] = about
    resource["sent"] = task["created_at"]
    resource["payload"] = [
        {"contentString": "A patient's answer to a questionnaire needs a clinician's attention."}
    ]
    return resource
