"""Which tenant the current request acts for, when IAM should fence its data access to it.

The API sets it once the caller is known (their token's tenant; the tenant an operator's route
names; the tenant a redeemed link code belongs to). While it is set, the table is reached with
credentials whose session is tagged with that tenant, and the tenant data role allows only keys
that start with it (`T#<tenant>`, `dynamodb:LeadingKeys`): a bug that reads another tenant's key
is refused by AWS, not only by the code. Journey tasks and handlers set none (their own role).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_acting: ContextVar[str | None] = ContextVar("acting_tenant", default=None)


def acting_tenant() -> str | None:
    return _acting.get()


@contextmanager
def acting_for(tenant_id: str | None) -> Iterator[None]:
    """Data access inside is the tenant's (None: the function's own role, as outside)."""
    token = _acting.set(tenant_id)
    try:
        yield
    finally:
        _acting.reset(token)
