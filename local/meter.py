"""Counts what the emulator was asked to do — DynamoDB operations by kind, Lambda invocations —
so a benchmark can state what one journey costs."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

READS = frozenset({"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})


class Meter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.calls[name] += amount

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)


meter = Meter()


def install() -> None:
    from moto.dynamodb.responses import DynamoHandler

    from local.aws_calls import running_function

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        target = (self.headers.get("X-Amz-Target") or "").split(".")[-1]
        if target in READS:
            meter.add("dynamodb_reads")
            # Whose reads: the API's (a request) or a task's (a state machine's function).
            function = running_function() or "emulator"
            meter.add(f"dynamodb_reads@{function}")
            body = self.body.decode() if isinstance(self.body, bytes) else str(self.body)
            if "#AUDIT#" in body:
                meter.add("dynamodb_reads:audit")  # the audit chain's head, before an entry
                meter.add(f"dynamodb_reads:audit@{function}")
        elif target in WRITES:
            meter.add("dynamodb_writes")
        elif target == "TransactWriteItems":
            items = len(json.loads(self.body).get("TransactItems", []))
            meter.add("dynamodb_transactions")
            meter.add("dynamodb_transaction_items", items)
            body = self.body.decode() if isinstance(self.body, bytes) else str(self.body)
            if "#AUDIT#" in body:
                meter.add("dynamodb_transaction_items:audit", items)  # an audit entry's
        if target:
            meter.add(f"dynamodb:{target}")
        return original(self)

    if not getattr(DynamoHandler, "_careloop_metered", False):
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        DynamoHandler._careloop_metered = True  # type: ignore[attr-defined]
