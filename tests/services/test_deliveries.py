"""The send path against in-memory fakes (no emulator): claims, leases, which failure leads
where. The store's own claim conditions are checked on the emulator in
tests/integration/test_delivery_claims.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from chalicelib.adapters.failures import OutcomeUnknown, SendRefused
from chalicelib.domain.common import utc_iso
from chalicelib.domain.deliveries import DeliveryRecord
from chalicelib.domain.errors import DependencyUnavailable, Retryable
from chalicelib.domain.messages import Rendered
from chalicelib.services.deliveries import Deliveries, Message
from chalicelib.store.contacts import Awaited
from chalicelib.store.messages import Claim, SendGuard

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TENANT: dict[str, Any] = {
    "id": "t1",
    "name": "Test Hospital",
    "time_zone": "Asia/Shanghai",
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "sender": {
        "sms_sender_id": "TestHosp",
        "sms_reply_number": "+8610690000001",
        "email_from": "care@hospital.example.com",
    },
    "departments": [{"id": "cardiology", "name": "心内科"}],
}
PATIENT = {
    "id": "p1",
    "name": {"given": "Wei", "family": "Zhang"},
    "phone": "+8613800138000",
    "email": "wei@example.com",
    "language": "en",
    "time_zone": "Asia/Shanghai",
    "preferred_channels": ["sms", "email"],
}
FIELDS = {
    "clinic": "Test Hospital",
    "first_name": "Wei",
    "date": "2026-12-08",
    "time": "10:00",
    "location": "Building 2",
    "department": "Cardiology",
    "notes": "",
    "link": "https://app.example/a/a1",
}


@dataclass
class FakeLog:
    """The claim rules of `DeliveryRepository`, in memory."""

    records: dict[str, DeliveryRecord] = field(default_factory=dict)
    appointment_status: str = "booked"
    awaited: dict[tuple[str, str], Awaited] = field(default_factory=dict)
    reads: int = 0  # of the delivery record

    def get(self, tenant_id: str, key: str) -> DeliveryRecord | None:
        self.reads += 1
        found = self.records.get(key)
        return cast(DeliveryRecord, dict(found)) if found else None

    def _claimable(self, key: str, now: str) -> bool:
        current = self.records.get(key)
        return (
            current is None
            or current["status"] == "failed"
            or (current["status"] == "sending" and current.get("lease_until", "") < now)
        )

    def claim(
        self,
        tenant_id: str,
        record: DeliveryRecord,
        now: str,
        guard: SendGuard | None = None,
        awaited: Awaited | None = None,
        *,
        only_if_new: bool = False,
    ) -> Claim:
        if guard is not None and self.appointment_status not in guard.statuses:
            return Claim.NOT_DUE
        if only_if_new and record["key"] in self.records:
            return Claim.TAKEN
        if not self._claimable(record["key"], now):
            return Claim.TAKEN
        self.records[record["key"]] = cast(DeliveryRecord, dict(record))
        if awaited:
            self.awaited[(awaited.phone, awaited.number)] = Awaited(
                awaited.phone, awaited.number, awaited.entries, awaited.revision + 1
            )
        return Claim.CLAIMED

    def settle(self, tenant_id: str, record: DeliveryRecord, guard: SendGuard | None) -> bool:
        current = self.records[record["key"]]
        if current["status"] != "sending" or current["attempt"] != record["attempt"]:
            return False
        self.records[record["key"]] = cast(DeliveryRecord, dict(record))
        return True

    def record_outcome(self, tenant_id: str, record: DeliveryRecord, now: str) -> bool:
        if not self._claimable(record["key"], now):
            return False
        self.records[record["key"]] = cast(DeliveryRecord, dict(record))
        return True


class FakeContacts:
    def __init__(self, log: FakeLog) -> None:
        self.log = log
        self.opted: set[str] = set()
        self.messages: dict[str, Any] = {}
        self.reads: list[str] = []

    def opted_out(self, phone: str, tenant_id: str) -> bool:
        self.reads.append("opt-out")
        return phone in self.opted

    def awaited(self, phone: str, number: str) -> Awaited:
        return self.log.awaited.get((phone, number), Awaited(phone, number, [], 0))

    def suppressed(self, address: str) -> bool:
        self.reads.append("suppression")
        return False

    def remember_message(self, message_id: str, about: Any) -> None:
        self.messages[message_id] = about


@dataclass
class FakeConfig:
    """A tenant's saved wordings, by template id; counts its reads."""

    wordings: dict[str, dict[str, str]] = field(default_factory=dict)
    reads: int = 0

    def get(self, tenant_id: str, kind: str, record_id: str) -> dict[str, str] | None:
        self.reads += 1
        return self.wordings.get(record_id)


class FakeDevices:
    def __init__(self) -> None:
        self.reads = 0

    def endpoints(self, tenant_id: str, patient_id: str) -> list[str]:
        self.reads += 1
        return []


