"""Campaign use cases: staff start a campaign on a segment and watch its progress; the driver
state machine starts one outreach execution per patient at the tenant's rate; each outreach
sends once.

Runtime (see `statemachines/campaign.asl.json` and `outreach.asl.json`):
- the tenant's rate counts campaign messages leaving, in a per-minute window shared by all its
  campaigns (journey messages such as reminders are not counted and never slowed);
- the driver's `batch` waits out the tenant's quiet hours, then starts as many patients as the
  current window has room for: it pages that many members from where it stopped, records each as
  started (once) and starts their outreach (named `<campaign>-<patient>`: a replay is a no-op),
  then waits for the next minute, until the segment is exhausted;
- an outreach's `send` waits out the patient's quiet hours, takes one place in the window (or,
  the window full, waits for the next: a message held back by quiet hours or retries never leaves
  beside a full minute), delivers with key `campaign#<campaign>#<patient>` (never twice), gives
  the place back when nothing left, and records the outcome once (sent / suppressed / failed).
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.adapters.executions import Executions
from chalicelib.domain import campaigns as rules
from chalicelib.domain import outreach_effect
from chalicelib.domain.access import CLINIC_ROLES, Principal, require_role, tenant_of
from chalicelib.domain.common import Document, is_valid_id, utc_iso
from chalicelib.domain.errors import NotFound
from chalicelib.domain.segments import GUARDIANS_OF_MINORS
from chalicelib.domain.step_results import CampaignBatch, DriverContinued, OutreachSent
from chalicelib.domain.tenants import out_of_quiet_hours
from chalicelib.observability import count
from chalicelib.services.deliveries import Deliveries, Message, patient_fields
from chalicelib.services.patients import decode_cursor, encode_cursor, parse_limit
from chalicelib.services.segments import SegmentService
from chalicelib.services.tenants import TenantService
from chalicelib.settings import get_settings
from chalicelib.store.analytics import AnalyticsRepository
from chalicelib.store.campaigns import CampaignRepository
from chalicelib.store.patients import PatientRepository

PUBLIC = (
    "id",
    "name",
    "segment",
    "message",
    "variants",
    "control_group",
    "goal",
    "created_at",
    "created_by",
)


def new_campaign_id() -> str:
    return "c-" + secrets.token_hex(8)


def public(stored: Document) -> Document:
    """What the API shows of a campaign: its definition, progress and status."""
    progress = stored["progress"]
    shown = {k: stored[k] for k in PUBLIC if k in stored}
    shown["progress"] = progress
    shown["status"] = rules.status(progress, stored.get("exhausted_at") is not None)
    return shown


def effect(campaign: Document, counted: dict[str, dict[str, int]]) -> Document:
    """The campaign's conversion by group and the lifts between groups, from the counts the
    analytics keep per group (`patients` assigned, `reached` by the message, `converted`)."""
    names = [v["name"] for v in rules.variants(campaign)]
    if rules.control_percent(campaign):
        names = [rules.CONTROL, *names]
    groups = [
        outreach_effect.group_conversion(
            name,
            counted.get(name, {}).get("patients", 0),
            counted.get(name, {}).get("converted", 0),
            None if name == rules.CONTROL else counted.get(name, {}).get("reached", 0),
        )
        for name in names
    ]
    return {
        "goal": rules.goal(campaign),
        "groups": groups,
        "lifts": outreach_effect.lifts(groups, rules.CONTROL),
    }


class CampaignService:
    def __init__(
        self,
        repository: CampaignRepository,
        segments: SegmentService,
        tenants: TenantService,
        patients: PatientRepository,
        deliveries: Deliveries,
        executions: Executions,
        counters: AnalyticsRepository,
    ) -> None:
        self._counters = counters
        self._executions = executions
        self._campaigns = repository
        self._segments = segments
        self._tenants = tenants
        self._patients = patients
        self._deliveries = deliveries

    # --- executions, named so that a retried start is a no-op ---

    def _start_driver(self, tenant_id: str, campaign_id: str, part: int = 1) -> bool:
        """Start the driver's `part`-th execution, counting its batches from 0 up to the limit
        after which it continues as the next part."""
        return self._executions.start(
            get_settings().campaign_driver_arn,
            rules.driver_execution_name(tenant_id, campaign_id, part),
            {
                "tenant_id": tenant_id,
                "campaign_id": campaign_id,
                "part": part,
                "batches": 0,
                "batch_limit": rules.BATCHES_PER_EXECUTION,
            },
        )

    def _start_outreach(self, tenant_id: str, campaign_id: str, patient_id: str) -> None:
        _, name = rules.execution_names(tenant_id, campaign_id, patient_id)
        self._executions.start(
            get_settings().campaign_outreach_arn,
            name,
            {"tenant_id": tenant_id, "campaign_id": campaign_id, "patient_id": patient_id},
        )

    # --- the API ---

    def create(self, principal: Principal, body: Document) -> Document:
        require_role(principal, CLINIC_ROLES)
        tenant = self._tenants.require(tenant_of(principal))
        segment = self._segments.check(tenant, body["segment"])
        rules.check_variants(body)
        for index, variant in enumerate(rules.variants(body)):
            where = "$.message" if "message" in body else f"$.variants[{index}].message"
            rules.check_message(variant["message"], where)
        now = clock.now()
        doc: Document = {
            "id": new_campaign_id(),
            "segment": segment,
            "created_at": utc_iso(now),
            "created_by": principal.subject,
        }
        for optional in ("name", "message", "variants", "goal"):
            if optional in body:
                doc[optional] = body[optional]
        if "control_group" in body:
            doc["control_group"] = {
                "percent": rules.DEFAULT_CONTROL_PERCENT,
                **body["control_group"],
            }
        targeted = self._segments.count(tenant, segment)
        stored = self._campaigns.create(tenant["id"], doc, targeted)
        self._start_driver(tenant["id"], doc["id"])
        count("CampaignStarted")
        return public(stored)

    def get(self, principal: Principal, campaign_id: str) -> Document:
        require_role(principal, CLINIC_ROLES)
        found = (
            self._campaigns.get(tenant_of(principal), campaign_id)
            if is_valid_id(campaign_id)
            else None
        )
        if found is None:
            raise NotFound("campaign not found", code="campaign_not_found")
        counted = self._counters.campaign_groups(tenant_of(principal), campaign_id)
        return {**public(found), "effect": effect(found, counted)}

    def list(
        self, principal: Principal, *, limit: str | None, cursor: str | None
    ) -> tuple[list[Document], str | None]:
        """Newest first, paged with the patient listing's cursor: (listing sort key, id),
        turned back into a key with the caller's tenant."""
        require_role(principal, CLINIC_ROLES)
        after = decode_cursor(cursor) if cursor else None
        docs, position = self._campaigns.page(tenant_of(principal), parse_limit(limit), after)
        return [public(d) for d in docs], encode_cursor(position) if position else None

    # --- the driver state machine ---

    def batch(self, ref: Document) -> CampaignBatch:
        """Start the next patients' outreach, as many as this minute's window has room for.
        Returns `done`, or `next_at` (the next window, or the end of quiet hours) to wait for."""
        tenant_id, campaign_id = ref["tenant_id"], ref["campaign_id"]
        campaign = self._campaigns.get(tenant_id, campaign_id)
        tenant = self._tenants.require(tenant_id) if campaign else None
        if campaign is None or tenant is None or campaign["exhausted_at"]:
            return {"done": True}
        now = clock.now()
        # Started in quiet hours, every outreach would wait for the morning and knock at once.
        morning = out_of_quiet_hours(now, ZoneInfo(tenant["time_zone"]), tenant["quiet_hours"])
        if morning != now:
            if not self._segments.page(tenant, campaign["segment"], 1, campaign["cursor"])[0]:
                self._campaigns.advance(tenant_id, campaign_id, None, utc_iso(now))
                return {"done": True}  # nobody left to wait for
            return {"done": False, "next_at": utc_iso(morning)}
        window, next_window = rules.window(now)
        room = rules.rate_per_minute(tenant) - self._campaigns.rate_used(tenant_id, window)
        if room <= 0:
            return {"done": False, "next_at": utc_iso(next_window)}
        patient_ids, next_after = self._segments.page(
            tenant, campaign["segment"], room, campaign["cursor"]
        )
        for patient_id in patient_ids:
            arm = rules.arm_of(campaign, patient_id)
            if self._campaigns.mark_started(tenant_id, campaign_id, patient_id, utc_iso(now), arm):
                count("CampaignOutreachStarted")
            if arm == rules.CONTROL:  # never messaged: held out now, in the same minute
                self._record(tenant_id, campaign_id, patient_id, "held_out")
            else:
                self._start_outreach(tenant_id, campaign_id, patient_id)
        exhausted = next_after is None
        self._campaigns.advance(
            tenant_id, campaign_id, next_after, utc_iso(now) if exhausted else None
        )
        if exhausted:
            return {"done": True}
        return {"done": False, "next_at": utc_iso(next_window)}

    def continue_as_new(self, ref: Document) -> DriverContinued:
        """The driver's history is filling up: start its next part, which goes on from the
        campaign's cursor (kept in its record), and let this one end."""
        part = int(ref.get("part", 1)) + 1
        started = self._start_driver(ref["tenant_id"], ref["campaign_id"], part)
        if started:
            count("CampaignDriverContinued")
        return {"part": part, "started": started}

    # --- the outreach state machine ---

    def send(self, ref: Document) -> OutreachSent:
        """Send the campaign's message to one patient, once, within the tenant's rate. `deferred`
        (quiet hours) and `paced` (this minute's window is full) come back with `retry_at` for
        the state machine to wait for."""
        tenant_id, campaign_id = ref["tenant_id"], ref["campaign_id"]
        patient_id = ref["patient_id"]
        campaign = self._campaigns.get(tenant_id, campaign_id)
        tenant = self._tenants.require(tenant_id) if campaign else None
        arm = rules.arm_of(campaign, patient_id) if campaign else rules.CONTROL
        if campaign is None or tenant is None or arm == rules.CONTROL:
            return {"status": "skipped"}  # a control patient is held out by the driver
        patient = self._patients.get(tenant_id, patient_id)
        if patient is None:  # deleted since the campaign reached them
            self._record(tenant_id, campaign_id, patient_id, "suppressed")
            return {"status": "suppressed"}
        now = clock.now()
        # A minor's guardian, as every message about a minor; for the guardians-of-minors
        # segment the guardian whatever the minor's age.
        addressed = self._deliveries.addressee(
            tenant, patient, now, guardian_only=campaign["segment"] == GUARDIANS_OF_MINORS
        )
        fields = {
            **patient_fields(tenant, patient),
            "link": f"{get_settings().app_link_base}/c/{campaign_id}",
        }
        morning = self._deliveries.held_until(tenant, addressed, now)
        if morning != now:
            return {"status": "deferred", "retry_at": utc_iso(morning)}
        window, next_window = rules.window(now)
        if (
            self._campaigns.claim_rate(tenant_id, now, window, rules.rate_per_minute(tenant), 1)
            == 0
        ):
            count("CampaignMessagePaced")
            return {
                "status": "paced",
                "retry_at": utc_iso(rules.paced_retry(next_window, patient_id)),
            }
        message = rules.message_for(campaign, arm)
        result = self._deliveries.deliver(
            tenant,
            addressed,
            Message(
                rules.step_of(message),
                f"campaign#{campaign_id}#{patient_id}",
                fields,
                {"campaign_id": campaign_id},
                wording=rules.wording(message, addressed["language"], tenant["default_language"]),
            ),
            now,
        )
        # An attempt that raises (throttled, say) keeps its place: the rate errs on the slow side.
        if result["status"] not in rules.LEFT or result.get("replayed"):
            self._campaigns.release_rate(tenant_id, window, 1)  # nothing left this minute
        # An unknown outcome (the request left, its answer was lost) is not known to be sent.
        status = "failed" if result["status"] == "unknown" else result["status"]
        if status in rules.OUTCOMES:
            self._record(tenant_id, campaign_id, patient_id, status)
        if status == "deferred":
            return {"status": "deferred", "retry_at": result["retry_at"]}
        return {"status": status}

    def failed(self, ref: Document) -> OutreachSent:
        """The outreach's send kept failing: count the patient as failed (once)."""
        self._record(ref["tenant_id"], ref["campaign_id"], ref["patient_id"], "failed")
        return {"status": "failed"}

    def _record(self, tenant_id: str, campaign_id: str, patient_id: str, outcome: str) -> None:
        at = utc_iso(clock.now())
        if self._campaigns.record_outcome(tenant_id, campaign_id, patient_id, outcome, at):
            count(f"CampaignMessage{outcome.capitalize()}")
