"""Sign-in accounts in the Cognito user pool: staff invitations, disabling, and the attributes
that link a patient's app account to a hospital's record.

Only these admin calls write `custom:tenant_id` and `custom:patient_id` (the app client cannot),
so a token's tenant and patient are what CareLoop set. A changed attribute or group reaches the
account's next ID token (the app refreshes its tokens after a link or a hospital switch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import error_code, raise_classified
from chalicelib.settings import get_settings

TENANT_ATTRIBUTE = "custom:tenant_id"
PATIENT_ATTRIBUTE = "custom:patient_id"


class AccountExists(Exception):
    """The pool already has an account for this address."""


@dataclass(frozen=True)
class Account:
    username: str
    subject: str
    email: str
    tenant_id: str | None
    enabled: bool
    groups: frozenset[str]


class Accounts:
    def __init__(
        self, make_client: Callable[[str], Any] = client, pool_id: str | None = None
    ) -> None:
        self._client = make_client
        self._pool_id = pool_id

    @property
    def pool_id(self) -> str:
        pool = self._pool_id or get_settings().user_pool_id
        if not pool:
            raise RuntimeError("USER_POOL_ID is not set for this function")
        return pool

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client("cognito-idp"), operation)(
                UserPoolId=self.pool_id, **kwargs
            )
        except Exception as exc:
            if error_code(exc) == "UsernameExistsException":
                raise AccountExists(kwargs.get("Username", "")) from exc
            raise_classified(exc)

    def invite(self, email: str, name: str, tenant_id: str, group: str) -> Account:
        """A new account for a staff member, in `group`: Cognito emails them a temporary
        password. Raises AccountExists when the address has an account already."""
        created = self._call(
            "admin_create_user",
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "name", "Value": name},
                {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
            ],
            DesiredDeliveryMediums=["EMAIL"],
        )["User"]
        self.add_to_group(created["Username"], group)
        return self._account(created, frozenset({group}), enabled=True)

    def find(self, email: str) -> Account | None:
        """The account of an address, with its groups; None if there is none."""
        try:
            user = self._client("cognito-idp").admin_get_user(
                UserPoolId=self.pool_id, Username=email
            )
        except Exception as exc:
            if error_code(exc) == "UserNotFoundException":
                return None
            raise_classified(exc)
        groups = self._call("admin_list_groups_for_user", Username=user["Username"], Limit=60)
        return self._account(
            {**user, "Attributes": user.get("UserAttributes", [])},
            frozenset(g["GroupName"] for g in groups["Groups"]),
            enabled=bool(user.get("Enabled", True)),
        )

    def add_to_group(self, username: str, group: str) -> None:
        self._call("admin_add_user_to_group", Username=username, GroupName=group)

    def remove_from_group(self, username: str, group: str) -> None:
        self._call("admin_remove_user_from_group", Username=username, GroupName=group)

    def disable(self, username: str) -> None:
        """No new sign-ins and no refreshed tokens; ID tokens already issued are refused by the
        API's revocation check, not here."""
        self._call("admin_disable_user", Username=username)
        self._call("admin_user_global_sign_out", Username=username)

    def enable(self, username: str) -> None:
        self._call("admin_enable_user", Username=username)

    def speak_for(self, username: str, tenant_id: str, patient_id: str) -> None:
        """The hospital and patient the account's next ID token names; the account is a
        patient's from now on."""
        self._call(
            "admin_update_user_attributes",
            Username=username,
            UserAttributes=[
                {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
                {"Name": PATIENT_ATTRIBUTE, "Value": patient_id},
            ],
        )
        self.add_to_group(username, "patient")

    @staticmethod
    def _account(user: dict[str, Any], groups: frozenset[str], *, enabled: bool) -> Account:
        attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
        return Account(
            username=str(user["Username"]),
            subject=attributes.get("sub", str(user["Username"])),
            email=attributes.get("email", ""),
            tenant_id=attributes.get(TENANT_ATTRIBUTE),
            enabled=enabled,
            groups=groups,
        )
