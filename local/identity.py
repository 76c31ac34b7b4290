"""Signing in locally, through the user pool `infra/platform.yaml` declares.

The local runtime provisions the pool, its groups and the mobile app's client into the emulator
(local/provision.py). moto's Cognito issues ID tokens shaped as Cognito's (`cognito:groups`,
`custom:tenant_id`, `custom:patient_id`, `token_use`, `iss`, `aud`, one hour) and serves their
JWKS at `<endpoint>/<pool id>/.well-known/jwks.json`; the API verifies them with the same code
that reads Cognito's JWKS on AWS (chalicelib/auth.py).

A sign-in here creates a user with the role's group and the tenant and patient attributes (as
a staff invitation or a patient's redeemed link code will), sets its password and signs in with
the admin password flow. moto does not check a client's auth flows; on AWS the app client
allows only SRP and refresh.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

# moto's ID tokens live an hour, as the app client's IdTokenValidity says for AWS.
TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class UserPool:
    pool_id: str
    client_id: str
    region: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def jwks_url(self, endpoint: str) -> str:
        """Where the emulator serves the pool's signing keys."""
        return f"{endpoint}/{self.pool_id}/.well-known/jwks.json"


def find_pool(cognito: Any, stage: str, region: str) -> UserPool:
    """The stage's pool and app client, by the names the template gives them."""
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    pool_id = next((p["Id"] for p in pools if p["Name"] == f"careloop-{stage}"), None)
    if pool_id is None:
        raise LookupError(f"no user pool careloop-{stage} in the emulator")
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)
    client_id = next(
        (
            c["ClientId"]
            for c in clients["UserPoolClients"]
            if c["ClientName"] == f"careloop-{stage}-app"
        ),
        None,
    )
    if client_id is None:
        raise LookupError(f"no app client careloop-{stage}-app in pool {pool_id}")
    return UserPool(pool_id, client_id, region)


def sign_in(
    cognito: Any,
    pool: UserPool,
    role: str,
    tenant_id: str | None = None,
    patient_id: str | None = None,
) -> str:
    """A new user of `role` (for `tenant_id`, as `patient_id`), signed in: its ID token."""
    username = f"local-{role}-{secrets.token_hex(6)}@careloop.local"
    password = _password()
    attributes = [
        {"Name": "email", "Value": username},
        {"Name": "email_verified", "Value": "true"},
    ]
    if tenant_id:
        attributes.append({"Name": "custom:tenant_id", "Value": tenant_id})
    if patient_id:
        attributes.append({"Name": "custom:patient_id", "Value": patient_id})
    cognito.admin_create_user(
        UserPoolId=pool.pool_id,
        Username=username,
        UserAttributes=attributes,
        MessageAction="SUPPRESS",
    )
    cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=username, GroupName=role)
    cognito.admin_set_user_password(
        UserPoolId=pool.pool_id, Username=username, Password=password, Permanent=True
    )
    return password_sign_in(cognito, pool, username, password)


def _password() -> str:
    # Meets the template's password policy (12+, upper, lower, digit).
    return f"Local-{secrets.token_hex(8)}-Aa1"


def password_sign_in(cognito: Any, pool: UserPool, email: str, password: str) -> str:
    signed_in = cognito.admin_initiate_auth(
        UserPoolId=pool.pool_id,
        ClientId=pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    token: str = signed_in["AuthenticationResult"]["IdToken"]
    return token


def sign_in_invited(cognito: Any, pool: UserPool, email: str) -> str:
    """An invited account signed in: here a new password stands in for the temporary one the
    invitation email carries (which the emulator does not send)."""
    password = _password()
    cognito.admin_set_user_password(
        UserPoolId=pool.pool_id, Username=email, Password=password, Permanent=True
    )
    return password_sign_in(cognito, pool, email, password)


def sign_up(cognito: Any, pool: UserPool, email: str | None = None) -> tuple[str, str]:
    """A patient signing up in the app (the pool allows self sign-up): no group, no tenant yet.
    The email, and the password it signs in with."""
    email = email or f"app-{secrets.token_hex(6)}@careloop.local"
    password = _password()
    cognito.sign_up(
        ClientId=pool.client_id,
        Username=email,
        Password=password,
        UserAttributes=[{"Name": "email", "Value": email}],
    )
    # Stands in for the code the confirmation email carries.
    cognito.admin_confirm_sign_up(UserPoolId=pool.pool_id, Username=email)
    return email, password
