"""Link codes, the links they make between app accounts and patient records, and the windows
that rate-limit both. The code and account-level items cannot start with the tenant: a patient
redeeming a code, or an app that has not chosen a hospital, is not in one yet (see README)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.domain.account_links import AccountLink, LinkCode
from chalicelib.domain.errors import Conflict, invalid
from chalicelib.settings import get_settings
from chalicelib.store.keys import patient_pk
from chalicelib.store.models import (
    AccountLinkItem,
    LinkCodeItem,
    RateWindowItem,
    SegmentEntryItem,
    bind_models,
)
from chalicelib.store.records import failed_items, is_condition_failure, transaction_write
from chalicelib.tenant_scope import acting_for

CODE_SK = "CODE"
KEEP_AFTER_EXPIRY = timedelta(days=1)


def code_pk(digest: str) -> str:
    return f"LINKCODE#{digest}"


def account_pk(account: str) -> str:
    return f"LINK#{account}"


def attempts_pk(account: str) -> str:
    return f"LINKTRY#{account}"


def invitations_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#P#{patient_id}#LINKINVITES"


class AccountLinkRepository:
    def __init__(self) -> None:
        bind_models(get_settings())

    def save_code(self, code: LinkCode) -> None:
        """The code by its digest; and a pointer to it under the patient, so an erasure finds
        it (the pointer first: a code is never left unfindable)."""
        SegmentEntryItem(
            patient_pk(code["tenant_id"], code["patient_id"]),
            code_pk(code["digest"]),
            entity="link_code_pointer",
            patient_id=code["patient_id"],
        ).save()
        LinkCodeItem(
            code_pk(code["digest"]),
            CODE_SK,
            entity="link_code",
            tenant_id=code["tenant_id"],
            patient_id=code["patient_id"],
            created_by=code["created_by"],
            valid_until=code["expires_at"],
            expires_at=datetime.fromtimestamp(code["expires_at"], UTC) + KEEP_AFTER_EXPIRY,
        ).save(condition=LinkCodeItem.pk.does_not_exist())

    def redeem(self, digest: str, account: str, now: datetime, now_iso: str) -> AccountLink:
        """Use the code once for this account and link the account to the code's record, in one
        transaction. The account that used a code may redeem it again (finishing a link whose
        sign-in update failed); anyone else finds it used."""
        try:
            code = LinkCodeItem.get(code_pk(digest), CODE_SK, consistent_read=True)
        except DoesNotExist as exc:
            raise _unknown_code() from exc
        link = AccountLink(tenant_id=code.tenant_id, patient_id=code.patient_id, linked_at=now_iso)
        try:
            # The account holds the code of one hospital's patient: it acts for that hospital.
            with acting_for(code.tenant_id), transaction_write() as tx:
                tx.save(
                    _link_item(account_pk(account), f"T#{code.tenant_id}", account, link),
                    condition=AccountLinkItem.pk.does_not_exist()
                    | (AccountLinkItem.patient_id == code.patient_id),
                )
                tx.save(
                    _link_item(
                        patient_pk(code.tenant_id, code.patient_id),
                        f"ACCOUNT#{account}",
                        account,
                        link,
                    )
                )
                tx.update(
                    LinkCodeItem(code_pk(digest), CODE_SK),
                    actions=[LinkCodeItem.used_by.set(account), LinkCodeItem.used_at.set(now_iso)],
                    condition=LinkCodeItem.pk.exists()
                    & (LinkCodeItem.valid_until > int(now.timestamp()))
                    & (LinkCodeItem.used_by.does_not_exist() | (LinkCodeItem.used_by == account)),
                )
        except TransactWriteError as exc:
            # Sent as [put account's link, put patient's link, update code].
            failed = failed_items(exc)
            if 2 in failed:
                raise _unknown_code() from exc
            if 0 in failed:
                raise Conflict(
                    "this account is linked to another patient at this hospital",
                    code="already_linked",
                ) from exc
            raise
        return link

    def links(self, account: str) -> list[AccountLink]:
        return [
            AccountLink(
                tenant_id=item.tenant_id, patient_id=item.patient_id, linked_at=item.linked_at
            )
            for item in AccountLinkItem.query(account_pk(account))
        ]

    def link(self, account: str, tenant_id: str) -> AccountLink | None:
        try:
            item = AccountLinkItem.get(account_pk(account), f"T#{tenant_id}")
        except DoesNotExist:
            return None
        return AccountLink(
            tenant_id=item.tenant_id, patient_id=item.patient_id, linked_at=item.linked_at
        )

    def count_in_window(self, pk: str, window: str) -> int:
        try:
            return int(RateWindowItem.get(pk, window, consistent_read=True).used)
        except DoesNotExist:
            return 0

    def take_from_window(self, pk: str, window: str, limit: int, expires: datetime) -> bool:
        """Count one more in the window, unless it already holds `limit`."""
        try:
            RateWindowItem(pk, window).update(
                actions=[
                    RateWindowItem.used.add(1),
                    RateWindowItem.entity.set("rate_window"),
                    RateWindowItem.expires_at.set(expires),
                ],
                condition=RateWindowItem.used.does_not_exist() | (RateWindowItem.used < limit),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


def _link_item(pk: str, sk: str, account: str, link: AccountLink) -> AccountLinkItem:
    return AccountLinkItem(
        pk,
        sk,
        entity="account_link",
        tenant_id=link["tenant_id"],
        patient_id=link["patient_id"],
        account=account,
        linked_at=link["linked_at"],
    )


def _unknown_code() -> Exception:
    return invalid("$.code", "this code is not valid: it may be mistyped, used or expired")
