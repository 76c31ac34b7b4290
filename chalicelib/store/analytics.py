"""The analytics table (infra/platform.yaml `AnalyticsTable`): counters kept from the main
table's stream, and the stream records already counted. Its access patterns are rows A1-A3 of
`README.md` beside this file.

Counter fields are plain numbers named by the measure (`booked`, `lead_days_b3`, `booked_2_09`);
written with the low-level client because their names are data, not a model's attributes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from pynamodb.exceptions import TransactWriteError

from chalicelib.domain.common import Document
from chalicelib.settings import get_settings
from chalicelib.store.records import connection

BATCH_ATTEMPTS = 8
CHUNK = 99  # counter items per transaction, beside its marker (TransactWriteItems takes 100)
MARKER_DAYS = 2
COUNTER_KEYS = ("PK", "SK")
_deserializer = TypeDeserializer()


def counter_pk(tenant_id: str, measure: str, grain: str, group_by: str) -> str:
    return f"T#{tenant_id}#AGG#{measure}#{grain}#{group_by}"


def visits_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#VISITS#{patient_id}"


def exposures_pk(tenant_id: str, patient_id: str) -> str:
    return f"T#{tenant_id}#EXPOSED#{patient_id}"


def campaign_groups_pk(tenant_id: str, campaign_id: str) -> str:
    return f"T#{tenant_id}#OUTREACH#CAMPAIGN#{campaign_id}"


def drifting_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#DRIFT"


def _follow_up_pk(tenant_id: str, appointment_id: str) -> str:
    return f"T#{tenant_id}#FOLLOWUP#{appointment_id}"


def _follow_up_key(tenant_id: str, link: Mapping[str, Any]) -> dict[str, Any]:
    """One item per follow-up a booking converted (a booking may answer several)."""
    sort_key = f"LINK#{link['kind']}#{link['plan']}#{link['due_date']}"
    return {"PK": {"S": _follow_up_pk(tenant_id, link["appointment_id"])}, "SK": {"S": sort_key}}


def image_of(raw: Mapping[str, Any] | None) -> Document | None:
    """A stream record's image (DynamoDB JSON) as plain values; numbers as int or float."""
    if not raw:
        return None
    return {key: _plain(_deserializer.deserialize(value)) for key, value in raw.items()}


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


def _number(n: int) -> dict[str, str]:
    return {"N": str(n)}


