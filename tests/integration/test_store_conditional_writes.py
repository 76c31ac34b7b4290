"""The conditional writes themselves, raced at the repository: the service's If-Match check
reads first, so only the write's own condition stops a writer who lost the race."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import Conflict
from tests.conftest import TenantCtx


def test_second_writer_of_the_same_version_loses(
    runtime: Any, tenant: TenantCtx, make_patient: Any
) -> None:
    from chalicelib.store.patients import PatientRepository

    repository = PatientRepository()
    read_by_both = repository.get(tenant.id, make_patient(tenant)["id"])
    assert read_by_both is not None
    first = repository.replace(tenant.id, read_by_both, {**read_by_both, "member_class": "vip"})
    assert first["version"] == 2
    with pytest.raises(Conflict) as lost:
        repository.replace(tenant.id, read_by_both, {**read_by_both, "member_class": "basic"})
    assert lost.value.code == "version_conflict"
    stored = repository.get(tenant.id, read_by_both["id"])
    assert stored is not None and stored["member_class"] == "vip"


def test_two_patients_racing_for_one_mrn(
    runtime: Any, tenant: TenantCtx, make_patient: Any
) -> None:
    from chalicelib.store.patients import PatientRepository

    repository = PatientRepository()
    first, second = (repository.get(tenant.id, make_patient(tenant)["id"]) for _ in range(2))
    assert first is not None and second is not None
    claim = {"external_ids": {"mrn": "RACE-1"}}
    repository.replace(tenant.id, first, {**first, **claim})
    with pytest.raises(Conflict) as lost:
        repository.replace(tenant.id, second, {**second, **claim})
    assert lost.value.code == "mrn_taken"
    unchanged = repository.get(tenant.id, second["id"])
    assert unchanged is not None and unchanged["version"] == 1, "nothing half-written"
    assert repository.find_by_mrn(tenant.id, "RACE-1") == repository.get(tenant.id, first["id"])


def test_tenant_created_once(runtime: Any, tenant: TenantCtx) -> None:
    from chalicelib.store.tenants import TenantRepository

    with pytest.raises(Conflict):
        TenantRepository().create({k: v for k, v in tenant.doc.items() if k != "version"})


def test_a_read_beside_a_write_sees_the_item_whole(runtime: Any) -> None:
    """DynamoDB shows an item before or after a write, never half-made. moto first stores an
    UpdateItem's new key bare and then applies its actions; the emulator keeps reads out of
    that gap (a rate window once read as a key without its count)."""
    import secrets
    import threading

    from chalicelib.settings import get_settings

    dynamodb = runtime.client("dynamodb")
    table = get_settings().table_name
    keys = [{"PK": {"S": f"RACE#{secrets.token_hex(4)}"}, "SK": {"S": "W"}} for _ in range(150)]
    half_made: list[dict[str, Any]] = []
    done = threading.Event()

    def read() -> None:
        reader = runtime.client("dynamodb")
        while not done.is_set():
            for key in keys:
                item = reader.get_item(TableName=table, Key=key).get("Item")
                if item is not None and "used" not in item:
                    half_made.append(item)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for key in keys:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="ADD used :one SET entity = :entity",
                ExpressionAttributeValues={":one": {"N": "1"}, ":entity": {"S": "race"}},
            )
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert half_made == []
