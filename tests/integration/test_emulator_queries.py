"""The emulator's Query (local/ddb_hooks.py looks only at what a Query could match) answers as
DynamoDB does: one partition in sort-key order either way, key conditions, pages, and an index
across partitions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import unique


@pytest.fixture
def table(runtime: Any) -> Iterator[tuple[Any, str]]:
    client = runtime.client("dynamodb")
    name = unique("query-check")
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gpk", "gsk")
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [
                    {"AttributeName": "gpk", "KeyType": "HASH"},
                    {"AttributeName": "gsk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    for p in range(3):
        for n in range(12):
            item = {"pk": {"S": f"P{p}"}, "sk": {"S": f"{'AB'[n % 2]}#{n:02d}"}}
            if n % 3 == 0:  # a sparse index: a third of the items, from every partition
                item |= {"gpk": {"S": "G"}, "gsk": {"S": f"{n:02d}#{p}"}}
            client.put_item(TableName=name, Item=item)
    yield client, name
    client.delete_table(TableName=name)


def _all_pages(client: Any, **query: Any) -> list[str]:
    found: list[str] = []
    while True:
        page = client.query(Limit=4, **query)
        found += [f"{item['pk']['S']}/{item['sk']['S']}" for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return found
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_partition_in_order_either_way_with_key_conditions(table: tuple[Any, str]) -> None:
    client, name = table
    whole = _all_pages(
        client,
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "P1"}},
    )
    assert whole == [f"P1/{'AB'[n % 2]}#{n:02d}" for n in sorted(range(12), key=lambda n: n % 2)]
    a_only_backwards = _all_pages(
        client,
        TableName=name,
        KeyConditionExpression="pk = :p AND begins_with(sk, :a)",
        ExpressionAttributeValues={":p": {"S": "P2"}, ":a": {"S": "A#"}},
        ScanIndexForward=False,
    )
    assert a_only_backwards == [f"P2/A#{n:02d}" for n in range(10, -1, -2)]
    between = _all_pages(
        client,
        TableName=name,
        KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":p": {"S": "P0"}, ":lo": {"S": "B#03"}, ":hi": {"S": "B#07"}},
    )
    assert between == ["P0/B#03", "P0/B#05", "P0/B#07"]
    nothing = client.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )
    assert nothing["Items"] == [] and nothing["Count"] == 0


def test_an_index_across_partitions(table: tuple[Any, str]) -> None:
    client, name = table
    found = _all_pages(
        client,
        TableName=name,
        IndexName="by-g",
        KeyConditionExpression="gpk = :g AND gsk >= :from",
        ExpressionAttributeValues={":g": {"S": "G"}, ":from": {"S": "03"}},
    )
    expected = sorted(
        ((n, p) for p in range(3) for n in range(3, 12, 3)), key=lambda np: f"{np[0]:02d}#{np[1]}"
    )
    assert found == [f"P{p}/{'AB'[n % 2]}#{n:02d}" for n, p in expected]
