"""The table's requests, signed for the tenant the request acts for (chalicelib/tenant_scope.py).

Every PynamoDB client this package makes signs with a credentials object that asks, for each
request, whether a tenant is acting and credentials for it are configured: then the tenant's
(adapters/tenant_credentials.py, given here by the composition root), else the function's own.
botocore's signer reads `get_frozen_credentials()` for each request it signs, so one client (one
~80 ms service model load) serves every tenant, and concurrent requests in one process (the local
server's threads) each sign with their own tenant's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.credentials import Credentials

from chalicelib.tenant_scope import acting_tenant

_for_tenant: Callable[[str], Any] | None = None


def sign_tenant_data_with(credentials_for: Callable[[str], Any] | None) -> None:
    """Where the acting tenant's credentials come from (None: nowhere; the own role signs)."""
    global _for_tenant  # noqa: PLW0603 - set once per process by the composition root
    _for_tenant = credentials_for


class _ActingTenantCredentials(Credentials):  # type: ignore[misc]
    """The function's own credentials, unless a tenant is acting and can be signed for."""

    def __init__(self, own: Any) -> None:  # no super().__init__: the keys are properties
        self._own = own
        self.method = "careloop-acting-tenant"

    @property
    def access_key(self) -> str:
        return str(self._own.access_key)

    @property
    def secret_key(self) -> str:
        return str(self._own.secret_key)

    @property
    def token(self) -> str | None:
        return self._own.token  # type: ignore[no-any-return]

    def get_frozen_credentials(self) -> Any:
        tenant = acting_tenant()
        if tenant is not None and _for_tenant is not None:
            return _for_tenant(tenant)
        return self._own.get_frozen_credentials()


def signed_for_the_acting_tenant(connection: Any) -> Any:
    """`connection` (a PynamoDB Connection) with its client's signer made tenant-aware, once.
    PynamoDB keeps the signer's credentials on the client it makes (`_request_signer`); it reads
    them there itself to tell a client without credentials."""
    signer = connection.client._request_signer
    if not isinstance(signer._credentials, _ActingTenantCredentials):
        signer._credentials = _ActingTenantCredentials(signer._credentials)
    return connection
