"""PynamoDB models of the single CareLoop table (pool model: every key starts with the tenant).

Access patterns and the index serving each are listed in `README.md` beside this file.
Table name and endpoint are bound from settings at first use (`bind_models`), not at import.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.settings import Settings


class LookupIndex(GlobalSecondaryIndex["Any"]):
    """GSI1: exact-match lookups inside a tenant (patient by phone, ...)."""

    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(range_key=True, attr_name="GSI1SK")


class ListingIndex(GlobalSecondaryIndex["Any"]):
    """GSI2: a tenant's collections in a stable order (patients by creation, ...)."""

    class Meta:
        index_name = "GSI2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(range_key=True, attr_name="GSI2SK")


class _Base(Model):
    class Meta:
        table_name = "unbound"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")
    entity = UnicodeAttribute(attr_name="entity")

    @classmethod
    def _get_connection(cls) -> Any:
        """PynamoDB's per-model connection, signing for the acting tenant (store/signing.py)."""
        from chalicelib.store.signing import signed_for_the_acting_tenant

        table = super()._get_connection()
        signed_for_the_acting_tenant(table.connection)
        return table


class TenantItem(_Base):
    """A tenant; every tenant is also listed through GSI2 (`TENANTS`) for the daily sweeps."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    listing = ListingIndex()


class PatientItem(_Base):
    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    deleted_at = UnicodeAttribute(null=True, attr_name="deleted_at")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_lookup = LookupIndex()
    by_listing = ListingIndex()


class UniqueClaim(_Base):
    """Holds a value that must be unique in a tenant (an MRN). Written in the same transaction as
    its owner, with attribute_not_exists, so two patients can never share one."""

    owner_id = UnicodeAttribute(attr_name="owner_id")


class SmokeRunItem(_Base):
    """A smoke-journey run: proves the Task → Lambda → DynamoDB link of the embedded runtime."""

    run_id = UnicodeAttribute(attr_name="run_id")
    recorded_at = UnicodeAttribute(attr_name="recorded_at")


class ConfigItem(_Base):
    """A tenant's configuration records: clinicians and schedules (PK `T#<t>#CONFIG`)."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")


class SlotCounter(_Base):
    """How many patients a slot holds; created by its first booking. Capacity is enforced by the
    condition `booked < capacity` on the same write that adds one."""

    booked = NumberAttribute(null=True, attr_name="booked")
    capacity = NumberAttribute(null=True, attr_name="capacity")


class AppointmentItem(_Base):
    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_patient = LookupIndex()
    by_day = ListingIndex()


class IdempotencyItem(_Base):
    """The first response to a request sent with an Idempotency-Key, replayed to its retries."""

    fingerprint = UnicodeAttribute(attr_name="fingerprint")
    state = UnicodeAttribute(attr_name="state")  # in_progress | complete
    status = NumberAttribute(null=True, attr_name="status")
    response = MapAttribute[str, Any](null=True, attr_name="response")
    locked_until = NumberAttribute(attr_name="locked_until")
    expires_at = TTLAttribute(attr_name="expires_at")


class DeliveryItem(_Base):
    """One message of a journey step: its claim and its line in the patient's delivery log
    (GSI1). `status`, `lease_until` and `attempt` are kept beside `doc` for the conditions of a
    claim: a new claim takes the item only if it is absent, failed, or sending past its lease."""

    doc = MapAttribute[str, Any](attr_name="doc")
    status = UnicodeAttribute(null=True, attr_name="status")
    lease_until = UnicodeAttribute(null=True, attr_name="lease_until")
    attempt = NumberAttribute(null=True, attr_name="attempt")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    by_patient = LookupIndex()


class SendLockItem(_Base):
    """An appointment's message being sent (PK `T#<t>#A#<a>`, SK `SENDING`): taken in the claim's
    transaction, checked by a cancel or reschedule (which waits while it holds), cleared when
    the send settles, and worthless once `until` has passed."""

    owner = UnicodeAttribute(attr_name="owner")
    until = UnicodeAttribute(attr_name="until")


class JourneySyncItem(_Base):
    """What an appointment's change still owes its journeys (PK `T#<t>#A#<a>`, SK `JOURNEYSYNC`):
    executions to stop (`stop_versions`, added to) and the one to start (`start_version`).
    Written in the change's own transaction, deleted once acted on; listed by change time in
    GSI2 (`T#<t>#JOURNEYSYNC`) for the repair sweep while it exists."""

    stop_versions = NumberSetAttribute(null=True, attr_name="stop_versions")
    start_version = NumberAttribute(null=True, attr_name="start_version")
    since = UnicodeAttribute(attr_name="since")
    appointment_id = UnicodeAttribute(attr_name="appointment_id")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_listing = ListingIndex()


