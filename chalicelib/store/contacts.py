"""Opt-outs, suppressions, the answers a number is awaited for, and handled inbound messages.

These are keyed by the phone number or address (`SMS#<hash>`, `EMAIL#<hash>`: keyed hashes under
the platform's lookup key), or a message (`INBOUND#<id>`), not by tenant: a reply arrives before
we know the tenant, and a STOP we cannot place stops every hospital. They carry ids and times
only, no clinical data, and no request path lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.common import Document
from chalicelib.domain.opt_outs import (
    OptOutScope,
    SmsOptIn,
    SmsOptRecord,
    SmsOptRecords,
    sms_opted_out,
)
from chalicelib.domain.replies import AwaitedAnswer
from chalicelib.domain.tenant_keys import PLATFORM
from chalicelib.settings import get_settings
from chalicelib.store.models import ContactItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure
from chalicelib.store.sealing import lookup_hash

# An opt-out of every hospital (a STOP whose hospital could not be told) is `OPTOUT`; one
# hospital's is `OPTOUT#<tenant>`; START at a hospital's number after an opt-out of every
# hospital is `OPTIN#<tenant>`. One Query (SK begins_with OPT) reads them all.
OPT_OUT = "OPTOUT"
OPT_IN = "OPTIN"
SUPPRESSED = "SUPPRESSED"
AWAITING = "AWAIT"
THIS, EVERY = OptOutScope.THIS_HOSPITAL, OptOutScope.EVERY_HOSPITAL


def sms_pk(phone: str) -> str:
    """A number's partition, by its keyed hash under the platform's lookup key: a reply comes
    before its tenant is known, and the number itself must not sit in a key (an export, an
    erased patient's STOP kept as a hash)."""
    return f"SMS#{lookup_hash(PLATFORM, 'phone', phone)}"


def email_pk(address: str) -> str:
    return f"EMAIL#{lookup_hash(PLATFORM, 'email', address.strip().lower())}"


def _opt(kind: str, tenant_id: str | None) -> str:
    return f"{kind}#{tenant_id}" if tenant_id else kind


@dataclass(frozen=True)
class Awaited:
    """The answers awaited from a phone on one hospital number, and the revision they were read
    at (a claim writes them back only if nobody changed them meanwhile)."""

    phone: str
    number: str
    entries: list[AwaitedAnswer]
    revision: int


def awaited_item(awaited: Awaited, now: str) -> tuple[ContactItem, Any]:
    """The entries to write with a text's claim, and the condition that they are unchanged."""
    latest = max((e["until"] for e in awaited.entries), default=now)
    expires = datetime.fromisoformat(latest) + timedelta(days=7) - datetime.fromisoformat(now)
    item = ContactItem(
        sms_pk(awaited.phone),
        f"{AWAITING}#{awaited.number}",
        entity="awaited_answers",
        doc={"entries": list(awaited.entries), "revision": awaited.revision + 1},
        expires_at=max(expires, timedelta(days=1)),
    )
    if awaited.revision == 0:
        return item, ContactItem.pk.does_not_exist()
    return item, ContactItem.doc["revision"] == awaited.revision


class ContactRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def _get(self, pk: str, sk: str) -> Document | None:
        try:
            return as_document(ContactItem.get(pk, sk).doc)
        except DoesNotExist:
            return None

    def sms_opt_records(self, phone: str, tenant_id: str) -> SmsOptRecords:
        """The STOP and START records of a number that bear on one hospital (one Query)."""
        found = {
            item.sk: as_document(item.doc)
            for item in ContactItem.query(sms_pk(phone), ContactItem.sk.startswith(OPT_OUT[:3]))
        }
        records: SmsOptRecords = {}
        if this_hospital := found.get(_opt(OPT_OUT, tenant_id)):
            records["this_hospital"] = cast(SmsOptRecord, this_hospital)
        if every_hospital := found.get(OPT_OUT):
            records["every_hospital"] = cast(SmsOptRecord, every_hospital)
        if back_in := found.get(_opt(OPT_IN, tenant_id)):
            records["back_in"] = cast(SmsOptIn, back_in)
        if back_in_everywhere := found.get(OPT_IN):
            records["back_in_everywhere"] = cast(SmsOptIn, back_in_everywhere)
        return records

    def opted_out(self, phone: str, tenant_id: str) -> bool:
        """Whether the number said STOP to this hospital, or to every hospital and not START to
        this one since."""
        return sms_opted_out(self.sms_opt_records(phone, tenant_id))

    def opt_out(self, phone: str, stop: SmsOptRecord, tenant_id: str | None) -> bool:
        """Record STOP, for one hospital or (None) every hospital. True if this is news (so it
        is confirmed once, not at every STOP)."""
        if tenant_id is None:
            # Kept at its latest: a START to one hospital before it must not outlast it.
            was = self._get(sms_pk(phone), OPT_OUT)
            ContactItem(sms_pk(phone), OPT_OUT, entity="opt_out", doc=dict(stop)).save()
            return was is None
        # Kept even when every hospital is stopped already: a START whose hospital cannot be
        # told, later, must not lift this hospital's own STOP.
        was_out = self.opted_out(phone, tenant_id)
        try:
            ContactItem(
                sms_pk(phone), _opt(OPT_OUT, tenant_id), entity="opt_out", doc=dict(stop)
            ).save(condition=ContactItem.pk.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return not was_out

    def opt_in(self, phone: str, start: SmsOptRecord, tenant_id: str | None) -> bool:
        """START: texts from this hospital again (None: from every hospital). False if the
        number was not opted out. The START is kept with the STOP it lifted, for the record."""
        if tenant_id is None:
            everyone = self._get(sms_pk(phone), OPT_OUT)
            if everyone is None:
                return False
            self._write_start(phone, OPT_IN, start, cast(SmsOptRecord, everyone), EVERY)
            ContactItem(sms_pk(phone), OPT_OUT).delete()
            return True
        records = self.sms_opt_records(phone, tenant_id)
        if not sms_opted_out(records):
            return False
        if "this_hospital" in records:
            stop, scope = records["this_hospital"], THIS
        else:
            stop, scope = records["every_hospital"], EVERY
        # Written first: a START cut short leaves the number opted out, never unexplained.
        self._write_start(phone, _opt(OPT_IN, tenant_id), start, stop, scope)
        ContactItem(sms_pk(phone), _opt(OPT_OUT, tenant_id)).delete()
        return True

    @staticmethod
    def _write_start(
        phone: str, sk: str, start: SmsOptRecord, lifted: SmsOptRecord, scope: OptOutScope
    ) -> None:
        record: SmsOptIn = {**start, "lifted": lifted, "lifted_scope": scope.value}
        ContactItem(sms_pk(phone), sk, entity="opt_in", doc=dict(record)).save()

    def awaited(self, phone: str, number: str) -> Awaited:
        doc = self._get(sms_pk(phone), f"{AWAITING}#{number}")
        if doc is None:
            return Awaited(phone, number, [], 0)
        return Awaited(phone, number, list(doc["entries"]), int(doc["revision"]))

    def suppressed(self, address: str) -> bool:
        return self.suppression(address) is not None

    def suppression(self, address: str) -> dict[str, str] | None:
        """Why and when an address stopped being written to (a bounce or a complaint)."""
        return self._get(email_pk(address), SUPPRESSED)

    def suppress(self, address: str, reason: str, at: str) -> None:
        ContactItem(
            email_pk(address),
            SUPPRESSED,
            entity="suppression",
            doc={"reason": reason, "at": at},
        ).save()

    def remember_message(self, message_id: str, about: Document) -> None:
        """Which delivery a provider message id belongs to, for its delivery notification."""
        ContactItem(
            f"MSG#{message_id}",
            "DELIVERY",
            entity="message",
            doc=about,
            expires_at=timedelta(days=30),
        ).save()

    def message(self, message_id: str) -> Document | None:
        return self._get(f"MSG#{message_id}", "DELIVERY")

    def forget_inbound(self, message_id: str) -> None:
        """Give back the claim of an inbound message whose handling failed."""
        ContactItem(f"INBOUND#{message_id}", "HANDLED").delete()

    def first_time(self, message_id: str) -> bool:
        """Claim an inbound message; False if it was handled already (a replayed event)."""
        try:
            ContactItem(
                f"INBOUND#{message_id}",
                "HANDLED",
                entity="inbound",
                doc={},
                expires_at=timedelta(days=7),
            ).save(condition=ContactItem.pk.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True
