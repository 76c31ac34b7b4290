"""Opt-outs, suppressions, last-texted appointments and handled inbound messages.

These are keyed by the phone number or address (`SMS#<e164>`, `EMAIL#<address>`, `INBOUND#<id>`),
not by tenant: STOP means "stop texting this number", whichever hospital sent the text. They
carry no clinical data, and no request path lists them.
"""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.models import ContactItem, bind_models
from chalicelib.store.records import as_document, is_condition_failure

OPT_OUT = "OPTOUT"
SUPPRESSED = "SUPPRESSED"
LAST_TEXTED = "LASTTEXTED"


def texted_item(phone: str, about: Document) -> ContactItem:
    """What a reply from `phone` is about: written in the claim of the text that invites it."""
    return ContactItem(
        f"SMS#{phone}", LAST_TEXTED, entity="last_texted", doc=about, expires_at=timedelta(days=90)
    )


class ContactRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def _get(self, pk: str, sk: str) -> Document | None:
        try:
            return as_document(ContactItem.get(pk, sk).doc)
        except DoesNotExist:
            return None

    def opted_out(self, phone: str) -> bool:
        return self._get(f"SMS#{phone}", OPT_OUT) is not None

    def opt_out(self, phone: str, at: str) -> bool:
        """Record STOP. True if this is news (so it is confirmed once, not at every STOP)."""
        try:
            ContactItem(f"SMS#{phone}", OPT_OUT, entity="opt_out", doc={"at": at}).save(
                condition=ContactItem.pk.does_not_exist()
            )
        except PutError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def opt_in(self, phone: str) -> bool:
        if not self.opted_out(phone):
            return False
        ContactItem(f"SMS#{phone}", OPT_OUT).delete()
        return True

    def suppressed(self, address: str) -> bool:
        return self._get(f"EMAIL#{address.lower()}", SUPPRESSED) is not None

    def suppress(self, address: str, reason: str, at: str) -> None:
        ContactItem(
            f"EMAIL#{address.lower()}",
            SUPPRESSED,
            entity="suppression",
            doc={"reason": reason, "at": at},
        ).save()

    def last_texted(self, phone: str) -> Document | None:
        return self._get(f"SMS#{phone}", LAST_TEXTED)

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