class JourneyRecordItem(_Base):
    """An appointment journey version's compact record (PK `T#<t>#A#<a>`, SK `JOURNEY#v<n>`):
    its plan, and what each step did (`doc.steps.<step>`), for the timeline. Ids, times and
    codes only."""

    doc = MapAttribute[str, Any](attr_name="doc")


class StaffTaskItem(_Base):
    """A task in the staff queue; open tasks are listed through GSI2, a patient's through GSI1."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_patient = LookupIndex()
    open_tasks = ListingIndex()


class DeviceItem(_Base):
    """A device the patient's app registered for push (PK `T#<t>#P#<p>`, SK `DEVICE#<hash>`)."""

    endpoint_arn = UnicodeAttribute(attr_name="endpoint_arn")
    platform = UnicodeAttribute(attr_name="platform")
    registered_at = UnicodeAttribute(attr_name="registered_at")


class QuestionnaireResponseItem(_Base):
    """A patient's answers to one questionnaire (PK `T#<t>#P#<p>`, SK `QR#<id>`)."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")


class CareItem(_Base):
    """A patient's aftercare journey (SK `CARE#AC#<journey>`) or recall under one rule
    (SK `CARE#RC#<rule>`), in the patient's partition. A recall waiting for its due date is
    listed through GSI2 (`T#<t>#RECALLDUE`, `<due date>#<patient>#<rule>`); the keys go once it
    starts, so the daily sweep never sees it twice."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    due = ListingIndex()


class ContactItem(_Base):
    """Platform-level facts about a phone number or email address, which belong to a person and
    not to one hospital: SMS opt-out, email suppression (bounce/complaint), the appointment last
    texted about (so a reply finds it), and inbound messages already handled."""

    doc = MapAttribute[str, Any](attr_name="doc")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")


class SegmentEntryItem(_Base):
    """A patient's place in a segment, or in the birth-date index: written and removed in the
    same TransactWrite as the profile (see `domain.segments`). Also a member class seen in the
    tenant (PK `T#<t>#SEGMENTS`, SK `member:<class>`)."""

    patient_id = UnicodeAttribute(null=True, attr_name="patient_id")


class CampaignItem(_Base):
    """A campaign (PK `T#<t>#CAMPAIGN#<c>`, SK `CAMPAIGN`). Progress counters are top-level
    numbers changed only with ADD; `cursor` is where the driver stopped paging the segment."""

    doc = MapAttribute[str, Any](attr_name="doc")
    cursor = UnicodeAttribute(null=True, attr_name="cursor")
    exhausted_at = UnicodeAttribute(null=True, attr_name="exhausted_at")
    targeted = NumberAttribute(null=True, attr_name="targeted")
    started = NumberAttribute(null=True, attr_name="started")
    sent = NumberAttribute(null=True, attr_name="sent")
    suppressed = NumberAttribute(null=True, attr_name="suppressed")
    failed = NumberAttribute(null=True, attr_name="failed")
    held_out = NumberAttribute(null=True, attr_name="held_out")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_tenant = ListingIndex()


class CampaignRecipientItem(_Base):
    """One patient of a campaign (PK `T#<t>#CAMPAIGN#<c>`, SK `P#<p>`): created once when their
    outreach starts, `outcome` set once (with when); each in one transaction with the counter
    it moves. `arm`: the control group or the wording they get (ids only, never PHI: the stream
    hands this item to analytics, which counts the campaign's conversions from it)."""

    started_at = UnicodeAttribute(attr_name="started_at")
    arm = UnicodeAttribute(null=True, attr_name="arm")
    outcome = UnicodeAttribute(null=True, attr_name="outcome")
    outcome_at = UnicodeAttribute(null=True, attr_name="outcome_at")


class RateWindowItem(_Base):
    """A count in a time window, expiring after it: outreach started by a tenant's campaigns in
    one minute (PK `T#<t>#CAMPAIGN-RATE`, SK `<YYYY-MM-DDTHH:MM>`); an account's wrong link
    codes in an hour; a patient's link invitations in a day."""

    used = NumberAttribute(attr_name="used")
    expires_at = TTLAttribute(attr_name="expires_at")