class AnalyticsRepository:
    def __init__(self) -> None:
        settings = get_settings()
        self._table = settings.analytics_table_name
        self._region, self._host = settings.region, settings.aws_endpoint_url

    @property
    def _client(self) -> Any:
        return connection(self._region, self._host)

    def _update(self, tenant_id: str, key: tuple[str, ...], fields: Mapping[str, int]) -> Document:
        measure, grain, group_by, period, group = key
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _number(n) for i, n in enumerate(fields.values())}
        return {
            "TableName": self._table,
            "Key": {
                "PK": {"S": counter_pk(tenant_id, measure, grain, group_by)},
                "SK": {"S": f"{period}#{group}"},
            },
            "UpdateExpression": "ADD " + ", ".join(f"#f{i} :v{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _once(self, put_items: list[Document], update_items: list[Document]) -> bool:
        """One transaction whose first item is its marker: False when only the marker's
        condition failed (done before: a redelivery, a replay), else True."""
        try:
            self._client.transact_write_items(
                condition_check_items=[],
                delete_items=[],
                put_items=put_items,
                update_items=update_items,
            )
        except TransactWriteError as exc:
            if _marker_taken(exc):
                return False
            raise
        return True

    def apply_once(
        self, record_id: str, tenant_id: str, moves: Mapping[tuple[str, ...], Mapping[str, int]]
    ) -> int:
        """Move the counters for one stream record, each chunk at most once. Returns how many
        chunks were applied now (0: every chunk was counted before, a redelivery)."""
        updates = [self._update(tenant_id, key, fields) for key, fields in sorted(moves.items())]
        expires = int(time.time()) + MARKER_DAYS * 86400
        applied = 0
        for index in range(0, max(len(updates), 1), CHUNK):
            marker = {
                "TableName": self._table,
                "Item": {
                    "PK": {"S": f"STREAM#{record_id}#{index // CHUNK}"},
                    "SK": {"S": "COUNTED"},
                    "expires_at": _number(expires),
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
            try:
                self._client.transact_write_items(
                    condition_check_items=[],
                    delete_items=[],
                    put_items=[marker],
                    update_items=updates[index : index + CHUNK],
                )
            except TransactWriteError as exc:
                if _marker_taken(exc):
                    continue  # this chunk was counted by an earlier delivery
                raise
            applied += 1
        return applied

    # -- a patient's visits (return visits): one partition per patient, erased with them ----

    def add_visit(self, tenant_id: str, patient_id: str, day: str, appointment_id: str) -> None:
        self._client.dispatch(
            "PutItem",
            {
                "TableName": self._table,
                "Item": {
                    "PK": {"S": visits_pk(tenant_id, patient_id)},
                    "SK": {"S": f"VISIT#{day}#{appointment_id}"},
                },
            },
        )

    def visits(self, tenant_id: str, patient_id: str, first: str, last: str) -> list[str]:
        """The patient's visit days from `first` through `last`, with their appointments."""
        return [
            item["SK"].removeprefix("VISIT#")
            for item in self._query(
                visits_pk(tenant_id, patient_id),
                f"VISIT#{first}",
                f"VISIT#{last}#~",
                consistent=True,  # a visit handled a moment ago on another shard counts
            )
        ]

    def count_patient_once(
        self, tenant_id: str, patient_id: str, marker: str, counter: tuple[str, ...], field: str
    ) -> bool:
        """Add 1 to `field` of a counter item unless this patient was counted there before (a
        marker in the patient's partition, put in the same transaction). False: counted before."""
        return self._once(
            put_items=[
                {
                    "TableName": self._table,
                    "Item": {
                        "PK": {"S": visits_pk(tenant_id, patient_id)},
                        "SK": {"S": marker},
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            ],
            update_items=[self._update(tenant_id, counter, {field: 1})],
        )

    # -- follow-ups: which follow-up a booking converted, and its attendance counted once ----

    def put_follow_up(self, tenant_id: str, link: Document) -> None:
        """Idempotent: the same conversion puts the same item (a counted one keeps its mark)."""
        self._client.dispatch(
            "UpdateItem",
            {
                "TableName": self._table,
                "Key": _follow_up_key(tenant_id, link),
                "UpdateExpression": "SET #d = :d, #k = :k, #p = :p",
                "ExpressionAttributeNames": {"#d": "due_date", "#k": "kind", "#p": "plan"},
                "ExpressionAttributeValues": {
                    ":d": {"S": link["due_date"]},
                    ":k": {"S": link["kind"]},
                    ":p": {"S": link["plan"]},
                },
            },
        )

    def follow_ups(self, tenant_id: str, appointment_id: str) -> list[Document]:
        """The follow-ups a booking converted (consistent: the link may be seconds old)."""
        return [
            {"appointment_id": appointment_id, **{k: item[k] for k in ("due_date", "kind", "plan")}}
            for item in self._query(
                _follow_up_pk(tenant_id, appointment_id), "LINK#", "LINK#~", consistent=True
            )
        ]

    def count_follow_up_once(
        self,
        tenant_id: str,
        link: Mapping[str, Any],
        moves: Mapping[tuple[str, ...], Mapping[str, int]],
    ) -> bool:
        """The follow-up's booking was attended: its counters move once (the link is marked in
        the same transaction). False: counted before."""
        mark = {
            "TableName": self._table,
            "Key": _follow_up_key(tenant_id, link),
            "UpdateExpression": "SET attended_counted = :t",
            "ConditionExpression": (
                "attribute_exists(PK) AND attribute_not_exists(attended_counted)"
            ),
            "ExpressionAttributeValues": {":t": {"BOOL": True}},
        }
        return self._once(
            put_items=[],
            update_items=[
                mark,
                *(self._update(tenant_id, key, fields) for key, fields in moves.items()),
            ],
        )

    # -- campaigns' effect: who was reached or held out, and who then booked -----------------

    def _group_count(self, tenant_id: str, campaign_id: str, arm: str, field: str) -> Document:
        return {
            "TableName": self._table,
            "Key": {
                "PK": {"S": campaign_groups_pk(tenant_id, campaign_id)},
                "SK": {"S": f"GROUP#{arm}"},
            },
            "UpdateExpression": "ADD #f :one",
            "ExpressionAttributeNames": {"#f": field},
            "ExpressionAttributeValues": {":one": _number(1)},
        }

    def expose_once(self, tenant_id: str, exposure: Mapping[str, Any]) -> bool:
        """Remember that a campaign reached (or held out) a patient, beside their other
        exposures, and count them in its group: once (False: counted before)."""
        fields = ("arm", "at", "until", "type", "department")
        item = {
            "PK": {"S": exposures_pk(tenant_id, exposure["patient_id"])},
            "SK": {"S": f"CAMPAIGN#{exposure['campaign_id']}"},
            **{name: {"S": exposure[name]} for name in fields},
        }
        return self._once(
            put_items=[
                {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            ],
            update_items=[
                self._group_count(tenant_id, exposure["campaign_id"], exposure["arm"], "patients")
            ],
        )

    def exposures(self, tenant_id: str, patient_id: str) -> list[Document]:
        """The campaigns that reached or held out a patient and the booking that converted
        each (consistent: the exposure may be seconds old)."""
        return [
            {**item, "campaign_id": item["SK"].removeprefix("CAMPAIGN#")}
            for item in self._query(
                exposures_pk(tenant_id, patient_id), "CAMPAIGN#", "CAMPAIGN#~", consistent=True
            )
        ]

    def convert_once(
        self, tenant_id: str, patient_id: str, exposure: Mapping[str, Any], appointment_id: str
    ) -> bool:
        """A booking converted the exposure: marked, and counted in its campaign's group, once
        (False: the exposure had converted already)."""
        mark = {
            "TableName": self._table,
            "Key": {
                "PK": {"S": exposures_pk(tenant_id, patient_id)},
                "SK": {"S": f"CAMPAIGN#{exposure['campaign_id']}"},
            },
            "UpdateExpression": "SET converted_by = :a",
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(converted_by)",
            "ExpressionAttributeValues": {":a": {"S": appointment_id}},
        }
        return self._once(
            put_items=[],
            update_items=[
                mark,
                self._group_count(tenant_id, exposure["campaign_id"], exposure["arm"], "converted"),
            ],
        )

    def replace_campaign(
        self,
        tenant_id: str,
        campaign_id: str,
        groups: Mapping[str, Mapping[str, int]],
        exposures: Iterable[tuple[Mapping[str, Any], str | None, bool]],
    ) -> int:
        """A rebuild: the campaign's group counts replaced (a group no longer found deleted),
        and each recipient's exposure written as the stream keeps it (which booking converted
        it, whether the message reached them). Returns the items written."""
        pk = campaign_groups_pk(tenant_id, campaign_id)
        self._batch_write(
            [
                {"DeleteRequest": {"Key": {"PK": {"S": item["PK"]}, "SK": {"S": item["SK"]}}}}
                for item in self._query(pk, "GROUP#", "GROUP#~")
            ]
        )
        puts: list[Document] = [
            {
                "PutRequest": {
                    "Item": {
                        "PK": {"S": pk},
                        "SK": {"S": f"GROUP#{arm}"},
                        **{field: _number(n) for field, n in counts.items()},
                    }
                }
            }
            for arm, counts in sorted(groups.items())
        ]
        for exposure, converted_by, reached in exposures:
            item: Document = {
                "PK": {"S": exposures_pk(tenant_id, exposure["patient_id"])},
                "SK": {"S": f"CAMPAIGN#{campaign_id}"},
                **{f: {"S": exposure[f]} for f in ("arm", "at", "until", "type", "department")},
            }
            if converted_by:
                item["converted_by"] = {"S": converted_by}
            if reached:
                item["reached"] = {"BOOL": True}
            puts.append({"PutRequest": {"Item": item}})
        self._batch_write(puts)
        return len(puts)

    def reach_once(self, tenant_id: str, patient_id: str, exposure: Mapping[str, Any]) -> bool:
        """The patient's message left: counted as reached in their group, once (False: it was,
        or the exposure is not there)."""
        mark = {
            "TableName": self._table,
            "Key": {
                "PK": {"S": exposures_pk(tenant_id, patient_id)},
                "SK": {"S": f"CAMPAIGN#{exposure['campaign_id']}"},
            },
            "UpdateExpression": "SET reached = :t",
            "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(reached)",
            "ExpressionAttributeValues": {":t": {"BOOL": True}},
        }
        return self._once(
            put_items=[],
            update_items=[
                mark,
                self._group_count(tenant_id, exposure["campaign_id"], exposure["arm"], "reached"),
            ],
        )

    def campaign_groups(self, tenant_id: str, campaign_id: str) -> dict[str, dict[str, int]]:
        """A campaign's counts by group: {arm: {patients, reached, converted}} (a few items)."""
        return {
            item["SK"].removeprefix("GROUP#"): {
                "patients": int(item.get("patients", 0)),
                "reached": int(item.get("reached", 0)),
                "converted": int(item.get("converted", 0)),
            }
            for item in self._query(campaign_groups_pk(tenant_id, campaign_id), "GROUP#", "GROUP#~")
        }

    # -- patients drifting away: their signals, one item each in the tenant's partition -----

    def _drift_key(self, tenant_id: str, patient_id: str) -> dict[str, Any]:
        return {"PK": {"S": drifting_pk(tenant_id)}, "SK": {"S": f"P#{patient_id}"}}

    def change_signals(
        self, tenant_id: str, patient_id: str, added: set[str], removed: set[str]
    ) -> None:
        """Add and remove a patient's signals (a set: adding one twice, or removing one that is
        gone, changes nothing, so a redelivered change is harmless). A removal never creates
        the patient's item (an update would, with their id in its key)."""
        for verb, values in (("ADD", added), ("DELETE", removed)):
            if not values:
                continue
            request: Document = {
                "TableName": self._table,
                "Key": self._drift_key(tenant_id, patient_id),
                "UpdateExpression": f"{verb} #s :v",
                "ExpressionAttributeNames": {"#s": "signals"},
                "ExpressionAttributeValues": {":v": {"SS": sorted(values)}},
            }
            if verb == "DELETE":
                request["ConditionExpression"] = "attribute_exists(PK)"
            try:
                self._client.dispatch("UpdateItem", request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def signals(self, tenant_id: str, patient_id: str) -> list[str]:
        found = self._client.dispatch(
            "GetItem",
            {
                "TableName": self._table,
                "Key": self._drift_key(tenant_id, patient_id),
                "ConsistentRead": True,
            },
        )
        item = image_of(found.get("Item")) or {}
        return [str(s) for s in item.get("signals") or []]

    def drifting(self, tenant_id: str) -> Iterator[tuple[str, list[str]]]:
        """Every patient with signals: (patient, signals)."""
        for item in self._query(drifting_pk(tenant_id), "P#", "P#~"):
            signals = [str(s) for s in item.get("signals") or []]
            if signals:  # a set emptied by its last DELETE leaves the bare item
                yield item["SK"].removeprefix("P#"), signals

    def replace_signals(self, tenant_id: str, signals: Mapping[str, set[str]]) -> int:
        """A rebuild: the tenant's patients' signals deleted, then `signals` written."""
        deletes = [
            {"DeleteRequest": {"Key": {"PK": {"S": item["PK"]}, "SK": {"S": item["SK"]}}}}
            for item in self._query(drifting_pk(tenant_id), "P#", "P#~")
        ]
        puts = [
            {
                "PutRequest": {
                    "Item": {**self._drift_key(tenant_id, patient), "signals": {"SS": sorted(kept)}}
                }
            }
            for patient, kept in sorted(signals.items())
            if kept
        ]
        self._batch_write(deletes)
        self._batch_write(puts)
        return len(puts)

    def forget_patient(self, tenant_id: str, patient_id: str) -> int:
        """Erasure: the patient's visits, exposures and markers go; the counters (no one's)
        stay."""
        keys = [
            {"DeleteRequest": {"Key": {"PK": {"S": item["PK"]}, "SK": {"S": item["SK"]}}}}
            for pk in (visits_pk(tenant_id, patient_id), exposures_pk(tenant_id, patient_id))
            for item in self._query(pk, "0", "~")
        ]
        keys.append({"DeleteRequest": {"Key": self._drift_key(tenant_id, patient_id)}})
        self._batch_write(keys)
        return len(keys)

    def read(
        self, tenant_id: str, measure: str, grain: str, group_by: str, first: str, last: str
    ) -> list[Document]:
        """Counter items of periods `first` through `last`: {period, group, fields...}."""
        found: list[Document] = []
        for item in self._query(
            counter_pk(tenant_id, measure, grain, group_by), f"{first}#", f"{last}#~"
        ):
            period, group = item.pop("SK").split("#", 1)
            item.pop("PK")
            found.append({"period": period, "group": group, **item})
        return found

    def _query(
        self, pk: str, low: str, high: str, *, consistent: bool = False
    ) -> Iterator[Document]:
        start: Any = None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "ConsistentRead": consistent,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#pk": "PK", "#sk": "SK"},
                "ExpressionAttributeValues": {
                    ":pk": {"S": pk},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
            }
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            page = self._client.dispatch("Query", kwargs)
            for raw in page.get("Items", []):
                yield image_of(raw) or {}
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def replace(
        self,
        tenant_id: str,
        partitions: Iterable[tuple[str, str, str]],
        totals: Mapping[tuple[str, ...], Mapping[str, int]],
    ) -> int:
        """A rebuild: the tenant's counter items in `partitions` (measure, grain, group_by) are
        deleted, then `totals` written. Returns the items written."""
        deletes = [
            {"DeleteRequest": {"Key": {"PK": {"S": item["PK"]}, "SK": {"S": item["SK"]}}}}
            for measure, grain, group_by in partitions
            for item in self._query(counter_pk(tenant_id, measure, grain, group_by), "0", "~")
        ]
        puts = []
        for (measure, grain, group_by, period, group), fields in sorted(totals.items()):
            item = {
                "PK": {"S": counter_pk(tenant_id, measure, grain, group_by)},
                "SK": {"S": f"{period}#{group}"},
                **{name: _number(n) for name, n in fields.items() if n},
            }
            puts.append({"PutRequest": {"Item": item}})
        self._batch_write(deletes)
        self._batch_write(puts)
        return len(puts)

    def _batch_write(self, requests: list[Document]) -> None:
        for index in range(0, len(requests), 25):
            pending: Any = {self._table: requests[index : index + 25]}
            for attempt in range(BATCH_ATTEMPTS):
                answer = self._client.dispatch("BatchWriteItem", {"RequestItems": pending})
                pending = answer.get("UnprocessedItems") or None
                if not pending:
                    break
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter
            else:
                raise RuntimeError("the analytics table kept refusing a batch write")


def _marker_taken(exc: TransactWriteError) -> bool:
    """Whether a transaction was cancelled only because its marker was there already."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    codes = [getattr(r, "code", None) for r in reasons if r is not None]
    return (
        bool(codes)
        and codes[0] == "ConditionalCheckFailed"
        and all(code in (None, "None", "ConditionalCheckFailed") for code in codes[1:])
    )
