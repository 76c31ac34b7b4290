"""Outbound webhooks: a hospital's admins register where its own systems want to hear of
appointment status changes, questionnaire responses and urgent alerts; each event is delivered
as a FHIR resource, signed, retried with backoff, and kept in a dead-letter list staff can replay.

Runtime (`statemachines/webhook.asl.json`):
- an event (a saved change, told through the services' hooks) starts one execution of the
  webhook machine per subscribed webhook, named after the tenant and the delivery (which is
  derived from the webhook and the event's occurrence): an event told twice starts one;
- `deliver` loads the resource by id as it is now (the receiver orders by `meta.versionId`),
  maps it to FHIR, checks it, signs it and POSTs it (adapters/webhooks.py); 408, 429, 5xx and
  no answer raise `Retryable` (the state retries with backoff over about two hours), another
  answer or an inside address comes back `rejected`;
- `dead_letter` puts what never got through in the tenant's dead-letter list; staff replay it
  (one more execution, numbered) once the receiver is fixed.

Delivery is at least once: a receiver drops a second copy by its `CareLoop-Delivery` id.
"""

from __future__ import annotations

import json
import secrets

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.adapters.webhooks import WebhookCaller
from chalicelib.domain import webhooks as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import Conflict, FieldError, NotFound, Retryable, ValidationFailed
from chalicelib.domain.fhir import (
    Resource,
    appointment_to_fhir,
    questionnaire_response_to_fhir,
    validate_resource,
)
from chalicelib.domain.fhir.alerts import urgent_alert_to_fhir
from chalicelib.domain.tenants import is_active
from chalicelib.domain.webhooks import DeliveryRef, WebhookEvent
from chalicelib.observability import count
from chalicelib.services.appointments import present_appointment
from chalicelib.services.patients import decode_cursor, encode_cursor, parse_limit
from chalicelib.services.questionnaires import QuestionnaireService
from chalicelib.settings import get_settings
from chalicelib.store.appointments import AppointmentRepository
from chalicelib.store.messages import StaffTaskRepository
from chalicelib.store.responses import ResponseRepository
from chalicelib.store.tenants import TenantRepository
from chalicelib.store.webhooks import DeliveryRecord, WebhookRepository

ADMINS = frozenset({Role.ADMIN})
MAX_WEBHOOKS = 10  # a hospital's integration engine or two, not a subscriber list


class InvalidResource(RuntimeError):
    """Our own mapping made a resource that is not valid FHIR: a bug of ours, never retried.
    Named by JSON paths only, so no value of the record reaches a log."""


def public(stored: Document) -> rules.Webhook:
    """What the API shows of a webhook: never its secret, only the secret's last characters."""
    return {
        "id": stored["id"],
        "url": stored["url"],
        "events": list(stored["events"]),
        "status": stored["status"],
        "created_at": stored["created_at"],
        "created_by": stored["created_by"],
        "secret_hint": stored["secret_hint"],
    }


def public_dead_letter(record: DeliveryRecord) -> rules.DeadLetter:
    ref = record.ref
    shown: rules.DeadLetter = {
        "id": ref["delivery_id"],
        "webhook_id": ref["webhook_id"],
        "event": ref["event"],
        "resource": f"{ref['resource_type']}/{ref['resource_id']}",
        "status": record.status.value,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "replays": ref["replay"],
    }
    if record.failed_at:
        shown["failed_at"] = record.failed_at
    return shown