@dataclass
class FakeChannels:
    """Each channel answers from its script in turn: a message id, or an exception."""

    script: dict[str, list[Any]] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)
    texts: list[tuple[str, str | None]] = field(default_factory=list)  # body, from number

    def _next(self, channel: str, to: str) -> str:
        outcome = (self.script.get(channel) or ["ok"]).pop(0) if self.script.get(channel) else "ok"
        if isinstance(outcome, Exception):
            raise outcome
        self.sent.append((channel, to))
        return f"{channel}-{len(self.sent)}"

    def send_sms(
        self, phone: str, message: Rendered, origination_number: str | None = None, **_: Any
    ) -> str:
        sent = self._next("sms", phone)
        self.texts.append((message.body, origination_number))
        return sent

    def send_email(self, *, to: str, **_: Any) -> str:
        return self._next("email", to)

    def send_push(self, endpoint_arn: str, message: Rendered) -> str:
        return self._next("push", endpoint_arn)


class FakeQueue:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}

    def open_task(self, tenant_id: str, task_id: str, kind: str, about: Any, **_: Any) -> Any:
        self.tasks.setdefault(task_id, {"id": task_id, "kind": kind, **about})
        return self.tasks[task_id]


@dataclass
class World:
    log: FakeLog = field(default_factory=FakeLog)
    channels: FakeChannels = field(default_factory=FakeChannels)
    queue: FakeQueue = field(default_factory=FakeQueue)
    devices: FakeDevices = field(default_factory=FakeDevices)
    config: FakeConfig = field(default_factory=FakeConfig)

    def __post_init__(self) -> None:
        self.contacts = FakeContacts(self.log)

    def deliveries(self) -> Deliveries:
        return Deliveries(
            cast(Any, self.log),
            cast(Any, self.contacts),
            cast(Any, self.config),
            cast(Any, self.devices),
            cast(Any, self.channels),
            cast(Any, self.queue),
            "care@platform.example.com",
        )

    def send(
        self,
        step: str = "reminder_1d",
        now: datetime = NOW,
        appointment: str = "a1",
        tenant: dict[str, Any] = TENANT,
        **kwargs: Any,
    ) -> Any:
        message = Message(
            step=step,
            key=f"{appointment}#v1#{step}",
            fields=FIELDS,
            about={"appointment_id": appointment},
            guard=SendGuard(appointment, 1, frozenset({"booked"})),
            not_after=NOW + timedelta(days=1),
            invites_reply=True,
            **kwargs,
        )
        return self.deliveries().deliver(tenant, PATIENT, message, now)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr("chalicelib.services.deliveries.clock.now", lambda: NOW)
    monkeypatch.setattr("chalicelib.adapters.failures.time.sleep", lambda _s: None)
    return World()


def test_sent_once_and_a_replay_sends_nothing(world: World) -> None:
    first = world.send()
    again = world.send()
    assert first["status"] == "sent" and first["channel"] == "sms"
    assert again == {**first, "replayed": True}
    assert world.channels.sent == [("sms", PATIENT["phone"])]
    [awaited] = world.log.awaited.values()
    assert [e["appointment_id"] for e in awaited.entries] == ["a1"], "written with the claim"


def test_a_first_attempt_claims_without_reading_the_record_first(world: World) -> None:
    """The claim's own condition (never claimed) stands in for a read; a replay reads what
    was recorded once its claim gives way."""
    world.send()
    assert world.log.reads == 0
    world.send()
    assert world.log.reads == 1
    assert len(world.channels.sent) == 1


@pytest.mark.parametrize(
    ("listed", "reads", "text"),
    [
        ([], 0, "Test Hospital reminder"),  # lists none: the product's wording, unread
        (["reminder#email#en"], 0, "Test Hospital reminder"),  # another channel's
        (["reminder#sms#en"], 1, "Own words"),
        (None, 1, "Own words"),  # a tenant record from before the list: read to be sure
    ],
)
def test_the_tenants_own_wording_is_read_only_when_the_tenant_lists_it(
    world: World, listed: list[str] | None, reads: int, text: str
) -> None:
    world.config.wordings["reminder#sms#en"] = {"body": "Own words {{time}}"}
    tenant = {**TENANT} if listed is None else {**TENANT, "own_wording": listed}
    world.send(tenant=tenant)
    assert world.config.reads == reads
    [(body, _origin)] = world.channels.texts
    assert body.startswith(text)


def test_a_text_invites_a_reply_only_from_the_hospitals_two_way_number(world: World) -> None:
    world.send()
    [(body, origin)] = world.channels.texts
    assert origin == TENANT["sender"]["sms_reply_number"]
    assert "Reply C to confirm" in body, "one awaited answer: no code"
    sender_id_only = {**TENANT, "sender": {"sms_sender_id": "TestHosp", "email_from": "c@h.io"}}
    world.send(appointment="a2", tenant=sender_id_only)
    body, origin = world.channels.texts[-1]
    assert origin is None and "Reply" not in body, "a sender ID cannot be answered"
    assert len(world.log.awaited) == 1, "and no answer is awaited for it"


