"""The API's per-tenant sessions: tagged with the tenant, cached per tenant, renewed in time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.tenant_credentials import TenantCredentials
from chalicelib.domain.errors import DependencyUnavailable

ROLE = "arn:aws:iam::123456789012:role/careloop-prod-tenant-data"


class FakeSts:
    def __init__(self, now: list[datetime]) -> None:
        self.calls: list[dict[str, Any]] = []
        self.now = now
        self.fail_with: Exception | None = None

    def assume_role(self, **params: Any) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append(params)
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n}",
                "SecretAccessKey": "secret",
                "SessionToken": f"token-{n}",
                "Expiration": self.now[0] + timedelta(seconds=params["DurationSeconds"]),
            }
        }


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]


def _credentials(sts: FakeSts, clock: list[datetime]) -> TenantCredentials:
    return TenantCredentials(ROLE, make_client=lambda service: sts, now=lambda: clock[0])


def test_a_session_is_tagged_with_its_tenant_and_kept_for_the_tenant(
    clock: list[datetime],
) -> None:
    sts = FakeSts(clock)
    credentials = _credentials(sts, clock)
    first = credentials.frozen_for("t-renji")
    assert credentials.frozen_for("t-renji") is first
    other = credentials.frozen_for("t-huashan")
    assert other.access_key != first.access_key
    assert [call["Tags"] for call in sts.calls] == [
        [{"Key": "tenant_id", "Value": "t-renji"}],
        [{"Key": "tenant_id", "Value": "t-huashan"}],
    ]
    assert {call["RoleArn"] for call in sts.calls} == {ROLE}
    assert sts.calls[0]["RoleSessionName"] == "tenant-t-renji"


def test_a_session_is_renewed_five_minutes_before_it_expires(clock: list[datetime]) -> None:
    sts = FakeSts(clock)
    credentials = _credentials(sts, clock)
    first = credentials.frozen_for("t-renji")
    clock[0] += timedelta(minutes=9, seconds=59)
    assert credentials.frozen_for("t-renji") is first
    clock[0] += timedelta(seconds=2)  # 4 min 59 s left
    renewed = credentials.frozen_for("t-renji")
    assert renewed.token == "token-2" and len(sts.calls) == 2


def test_a_throttled_sts_is_a_dependency_unavailable(clock: list[datetime]) -> None:
    from botocore.exceptions import ClientError

    sts = FakeSts(clock)
    sts.fail_with = ClientError(
        {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "AssumeRole"
    )
    with pytest.raises(DependencyUnavailable):
        _credentials(sts, clock).frozen_for("t-renji")


def test_the_table_is_signed_for_the_acting_tenant_only_inside_its_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.credentials import Credentials, ReadOnlyCredentials

    from chalicelib.store import signing
    from chalicelib.tenant_scope import acting_for

    own = Credentials("local", "own-secret")
    scoped = ReadOnlyCredentials("ASIA-T", "tenant-secret", "token")
    seen: list[str] = []

    def for_tenant(tenant_id: str) -> ReadOnlyCredentials:
        seen.append(tenant_id)
        return scoped

    class Connection:
        class client:  # noqa: N801 - shaped like a botocore client
            class _request_signer:  # noqa: N801
                _credentials = own

    signing.signed_for_the_acting_tenant(Connection)
    signing.signed_for_the_acting_tenant(Connection)  # wraps once
    wrapped = Connection.client._request_signer._credentials
    assert wrapped.access_key == "local"  # what the fault tier tells the product's calls by
    monkeypatch.setattr(signing, "_for_tenant", for_tenant)  # restored for the next test
    assert wrapped.get_frozen_credentials().access_key == "local"
    with acting_for("t-renji"):
        assert wrapped.get_frozen_credentials() is scoped
    assert wrapped.get_frozen_credentials().access_key == "local"
    assert seen == ["t-renji"]