class WebhookService:
    def __init__(
        self,
        webhooks: WebhookRepository,
        executions: Executions,
        caller: WebhookCaller,
        tenants: TenantRepository,
        appointments: AppointmentRepository,
        responses: ResponseRepository,
        staff_tasks: StaffTaskRepository,
        questionnaires: QuestionnaireService,
    ) -> None:
        self._webhooks = webhooks
        self._executions = executions
        self._caller = caller
        self._tenants = tenants
        self._appointments = appointments
        self._responses = responses
        self._staff_tasks = staff_tasks
        self._questionnaires = questionnaires

    # -- admins: the webhooks ------------------------------------------------------------------

    def register(self, principal: Principal, body: Document) -> rules.Webhook:
        require_role(principal, ADMINS)
        tenant_id = tenant_of(principal)
        self._check_url(body["url"])
        if len(self._webhooks.all(tenant_id)) >= MAX_WEBHOOKS:
            raise Conflict(f"a hospital has at most {MAX_WEBHOOKS} webhooks", code="conflict")
        doc: Document = {
            "id": "wh-" + secrets.token_hex(8),
            "url": body["url"],
            "events": sorted(set(body["events"])),
            "status": rules.WebhookStatus.ACTIVE.value,
            "created_at": utc_iso(clock.now()),
            "created_by": principal.subject,
            "secret_hint": rules.secret_hint(body["secret"]),
            "secret": body["secret"],
        }
        stored = self._webhooks.create(tenant_id, doc)
        count("WebhookRegistered")
        return public(stored)

    def _check_url(self, url: str) -> None:
        """As written, then as it resolves now (a name that does not resolve yet is taken: every
        delivery resolves and judges it again)."""
        allow_loopback = get_settings().allow_loopback_webhooks
        problems = rules.url_problems(url, allow_loopback_http=allow_loopback)
        if not problems:
            why = self._caller.refused(url, allow_loopback=allow_loopback)
            if why is not None:
                problems = [FieldError("$.url", f"resolves to {why}")]
        if problems:
            raise ValidationFailed(f"$.url: {problems[0].message}", details=problems)

    def registered(self, principal: Principal) -> list[rules.Webhook]:
        require_role(principal, ADMINS)
        found = self._webhooks.all(tenant_of(principal))
        return [public(w) for w in sorted(found, key=lambda w: (w["created_at"], w["id"]))]

    def delete(self, principal: Principal, webhook_id: str) -> None:
        """Nothing more is sent to it; deliveries under way end skipped, and its dead letters
        leave the list (they expire with the rest)."""
        require_role(principal, ADMINS)
        if not (
            is_valid_id(webhook_id) and self._webhooks.delete(tenant_of(principal), webhook_id)
        ):
            raise NotFound("webhook not found")
        count("WebhookDeleted")

    # -- staff: the dead letters ---------------------------------------------------------------

    def dead_letters(
        self, principal: Principal, *, limit: str | None, cursor: str | None
    ) -> tuple[list[rules.DeadLetter], str | None]:
        """Newest first, those of webhooks that still exist."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        after = decode_cursor(cursor) if cursor else None
        found, position = self._webhooks.dead_letters(tenant_id, parse_limit(limit), after)
        existing = {w["id"] for w in self._webhooks.all(tenant_id)}
        shown = [public_dead_letter(r) for r in found if r.ref["webhook_id"] in existing]
        return shown, encode_cursor(position) if position else None

    def replay(self, principal: Principal, delivery_id: str) -> rules.DeadLetter:
        """Deliver a dead letter again, from the start: one more execution, numbered, so that
        a second click starts nothing more."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        record = (
            self._webhooks.delivery(tenant_id, delivery_id) if is_valid_id(delivery_id) else None
        )
        if record is None or record.failed_at is None:
            raise NotFound("dead letter not found")
        if self._webhooks.get(tenant_id, record.ref["webhook_id"]) is None:
            raise NotFound("dead letter not found")  # its webhook was deleted
        if record.status is not rules.DeliveryStatus.DEAD:
            raise Conflict("this delivery is not a dead letter now (replayed or delivered)")
        replay: DeliveryRef = {**record.ref, "replay": record.ref["replay"] + 1}
        # Started first, then marked: a replay whose execution ended meanwhile has already
        # written its own outcome under its number, and the mark (conditional) leaves it alone.
        self._start(replay)
        self._webhooks.replaying(tenant_id, delivery_id, record.ref["replay"])
        count("WebhookReplayed")
        shown = public_dead_letter(record)
        shown["status"] = rules.DeliveryStatus.PENDING.value
        shown["replays"] = replay["replay"]
        return shown

    # -- events (the services' hooks) -----------------------------------------------------------

    def appointment_changed(self, tenant_id: str, appointment: Document) -> None:
        """A change of status, of the patient's answer or of the time (one per version)."""
        self._notify(
            tenant_id,
            WebhookEvent.APPOINTMENT_STATUS,
            appointment["id"],
            appointment["patient_id"],
            occurrence=f"appointment#{appointment['id']}#v{appointment.get('version', 0)}",
        )

    def response_submitted(self, tenant_id: str, response: Document) -> None:
        self._notify(
            tenant_id,
            WebhookEvent.QUESTIONNAIRE_RESPONSE,
            response["id"],
            response["patient_id"],
            occurrence=f"response#{response['id']}",
        )

    def urgent_alert(self, tenant_id: str, response: Document) -> None:
        """An urgent answer alerted staff: the alert is the staff task it opened."""
        task_id = f"{response['id']}-urgent"
        self._notify(
            tenant_id,
            WebhookEvent.URGENT_ALERT,
            task_id,
            response["patient_id"],
            occurrence=f"alert#{task_id}",
        )

    def _notify(
        self,
        tenant_id: str,
        event: WebhookEvent,
        resource_id: str,
        patient_id: str,
        *,
        occurrence: str,
    ) -> None:
        for webhook in self._webhooks.all(tenant_id):
            if not rules.subscribed(webhook, event):
                continue
            self._start(
                {
                    "tenant_id": tenant_id,
                    "webhook_id": webhook["id"],
                    "delivery_id": rules.delivery_id(tenant_id, webhook["id"], occurrence),
                    "event": event.value,
                    "resource_type": rules.RESOURCE_OF_EVENT[event],
                    "resource_id": resource_id,
                    "patient_id": patient_id,
                    "replay": 0,
                }
            )
            count("WebhookEventStarted")

    def _start(self, ref: DeliveryRef) -> None:
        self._executions.start(
            get_settings().webhook_delivery_arn, rules.execution_name(ref), dict(ref)
        )

    # -- the webhook state machine --------------------------------------------------------------

    def deliver(self, event: Document) -> rules.DeliveryOutcome:
        ref = rules.delivery_ref(event)
        tenant_id = ref["tenant_id"]
        tenant = self._tenants.get(tenant_id)
        if tenant is None or not is_active(tenant):
            return {"outcome": "skipped", "why": "the hospital was deactivated"}
        webhook = self._webhooks.get_with_secret(tenant_id, ref["webhook_id"])
        if webhook is None or webhook["status"] != rules.WebhookStatus.ACTIVE:
            return {"outcome": "skipped", "why": "the webhook was removed"}
        record = self._webhooks.delivery(tenant_id, ref["delivery_id"])
        if record is not None and record.status is rules.DeliveryStatus.DELIVERED:
            return {"outcome": "skipped", "why": "delivered already"}  # a replayed task
        if record is not None and record.ref["replay"] > ref["replay"]:
            return {"outcome": "skipped", "why": "superseded by a replay"}
        resource = self._resource(ref, tenant)
        if resource is None:
            return {"outcome": "skipped", "why": "the record is gone"}
        body = json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()
        now = clock.now()
        headers = rules.signed_headers(
            webhook["secret"], int(now.timestamp()), body, ref["event"], ref["delivery_id"]
        )
        attempt = self._caller.post(
            webhook["url"], body, headers, allow_loopback=get_settings().allow_loopback_webhooks
        )
        verdict = rules.verdict(attempt)
        summary = rules.attempt_summary(attempt)
        self._webhooks.attempted(
            ref, delivered=verdict is rules.Verdict.DELIVERED, summary=summary, at=utc_iso(now)
        )
        count(f"WebhookAttempt{verdict.value.capitalize()}")
        if verdict is rules.Verdict.RETRY:
            raise Retryable(summary)
        return {"outcome": verdict.value, "why": summary}

    def _resource(self, ref: DeliveryRef, tenant: Document) -> Resource | None:
        """The event's resource as FHIR, as it is now, checked; None once it is gone (erased)."""
        tenant_id, resource_id = ref["tenant_id"], ref["resource_id"]
        resource: Resource | None = None
        if ref["resource_type"] == "Appointment":
            appointment = self._appointments.get(tenant_id, resource_id)
            if appointment is not None:
                resource = appointment_to_fhir(present_appointment(appointment, tenant))
        elif ref["resource_type"] == "QuestionnaireResponse":
            response = self._responses.get(tenant_id, ref["patient_id"], resource_id)
            if response is not None and response["status"] == "completed":
                definition = self._questionnaires.definition(tenant_id, response["questionnaire"])
                resource = questionnaire_response_to_fhir(response, definition)
        elif ref["resource_type"] == "Communication":
            task = self._staff_tasks.get(tenant_id, resource_id)
            if task is not None:
                resource = urgent_alert_to_fhir(task)
        if resource is not None:
            self._check(resource)
        return resource

    @staticmethod
    def _check(resource: Resource) -> None:
        try:
            validate_resource(resource)
        except ValidationFailed as failure:
            # Paths only, and not chained: the models' messages may quote the record's values.
            paths = ", ".join(d.path for d in failure.details[:10])
            raise InvalidResource(f"a webhook's resource is not valid FHIR at {paths}") from None

    def dead_letter(self, event: Document) -> rules.DeadLettered:
        """Every retry failed, or the receiver refused: into the list staff replay from."""
        ref, error = rules.delivery_ref(event), str(event.get("error", "unknown"))
        if self._webhooks.get(ref["tenant_id"], ref["webhook_id"]) is None:
            return {"dead": False}  # deleted meanwhile: nobody wants it any more
        dead = self._webhooks.dead(ref, _error_text(error), utc_iso(clock.now()))
        if dead:
            count("WebhookDeadLettered")
        return {"dead": dead}


def _error_text(error: str) -> str:
    """What a dead letter says when no attempt was recorded (it failed before calling)."""
    if error == "WebhookRejected":
        return "the receiver refused it"
    if error in ("Retryable", "States.Timeout", "Sandbox.Timedout"):
        return "no attempt succeeded"
    return f"the delivery failed before calling ({error})"
