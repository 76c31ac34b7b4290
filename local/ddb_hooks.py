"""Makes moto's DynamoDB transactions behave like DynamoDB's: atomic and isolated under
concurrency, and cheap.

moto's own `transact_write_items` deep-copies every table a transaction touches (all items, for
a rollback) and takes no lock. With the threaded server that is both slow, growing with the
table, and wrong: concurrent transactions crash inside the copy, and a rollback can put back a
whole table over another request's write. Here a transaction runs under one lock shared with
the single-item writes, checks every condition before it writes anything, and keeps a copy of
only the items it changes.

Reads answer fast: moto 5.2 serializes every response through a generic shape walker, which
spends ~60 ms on one aftercare journey's item (a map of maps, one call per attribute). A read's
result is already DynamoDB's wire format (AttributeValues), so it is written as JSON directly
(anything JSON cannot hold, such as a binary value, still goes through moto's serializer).

Queries read what they could match: moto's Query sorts every item of the table to answer for
one partition (all of them again for an index), so each read grew with the whole table and a
bulk import slowed page by page. Here a Query on the table's key looks at its partition only,
and one on an index at the items unsorted (it sorts what it keeps anyway); the answers are the
same.

Counters add fast: the analytics keep their counters with `ADD #f :n, ...` updates, dozens per
stream record, and moto parses, validates and deep-copies the item for each (8 ms apiece, a third
of a journey test's time). Such an update, of numbers on a table without a stream or index, is
applied to the item directly here, with DynamoDB's semantics (a missing item or attribute starts
at 0); anything else (a condition, another action, a value or attribute not a number) goes to
moto as before.

Reads take the same lock: moto builds an item in place (an UpdateItem of a new key first stores
the bare key, then applies each action), so a read beside it could see half an item, where
DynamoDB shows each item whole, before or after a write.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

_ITEMS = threading.RLock()
_OPS = ("ConditionCheck", "Put", "Delete", "Update")
Step = tuple[str, dict[str, Any], dict[str, Any], Any]  # op type, op, key, item before
Reason = tuple[str | None, str | None, Any]


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _ITEMS:
            return method(self, *args, **kwargs)

    call.__name__ = method.__name__
    return call


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _check(backend: Any, transact_items: list[dict[str, Any]]) -> tuple[list[Step], list[Reason]]:
    """Evaluate every condition against the current items; write nothing."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TransactWriteSingleOpException,
    )

    seen: set[tuple[str, str]] = set()
    steps: list[Step] = []
    reasons: list[Reason] = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in _OPS:
            raise ValueError("Unsupported transaction operation")
        key = _key(backend, op_type, op)
        identity = (op["TableName"], str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        if condition and not get_filter_expression(condition, names, values).expr(current):
            wants_old = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
            old = current.to_json()["Attributes"] if current and wants_old else None
            reasons.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
            continue
        reasons.append((None, None, None))
        steps.append((op_type, op, key, copy.deepcopy(current)))
    return steps, reasons


_ADD_ONLY = re.compile(r"ADD #\w+ :\w+(?:, #\w+ :\w+)*")


def _add_numbers(backend: Any, table_name: str, key: dict[str, Any], op: dict[str, Any]) -> bool:
    """Apply an update that only ADDs numbers to an item of a table without a stream or index;
    False (nothing done) for any other update, which moto applies."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    expression = op.get("UpdateExpression", "")
    if op.get("ConditionExpression") or not _ADD_ONLY.fullmatch(expression):
        return False
    table = backend.get_table(table_name)
    if table.stream_shard is not None or table.global_indexes or table.indexes:
        return False
    names, values = (
        op.get("ExpressionAttributeNames") or {},
        op.get("ExpressionAttributeValues") or {},
    )
    adds: dict[str, Decimal] = {}
    for pair in expression.removeprefix("ADD ").split(", "):
        name_ref, value_ref = pair.split(" ")
        name, value = names.get(name_ref), values.get(value_ref)
        if name is None or name in key or not isinstance(value, dict) or set(value) != {"N"}:
            return False
        if name in adds:
            return False  # two paths to one attribute: DynamoDB refuses, moto says how
        adds[name] = Decimal(value["N"])
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_value, range_value)
    if item is not None and any(
        name in item.attrs and item.attrs[name].type != "N" for name in adds
    ):
        return False  # DynamoDB refuses: moto says how
    if item is None:
        table.put_item(dict(key))
        item = table.get_item(hash_value, range_value)
    for name, amount in adds.items():
        before = Decimal(item.attrs[name].value) if name in item.attrs else Decimal(0)
        item.attrs[name] = DynamoType({"N": str(before + amount)})
    return True


def _write(backend: Any, steps: list[Step], size: int) -> None:
    """Apply the checked steps; if one fails, put the changed items back as they were."""
    from moto.dynamodb.exceptions import TransactionCanceledException

    # Each step is listed before it is applied: moto's update of a new key stores the bare key
    # first, so a step that fails half-way is put back too.
    done: list[tuple[str, dict[str, Any], Any]] = []
    failing = 0
    try:
        for index, (op_type, op, key, before) in enumerate(steps):
            failing = index
            table_name = op["TableName"]
            if op_type != "ConditionCheck":
                done.append((table_name, key, before))
            if op_type == "Put":
                backend.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                backend.delete_item(table_name, key)
            elif op_type == "Update" and not _add_numbers(backend, table_name, key, op):
                backend.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=op.get("ExpressionAttributeNames"),
                    expression_attribute_values=op.get("ExpressionAttributeValues"),
                )
    except Exception as failure:
        for table_name, key, before in reversed(done):
            if before is None:
                backend.delete_item(table_name, key)
            else:
                backend.put_item(table_name, before.to_json()["Attributes"])
        reasons: list[Reason] = [(None, None, None)] * size
        reasons[failing] = (type(failure).__name__, str(failure), None)
        raise TransactionCanceledException(reasons) from failure


# Whose results are AttributeValues and counts only, written as JSON directly.
_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def _answer_reads_as_json() -> None:
    import json

    from moto.dynamodb.responses import DynamoResult

    serialize = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in _READS and isinstance(self.result, dict):
            present = {k: v for k, v in self.result.items() if v is not None}
            try:
                body = json.dumps(present, separators=(",", ":"))
            except TypeError:  # bytes: moto's serializer base64s them
                return serialize(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return serialize(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


class _SeenByOneQuery:
    """A table as one Query sees it: `all_items` holds only the items the Query could match.
    Everything else is the table's own."""

    def __init__(self, table: Any, partition: Any) -> None:
        self._table = table
        self._partition = partition  # None: a Query on an index, which may match any item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Any]:
        table = self._table
        if self._partition is not None:
            found = table.items.get(self._partition)  # .get: `items` is a defaultdict
            if found is None:
                return []
            return list(found.values()) if table.range_key_attr else [found]
        if not table.range_key_attr:
            return list(table.items.values())
        return [item for partition in table.items.values() for item in partition.values()]


def _query_what_could_match() -> None:
    import inspect

    from moto.dynamodb.models.table import Table

    query = Table.query
    parameters = inspect.signature(query)

    def partition_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        called = parameters.bind(self, *args, **kwargs).arguments
        partition = None if called.get("index_name") else called["hash_key"]
        seen: Any = _SeenByOneQuery(self, partition)
        return query(seen, *args, **kwargs)

    Table.query = partition_query  # type: ignore[method-assign]


def install() -> None:
    from moto.dynamodb.exceptions import (
        TooManyTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_careloop_hooked", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        with _ITEMS:
            steps, reasons = _check(self, transact_items)
            if any(code is not None for code, _, _ in reasons):
                raise TransactionCanceledException(reasons)
            _write(self, steps, len(transact_items))

    for name in (
        "put_item",
        "update_item",
        "delete_item",
        "batch_write_item",
        "get_item",
        "query",
        "scan",
    ):
        setattr(DynamoDBBackend, name, _locked(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    # The backend's get_item hands back the live item: its conversion to the answer happens in
    # the handler, under the lock too.
    from moto.dynamodb.responses import DynamoHandler

    for name in ("get_item", "batch_get_item"):
        setattr(DynamoHandler, name, _locked(getattr(DynamoHandler, name)))
    _answer_reads_as_json()
    _query_what_could_match()
    DynamoDBBackend._careloop_hooked = True  # type: ignore[attr-defined]
