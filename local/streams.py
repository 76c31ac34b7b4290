"""The table's stream, delivered to each of the app's `@app.on_dynamodb_record` handlers the way
Lambda's event source mappings do: polled with GetRecords, in batches, at least once, each
handler with its own iterators and filters.

moto would call a stream's function inside the write that caused it, and ignores the mapping's
filter criteria; the runtime creates no mapping, polls instead and applies the same filters
(`FILTERS_BY_FUNCTION`, which infra/package.py gives the mappings on AWS). A batch whose handler
raises is delivered again at the next drain (Lambda retries it); `duplicates` delivers a seeded
share of the batches twice, as a retried batch whose first delivery did succeed (tests: each
record must still count once).
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from chalicelib.domain.common import Document
from chalicelib.domain.stream_filters import passes
from chalicelib.handlers.stream_filters import FILTERS_BY_FUNCTION
from local.aws_calls import function_of, running
from local.lambdas import LambdaContext

logger = logging.getLogger(__name__)
# Lambda retries a failing batch (MaximumRetryAttempts 10 in infra/package.py); a drain tries it
# a few times before leaving it for the next one.
MAX_ATTEMPTS = 11
ATTEMPTS_PER_DRAIN = 4


class StreamPoller:
    def __init__(
        self,
        tables: Any,
        client: Any,
        table: str,
        handler: Any,
        function_name: str,
        filters: list[Document],
    ) -> None:
        self._filters = filters
        self._tables = tables  # DynamoDB: the table's stream ARN
        self._client = client  # DynamoDB Streams
        self._table = table
        self._handler = handler
        self._function_name = function_name
        self._iterators: dict[str, str] = {}  # shard → next iterator
        self._stream_arn: str | None = None
        self._lock = threading.Lock()
        self.duplicates = 0.0  # share of batches delivered twice
        self._random = random.Random(0)  # noqa: S311 - a test's seed, not a secret
        self.delivered = 0  # records handed to the handler, duplicates included
        self.skipped = 0  # records of batches that kept failing
        self._failures: dict[tuple[str, str], int] = {}  # (shard, first sequence) → attempts

    def seed_duplicates(self, share: float, seed: int) -> None:
        self.duplicates, self._random = share, random.Random(seed)  # noqa: S311

    def forget(self) -> None:
        """After a reset: the table and its stream are new."""
        with self._lock:
            self._iterators.clear()
            self._stream_arn = None

    def drain(self) -> int:
        """Deliver every record written so far, in order per shard. Returns the records read."""
        with self._lock:
            arn = self._stream()
            if arn is None:
                return 0
            shards = self._client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            read = 0
            for shard in shards:
                shard_id = shard["ShardId"]
                if shard_id not in self._iterators:
                    self._iterators[shard_id] = self._client.get_shard_iterator(
                        StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                    )["ShardIterator"]
                read += self._drain_shard(arn, shard_id)
            return read

    def _stream(self) -> str | None:
        if self._stream_arn is None:
            described = self._tables.describe_table(TableName=self._table)["Table"]
            self._stream_arn = described.get("LatestStreamArn")
        return self._stream_arn

    def _drain_shard(self, arn: str, shard_id: str) -> int:
        read = 0
        while True:
            if self._iterators[shard_id] == "closed":
                return read
            page = self._client.get_records(ShardIterator=self._iterators[shard_id], Limit=100)
            records = page.get("Records", [])
            wanted = [r for r in records if passes(self._filters, r)]
            if wanted and not self._delivered(arn, shard_id, wanted):
                return read  # the iterator stays: the batch comes again at the next drain
            read += len(records)
            following = page.get("NextShardIterator")
            if not following:  # a closed shard, read to its end: nothing more will come
                self._iterators[shard_id] = "closed"
                return read
            self._iterators[shard_id] = following
            if not records:
                return read

    def _delivered(self, arn: str, shard_id: str, records: list[dict[str, Any]]) -> bool:
        """Deliver a batch as Lambda does: retried when the function fails (a throttled write),
        up to MAX_ATTEMPTS in all, then skipped (the mapping's MaximumRetryAttempts; on AWS an
        alarm on the function's errors tells the operators)."""
        for _ in range(ATTEMPTS_PER_DRAIN):
            try:
                self._deliver(arn, records)
            except Exception as failure:
                # Its kind only: a message may quote the records.
                logger.info("stream batch failed: %s", type(failure).__name__)
                key = (shard_id, records[0]["dynamodb"]["SequenceNumber"])
                self._failures[key] = self._failures.get(key, 0) + 1
                if self._failures[key] >= MAX_ATTEMPTS:
                    logger.warning("a stream batch failed %d times: skipped", MAX_ATTEMPTS)
                    self.skipped += len(records)
                    return True
                continue
            return True
        return False

    def _deliver(self, arn: str, records: list[dict[str, Any]]) -> None:
        event = {"Records": [_lambda_record(arn, record) for record in records]}
        context = LambdaContext(function_name=self._function_name, invoked_function_arn="")
        times = 2 if self._random.random() < self.duplicates else 1
        for _ in range(times):
            with running(function_of(self._function_name)):
                self._handler(event, context)
            self.delivered += len(records)


def _lambda_record(arn: str, record: dict[str, Any]) -> dict[str, Any]:
    """A GetRecords record as Lambda's event source mapping hands it to a function."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    dynamodb["ApproximateCreationDateTime"] = created.timestamp() if created else 0
    dynamodb.setdefault("SizeBytes", 0)
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "eventSourceARN": arn,
        "dynamodb": dynamodb,
    }


class StreamPollers:
    """Every stream handler's poller, drained one after the other (each reads the whole stream
    through its own filters, as each mapping does on AWS)."""

    def __init__(self, pollers: list[StreamPoller]) -> None:
        self.pollers = pollers

    def seed_duplicates(self, share: float, seed: int) -> None:
        for index, poller in enumerate(self.pollers):
            poller.seed_duplicates(share, seed + index)

    def forget(self) -> None:
        for poller in self.pollers:
            poller.forget()

    def drain(self) -> int:
        return sum(poller.drain() for poller in self.pollers)

    @property
    def delivered(self) -> int:
        return sum(poller.delivered for poller in self.pollers)

    @property
    def skipped(self) -> int:
        return sum(poller.skipped for poller in self.pollers)


def install(
    app_module: Any, tables: Any, streams: Any, table: str, function_name: Any
) -> StreamPollers | None:
    """A poller for each of the app's stream handlers (`function_name`: a handler's name → its
    Lambda function's), if it declares any."""
    pollers = []
    for source in app_module.app.event_sources:
        if getattr(source, "stream_arn", None):
            name = source.handler_string.split(".")[1]
            handler = getattr(app_module, name)
            pollers.append(
                StreamPoller(
                    tables, streams, table, handler, function_name(name), FILTERS_BY_FUNCTION[name]
                )
            )
    return StreamPollers(pollers) if pollers else None