class RevocationItem(_Base):
    """Tokens of one account issued before `not_before` (epoch seconds) are refused
    (PK `T#<t>#U#<sub>`, SK `REVOKED`)."""

    not_before = NumberAttribute(attr_name="not_before")


class LinkCodeItem(_Base):
    """A link code by its digest (PK `LINKCODE#<sha256>`, SK `CODE`): which record it links, until
    when, and the account that redeemed it (a retry by that account finishes the link)."""

    tenant_id = UnicodeAttribute(attr_name="tenant_id")
    patient_id = UnicodeAttribute(attr_name="patient_id")
    created_by = UnicodeAttribute(attr_name="created_by")
    valid_until = NumberAttribute(attr_name="valid_until")
    used_by = UnicodeAttribute(null=True, attr_name="used_by")
    used_at = UnicodeAttribute(null=True, attr_name="used_at")
    expires_at = TTLAttribute(attr_name="expires_at")


class AccountLinkItem(_Base):
    """An app account's link to a patient record: under the account (PK `LINK#<sub>`,
    SK `T#<t>`) and under the patient (PK `T#<t>#P#<p>`, SK `ACCOUNT#<sub>`)."""

    tenant_id = UnicodeAttribute(attr_name="tenant_id")
    patient_id = UnicodeAttribute(attr_name="patient_id")
    account = UnicodeAttribute(attr_name="account")
    linked_at = UnicodeAttribute(attr_name="linked_at")


class DataKeyItem(_Base):
    """A tenant's data key, wrapped under the platform's KMS key (PK `T#<t>`, SK `DATAKEY`).
    Shredding drops the wrapped key (a tombstone keeps `shredded_at`, so no new key is made):
    the tenant's encrypted fields are unreadable for good (crypto-shredding)."""

    wrapped = BinaryAttribute(null=True, attr_name="wrapped", legacy_encoding=False)
    created_at = UnicodeAttribute(attr_name="created_at")
    shredded_at = UnicodeAttribute(null=True, attr_name="shredded_at")


class AuditEntryItem(_Base):
    """One entry of a tenant-day audit chain (PK `T#<t>#AUDIT#<day>`, SK `<seq>` zero-padded);
    listed by actor through GSI1 (`T#<t>#AUDIT#ACTOR#<sub>`)."""

    doc = MapAttribute[str, Any](attr_name="doc")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")
    by_actor = LookupIndex()


class AuditSubjectItem(_Base):
    """A pointer from a patient's pseudonym to an audit entry that touched them
    (PK `T#<t>#AUDIT#S#<pseudonym>`, SK `<at>#<day>#<seq>`), with what their access log shows."""

    doc = MapAttribute[str, Any](attr_name="doc")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")


class WebhookDeliveryItem(_Base):
    """One event's delivery to one webhook (PK `T#<t>#WEBHOOK-DELIVERY#<d>`, SK `DELIVERY`): the
    ids it delivers (`ref`), its attempts and last error, and, while it is a dead letter, its
    place in the tenant's dead-letter list (GSI2 `T#<t>#WEBHOOK-DEAD`). Expires by TTL."""

    ref = MapAttribute[str, Any](attr_name="ref")
    status = UnicodeAttribute(attr_name="status")
    attempts = NumberAttribute(null=True, attr_name="attempts")
    replays = NumberAttribute(null=True, attr_name="replays")
    last_error = UnicodeAttribute(null=True, attr_name="last_error")
    failed_at = UnicodeAttribute(null=True, attr_name="failed_at")
    delivered_at = UnicodeAttribute(null=True, attr_name="delivered_at")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")  # the patient's (erasure finds it)
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_patient = LookupIndex()
    dead_letters = ListingIndex()


class FhirImportItem(_Base):
    """A bulk FHIR import (PK `T#<t>#FHIRIMPORT#<i>`, SK `JOB`): what was asked (`doc`: files with
    their sizes and entity tags, who and when), where the next page starts (`file_index`,
    `offset`, `line`, `skipping`) and each file's counts (`progress`), moved together by one
    conditional update on the previous position. Expires by TTL."""

    doc = MapAttribute[str, Any](attr_name="doc")
    status = UnicodeAttribute(attr_name="status")
    file_index = NumberAttribute(attr_name="file_index")
    offset = NumberAttribute(attr_name="offset")
    line = NumberAttribute(attr_name="line")
    skipping = NumberAttribute(attr_name="skipping")  # 1 inside a line too long to read
    progress = MapAttribute[str, Any](attr_name="progress")
    error = UnicodeAttribute(null=True, attr_name="error")
    finished_at = UnicodeAttribute(null=True, attr_name="finished_at")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")


