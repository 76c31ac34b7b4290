"""Linking patients' app accounts to their records: staff send a code, the patient redeems it.

The code is stored (hashed) before it is sent, so a send that fails leaves a code nobody has,
which expires; staff send another. Redeeming commits the link first and then writes the token's
attributes in the user pool; if that fails, the same account redeems the same code again.
"""

from __future__ import annotations

from datetime import timedelta

from chalicelib import clock
from chalicelib.adapters.accounts import Accounts
from chalicelib.adapters.channels import Channels
from chalicelib.adapters.failures import OutcomeUnknown, SendRefused
from chalicelib.domain import account_links as rules
from chalicelib.domain.access import CLINIC_ROLES, Principal, Role, require_role, tenant_of
from chalicelib.domain.account_links import InvitationChannel
from chalicelib.domain.common import Document
from chalicelib.domain.errors import (
    Conflict,
    DependencyUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from chalicelib.domain.messages import Rendered
from chalicelib.domain.opt_outs import sms_opted_out
from chalicelib.observability import count
from chalicelib.services.patients import PatientService
from chalicelib.services.tenants import TenantService
from chalicelib.store.account_links import AccountLinkRepository, attempts_pk, invitations_pk
from chalicelib.store.contacts import ContactRepository
from chalicelib.tenant_scope import acting_for

APP_ROLES = frozenset({Role.UNLINKED, Role.PATIENT})


class AccountLinkService:
    def __init__(
        self,
        links: AccountLinkRepository,
        accounts: Accounts,
        tenants: TenantService,
        patients: PatientService,
        contacts: ContactRepository,
        channels: Channels,
        sender_email: str,
    ) -> None:
        self._links = links
        self._accounts = accounts
        self._tenants = tenants
        self._patients = patients
        self._contacts = contacts
        self._channels = channels
        self._sender_email = sender_email

    def invite(self, principal: Principal, patient_id: str, body: Document) -> Document:
        """Send the patient a new link code by SMS or email."""
        require_role(principal, CLINIC_ROLES)
        tenant_id = tenant_of(principal)
        patient = self._patients.require(principal, patient_id)
        tenant = self._tenants.require(tenant_id)
        channel = InvitationChannel(body["channel"])
        address = self._address(tenant_id, patient, channel)
        now = clock.now()
        if not self._links.take_from_window(
            invitations_pk(tenant_id, patient_id),
            now.date().isoformat(),
            rules.MAX_INVITATIONS_PER_DAY,
            now + timedelta(days=2),
        ):
            raise TooManyRequests(
                f"at most {rules.MAX_INVITATIONS_PER_DAY} link codes a day go to one patient",
                retry_after_seconds=3600,
            )
        code = rules.new_code()
        expires = now + timedelta(hours=rules.LINK_CODE_HOURS)
        self._links.save_code(
            rules.LinkCode(
                digest=rules.digest(code),
                tenant_id=tenant_id,
                patient_id=patient_id,
                expires_at=int(expires.timestamp()),
                created_by=principal.subject,
            )
        )
        text = rules.invitation_text(
            patient.get("language") or tenant.get("default_language", "en"), tenant["name"], code
        )
        try:
            if channel is InvitationChannel.SMS:
                self._channels.send_sms(
                    address,
                    Rendered(body=text, subject=None),
                    sender_id=tenant.get("sender", {}).get("sms_sender_id"),
                )
                shown_to = rules.masked_phone(address)
            else:
                self._channels.send_email(
                    from_address=f"{tenant['name']} <{self._sender_email}>",
                    reply_to=tenant["sender"]["email_from"],
                    to=address,
                    message=Rendered(body=text, subject=tenant["name"]),
                    fallback_subject=tenant["name"],
                )
                shown_to = rules.masked_email(address)
        except SendRefused as exc:
            raise Conflict(
                f"the {channel} provider refused the message ({exc.reason})",
                code="channel_unavailable",
            ) from exc
        except OutcomeUnknown as exc:
            raise DependencyUnavailable(
                "the message may or may not have left; if it does not arrive, send another"
            ) from exc
        count("LinkCodeSent")
        return {"channel": str(channel), "sent_to": shown_to, "expires_at": clock.iso(expires)}

    def _address(self, tenant_id: str, patient: Document, channel: InvitationChannel) -> str:
        if channel is InvitationChannel.SMS:
            phone = patient.get("phone")
            if not phone:
                raise Conflict("the patient has no phone number", code="channel_unavailable")
            if sms_opted_out(self._contacts.sms_opt_records(phone, tenant_id)):
                raise Conflict(
                    "the patient's number has opted out of this hospital's texts",
                    code="channel_unavailable",
                )
            return str(phone)
        email = patient.get("email")
        if not email:
            raise Conflict("the patient has no email address", code="channel_unavailable")
        if self._contacts.suppressed(email):
            raise Conflict(
                "the patient's address bounced or complained", code="channel_unavailable"
            )
        return str(email)

    def redeem(self, principal: Principal, body: Document) -> Document:
        """Link the signed-in account to the record the code names; the app refreshes its tokens
        afterwards, and the new ID token speaks for that hospital and patient."""
        require_role(principal, APP_ROLES)
        now = clock.now()
        window = now.strftime("%Y-%m-%dT%H")
        attempts = attempts_pk(principal.subject)
        if self._links.count_in_window(attempts, window) >= rules.MAX_FAILED_REDEMPTIONS:
            raise TooManyRequests(
                "too many wrong codes; try again in the next hour",
                retry_after_seconds=3600 - (now.minute * 60 + now.second),
            )
        try:
            code = rules.read_code(body["code"])
            link = self._links.redeem(rules.digest(code), principal.subject, now, clock.iso(now))
        except ValidationFailed:
            self._links.take_from_window(
                attempts, window, rules.MAX_FAILED_REDEMPTIONS, now + timedelta(hours=2)
            )
            count("LinkCodeRefused")
            raise
        self._accounts.speak_for(principal.account, link["tenant_id"], link["patient_id"])
        count("AccountLinked")
        return self._shown(link, current=True)

    def links(self, principal: Principal) -> list[Document]:
        require_role(principal, APP_ROLES)
        return [
            self._shown(link, current=link["tenant_id"] == principal.tenant_id)
            for link in sorted(self._links.links(principal.subject), key=lambda x: x["linked_at"])
        ]

    def choose(self, principal: Principal, body: Document) -> Document:
        """The hospital the account's next tokens speak for, among those it is linked to."""
        require_role(principal, APP_ROLES)
        link = self._links.link(principal.subject, body["tenant_id"])
        if link is None:
            raise Conflict("this account is not linked at that hospital", code="not_linked")
        self._accounts.speak_for(principal.account, link["tenant_id"], link["patient_id"])
        return self._shown(link, current=True)

    def _shown(self, link: rules.AccountLink, *, current: bool) -> Document:
        with acting_for(link["tenant_id"]):  # the account is that hospital's patient
            tenant = self._tenants.require(link["tenant_id"])
        return {
            "tenant_id": link["tenant_id"],
            "hospital": tenant["name"],
            "patient_id": link["patient_id"],
            "linked_at": link["linked_at"],
            "current": current,
        }