def test_a_second_awaited_answer_on_one_number_gets_its_own_code(world: World) -> None:
    world.send(appointment="a1")
    world.send(appointment="a2")
    assert "Reply C2 to confirm, N2 to cancel" in world.channels.texts[-1][0]
    assert world.log.records["a2#v1#reminder_1d"]["reply_code"] == "2"
    world.send(step="reminder_2h", appointment="a1")
    assert "Reply C1 to confirm" in world.channels.texts[-1][0], "a1 keeps code 1"


def test_throttling_gives_the_claim_back_and_the_retry_sends(world: World) -> None:
    world.channels.script["sms"] = [DependencyUnavailable("throttled")]
    with pytest.raises(Retryable):
        world.send()
    assert world.log.records["a1#v1#reminder_1d"]["status"] == "failed"
    assert world.channels.sent == [], "no other channel on a transient failure"
    result = world.send()
    assert (result["status"], result["channel"]) == ("sent", "sms")
    assert world.log.records["a1#v1#reminder_1d"]["attempt"] == 2


def test_only_a_permanent_refusal_falls_back_to_another_channel(world: World) -> None:
    world.channels.script["sms"] = [SendRefused("InvalidParameter")]
    result = world.send()
    assert (result["status"], result["channel"]) == ("sent", "email")
    record = world.log.records["a1#v1#reminder_1d"]
    assert any(why.startswith("sms: refused") for why in record["fell_back"])


def test_an_ambiguous_sms_is_unknown_final_and_put_before_staff(world: World) -> None:
    world.channels.script["sms"] = [OutcomeUnknown("ReadTimeoutError")]
    result = world.send()
    assert result["status"] == "unknown"
    assert world.channels.sent == [], "never tried on another channel"
    [task] = world.queue.tasks.values()
    assert task["kind"] == "message_outcome_unknown" and task["step"] == "reminder_1d"
    assert world.send()["replayed"] is True, "never retried"
    assert world.channels.sent == []


def claimed(lease_until: datetime) -> DeliveryRecord:
    """The step as another attempt left it: sending, holding its lease until `lease_until`."""
    return DeliveryRecord(
        key="a1#v1#reminder_1d",
        patient_id="p1",
        step="reminder_1d",
        status="sending",
        created_at=utc_iso(NOW - timedelta(minutes=5)),
        attempt=1,
        lease_until=utc_iso(lease_until),
    )


def test_a_claim_held_within_its_lease_is_retried_later(world: World) -> None:
    world.log.records["a1#v1#reminder_1d"] = claimed(NOW + timedelta(seconds=20))
    with pytest.raises(Retryable):
        world.send()
    assert world.channels.sent == []


def test_an_expired_claim_is_taken_over(world: World) -> None:
    world.log.records["a1#v1#reminder_1d"] = claimed(NOW - timedelta(minutes=4))
    assert world.send()["status"] == "sent"
    assert world.log.records["a1#v1#reminder_1d"]["attempt"] == 2


def test_devices_and_later_channels_are_read_only_when_reached(world: World) -> None:
    """SMS first and it goes: neither the devices nor the email suppression list are read."""
    assert world.send()["channel"] == "sms"
    assert (world.contacts.reads, world.devices.reads) == (["opt-out"], 0)
    world.channels.script["sms"] = [SendRefused("InvalidParameter")]
    assert world.send(step="reminder_2h")["channel"] == "email", "reached when SMS refused"
    assert world.contacts.reads == ["opt-out", "opt-out", "suppression"]


def test_no_reminder_at_or_after_the_visit(world: World) -> None:
    result = world.send(now=NOW + timedelta(days=1))
    assert result == {"status": "skipped", "why": "the visit has begun"}
    assert world.log.records["a1#v1#reminder_1d"]["status"] == "skipped"
    assert world.channels.sent == []


def test_a_cancelled_appointment_gets_nothing(world: World) -> None:
    world.log.appointment_status = "cancelled"
    result = world.send()
    assert result["status"] == "skipped"
    assert world.channels.sent == []


def test_every_channel_refusing_is_suppressed_with_the_reasons(world: World) -> None:
    world.channels.script = {"sms": [SendRefused("OptedOut")], "email": [SendRefused("Rejected")]}
    result = world.send()
    assert result["status"] == "suppressed"
    reasons = world.log.records["a1#v1#reminder_1d"]["reasons"]
    assert any("sms: refused" in r for r in reasons) and any("email: refused" in r for r in reasons)


def test_quiet_hours_defer_without_claiming(world: World) -> None:
    night = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    result = world.send(now=night)
    assert result["status"] == "deferred"
    assert world.log.records == {}