class FhirImportRejectionItem(_Base):
    """One refused line of an import (PK `T#<t>#FHIRIMPORT#<i>`, SK `REJECT#<file>#<line>`):
    the paths and messages of its failures, never the line. Expires with its import."""

    doc = MapAttribute[str, Any](attr_name="doc")
    expires_at = TTLAttribute(null=True, attr_name="expires_at")


class ReferralCodeItem(_Base):
    """A patient's referral code, beside the profile (PK `T#<t>#P#<p>`, SK `REFCODE`): created
    once, with the code's claim (`UniqueClaim`, PK `T#<t>#REFCODE#<code>`), in one transaction."""

    code = UnicodeAttribute(attr_name="code")
    created_at = UnicodeAttribute(attr_name="created_at")


class ReferralItem(_Base):
    """A referral link (ids and times only): under the referred patient (PK `T#<t>#P#<referred>`,
    SK `REFERRED_BY`) and under the referrer (PK `T#<t>#P#<referrer>`, SK `REFERRAL#<referred>`),
    both put in the new patient's own TransactWrite."""

    doc = MapAttribute[str, Any](attr_name="doc")


class DrawItem(_Base):
    """A draw (PK `T#<t>#DRAW#<d>`, SK `DRAW`), listed newest first through GSI2 (`T#<t>#DRAWS`).
    The seed travels sealed in `doc` until the draw has run; `list_ref` names the eligible list's
    chunks (SK `ELIGIBLE#<list_ref>#<nnnn>`) the commitment was made of."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    list_ref = UnicodeAttribute(null=True, attr_name="list_ref")
    chunks = NumberAttribute(null=True, attr_name="chunks")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_tenant = ListingIndex()


class DrawEligibleItem(_Base):
    """One chunk of a draw's eligible list (PK `T#<t>#DRAW#<d>`, SK `ELIGIBLE#<ref>#<nnnn>`):
    up to 1,000 patient ids, newline-joined, in the list's sorted order."""

    ids = UnicodeAttribute(attr_name="ids")


class DrawEntryItem(_Base):
    """A patient's place in a draw's eligible list (PK `T#<t>#P#<p>`, SK `DRAW#<d>`), so that the
    patient's app finds their draws; it counts only if `list_ref` is the draw's committed one."""

    draw_id = UnicodeAttribute(attr_name="draw_id")
    list_ref = UnicodeAttribute(attr_name="list_ref")


class LedgerItem(_Base):
    """A patient's loyalty ledger, in their partition: the account (SK `LEDGER`: `balance`,
    `pending`, `debited`), each entry (SK `LEDGER#E#<cause>`, created once, never changed) and
    what counts toward the caps (SK `LEDGER#CAP#<year>` / `LEDGER#CAP#<month>#<event>`:
    `earned`). Every entry is written in one transaction with the totals it moves."""

    doc = MapAttribute[str, Any](null=True, attr_name="doc")
    balance = NumberAttribute(null=True, attr_name="balance")
    pending = NumberAttribute(null=True, attr_name="pending")
    debited = NumberAttribute(null=True, attr_name="debited")
    earned = NumberAttribute(null=True, attr_name="earned")
    # A credit is listed by its expiry (`T#<t>#POINTSEXPIRY`, `<expires_at>#<p>#<credit>`) for
    # the daily expiry sweep.
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_expiry = ListingIndex()


class RewardItem(_Base):
    """A reward of a tenant's catalogue (PK `T#<t>#CONFIG`, SK `REWARD#<id>`); `stock` moves
    only by ADD, taken under the condition `stock >= 1` in the redemption's transaction."""

    doc = MapAttribute[str, Any](attr_name="doc")
    stock = NumberAttribute(null=True, attr_name="stock")


class VoucherItem(_Base):
    """A redeemed reward's voucher (PK `T#<t>#VOUCHER#<code>`, SK `VOUCHER`), listed under its
    patient (GSI1 `T#<t>#P#<p>#VOUCHERS`); `status` changes once, issued → used."""

    doc = MapAttribute[str, Any](attr_name="doc")
    status = UnicodeAttribute(attr_name="status")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    by_patient = LookupIndex()


class AnyItem(_Base):
    """Any item of the table by its keys alone (erasure reads keys and deletes; it needs no
    attribute but the index keys it finds items through)."""

    entity = UnicodeAttribute(null=True, attr_name="entity")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_lookup = LookupIndex()
    by_listing = ListingIndex()


