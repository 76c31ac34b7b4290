"""Credentials that may reach one tenant's data only: an AssumeRole of the tenant data role with
the tenant as a session tag (the AWS SaaS pattern: the role's policy allows keys that start with
`T#${aws:PrincipalTag/tenant_id}`). Cached per tenant in a warm container until five minutes
before they expire, so a tenant's requests pay the STS call about once in ten minutes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.clients import client
from chalicelib.adapters.failures import raise_classified

SESSION_SECONDS = 900  # STS's shortest: a stolen set is of little use for long
RENEW_BEFORE = timedelta(minutes=5)


class TenantCredentials:
    def __init__(
        self,
        role_arn: str,
        make_client: Callable[[str], Any] = client,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._role_arn = role_arn
        self._client = make_client
        self._now = now
        self._cached: dict[str, tuple[Any, datetime]] = {}
        self._lock = threading.Lock()

    def frozen_for(self, tenant_id: str) -> Any:
        """botocore's ReadOnlyCredentials for `tenant_id`, fresh for at least five minutes."""
        with self._lock:
            cached = self._cached.get(tenant_id)
            if cached is not None and cached[1] - RENEW_BEFORE > self._now():
                return cached[0]
        credentials, expires = self._assume(tenant_id)
        with self._lock:
            self._cached[tenant_id] = (credentials, expires)
        return credentials

    def _assume(self, tenant_id: str) -> tuple[Any, datetime]:
        from botocore.credentials import ReadOnlyCredentials

        try:
            answer = self._client("sts").assume_role(
                RoleArn=self._role_arn,
                RoleSessionName=f"tenant-{tenant_id}"[:64],
                DurationSeconds=SESSION_SECONDS,
                Tags=[{"Key": "tenant_id", "Value": tenant_id}],
            )
        except Exception as exc:
            raise_classified(exc)
        issued = answer["Credentials"]
        frozen = ReadOnlyCredentials(
            issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
        )
        expires = issued["Expiration"]
        if isinstance(expires, str):
            expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        return frozen, expires