class ComplaintItem(_Base):
    """A complaint (PK `T#<t>#COMPLAINT#<c>`, SK `COMPLAINT`): listed by department through GSI1
    (`T#<t>#COMPLAINTS#<department>`) and for the whole tenant through GSI2 (`T#<t>#COMPLAINTS`),
    newest first by `<created_at>#<c>`. Its text, history and closing message are sealed."""

    doc = MapAttribute[str, Any](attr_name="doc")
    version = VersionAttribute(attr_name="version")
    gsi1pk = UnicodeAttribute(null=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(null=True, attr_name="GSI1SK")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    by_department = LookupIndex()
    by_tenant = ListingIndex()


class ComplaintDueItem(_Base):
    """A complaint that may still escalate (PK `T#<t>#COMPLAINT#<c>`, SK `DUE`), listed by its
    deadline through GSI2 (`T#<t>#COMPLAINTS#DUE`, `<deadline>#<c>`): put with the complaint,
    deleted in the write that ends or escalates it."""

    complaint_id = UnicodeAttribute(attr_name="complaint_id")
    deadline = UnicodeAttribute(attr_name="deadline")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    due = ListingIndex()


class PatientPointerItem(_Base):
    """A pointer in the patient's partition to a record kept elsewhere (SK `COMPLAINT#<c>`):
    the patient's own list, and what erasure follows."""

    ref_id = UnicodeAttribute(attr_name="ref_id")
    created_at = UnicodeAttribute(attr_name="created_at")


class SequenceItem(_Base):
    """A tenant's numbering (PK `T#<t>#COMPLAINT-SEQ`, SK `<year>`): `ADD seq 1`."""

    seq = NumberAttribute(null=True, attr_name="seq")


class SatisfactionClaimItem(_Base):
    """The visit a patient was last asked about (PK `T#<t>#P#<p>`, SK `SATISFACTION`): a visit
    starts a survey only by taking this claim, if the last one is older than the tenant's
    window or is its own (a replayed event)."""

    visit_at = UnicodeAttribute(attr_name="visit_at")
    event_key = UnicodeAttribute(attr_name="event_key")
    claimed_at = UnicodeAttribute(attr_name="claimed_at")


class PendingMessageItem(_Base):
    """A message owed to a patient outside any journey (a promoter's thank-you, a complaint's
    closing message), in the patient's partition (SK `FEEDBACKMSG#<key>`) and listed by when it
    may leave through GSI2 (`T#<t>#FEEDBACKMSG`, `<not_before>#<p>#<key>`) until it is settled.
    Ids only: what it says is read when it is sent."""

    doc = MapAttribute[str, Any](attr_name="doc")
    gsi2pk = UnicodeAttribute(null=True, attr_name="GSI2PK")
    gsi2sk = UnicodeAttribute(null=True, attr_name="GSI2SK")
    due = ListingIndex()


ALL_MODELS: tuple[type[Model], ...] = (
    TenantItem,
    PatientItem,
    UniqueClaim,
    SmokeRunItem,
    ConfigItem,
    SlotCounter,
    AppointmentItem,
    IdempotencyItem,
    DeliveryItem,
    SendLockItem,
    StaffTaskItem,
    JourneyRecordItem,
    ContactItem,
    DeviceItem,
    QuestionnaireResponseItem,
    CareItem,
    SegmentEntryItem,
    CampaignItem,
    CampaignRecipientItem,
    RateWindowItem,
    RevocationItem,
    LinkCodeItem,
    AccountLinkItem,
    DataKeyItem,
    AuditEntryItem,
    AuditSubjectItem,
    WebhookDeliveryItem,
    FhirImportItem,
    FhirImportRejectionItem,
    ReferralCodeItem,
    ReferralItem,
    DrawItem,
    DrawEligibleItem,
    DrawEntryItem,
    LedgerItem,
    RewardItem,
    VoucherItem,
    ComplaintItem,
    ComplaintDueItem,
    PatientPointerItem,
    SequenceItem,
    SatisfactionClaimItem,
    PendingMessageItem,
    AnyItem,
)
_bound_to: Settings | None = None


def bind_models(settings: Settings) -> None:
    """Point every model at the configured table (and emulator endpoint, when local)."""
    global _bound_to  # noqa: PLW0603 - binding happens once per process
    if _bound_to == settings:
        return
    for model in ALL_MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.aws_endpoint_url
        model._connection = None  # drop a connection made for another binding
    _bound_to = settings
