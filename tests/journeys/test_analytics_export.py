"""The table's daily export for analysts: the scheduled function starts one export a day however
often it is retried, the emulator writes it in AWS's layout, and the Athena queries the platform
template deploys (infra/athena/*.sql, run here with DuckDB over the export) count exactly what
the dashboards' incremental counters say."""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Api, payload
from tests.journeys.support import Journey, local_moment, move_to

pytestmark = pytest.mark.journey

ATHENA = ROOT / "infra" / "athena"
# The keys of an exported line (`{"Item": {...}}` in DynamoDB JSON), by their lower case.
EXPORT_KEYS = {"item": "Item"}


def _hive_to_duckdb(hive: str) -> str:
    """A Glue (Hive) column type as DuckDB writes it: `struct<a:string>` → `STRUCT("a" VARCHAR)`."""
    tokens = re.findall(r"struct<|array<|[A-Za-z_][A-Za-z0-9_]*|[:,>]", hive)
    position = 0

    def take() -> str:
        nonlocal position
        position += 1
        token: str = tokens[position - 1]
        return token

    def parse() -> str:
        token = take()
        if token == "struct<":
            fields = []
            while True:
                name = take()
                assert take() == ":", hive
                fields.append(f'"{name}" {parse()}')
                if take() == ">":
                    return f"STRUCT({', '.join(fields)})"
        if token == "array<":
            inner = parse()
            assert take() == ">", hive
            return f"{inner}[]"
        return {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT"}[token]

    parsed = parse()
    assert position == len(tokens), hive
    return parsed


def _glue_table() -> dict[str, Any]:
    from local.provision import load_template

    (table,) = [
        resource["Properties"]["TableInput"]
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Glue::Table"
    ]
    return dict(table)


def deployed_queries() -> dict[str, str]:
    """Each saved Athena query's file name → its SQL, as infra/package.py deploys it."""
    from local.provision import load_template

    return {
        resource["Metadata"]["SqlFile"]: (ATHENA / resource["Metadata"]["SqlFile"]).read_text()
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::Athena::NamedQuery"
    }


def _names_and_types(types: dict[str, str]) -> str:
    """A DuckDB struct literal of names to type names: `{'item': 'STRUCT(...)'}`."""
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"


def duckdb_over(export_root: Path) -> Any:
    """DuckDB with the Glue table over a local copy of the exports, under the name, columns and
    partition key the template gives it, and stand-ins for the Trino functions the queries use
    that DuckDB lacks or spells otherwise."""
    import duckdb  # a test tool only, and a 60 ms import: loaded here, not at collection

    table = _glue_table()
    # The SerDe matches a column to the export's keys whatever their case (the column `item`,
    # the key `Item`); DuckDB matches them exactly: each column is read under the key's name.
    columns = {
        EXPORT_KEYS[c["Name"].lower()]: _hive_to_duckdb(c["Type"])
        for c in table["StorageDescriptor"]["Columns"]
    }
    named = ", ".join(f'"{key}" AS {key.lower()}' for key in columns)
    partitions = {p["Name"]: _hive_to_duckdb(p["Type"]) for p in table["PartitionKeys"]}
    connection = duckdb.connect()
    # Trino writes a lambda `x -> ...`, which DuckDB 2 still reads when told to (its own is
    # `lambda x: ...`, which Trino does not read).
    connection.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    # Trino parses ISO 8601 with from_iso8601_timestamp (its CAST wants a space, not a 'T').
    connection.execute("CREATE MACRO from_iso8601_timestamp(text) AS CAST(text AS TIMESTAMPTZ)")
    # A zone from a column: Trino's at_timezone (its AT TIME ZONE takes a literal only).
    connection.execute("CREATE MACRO at_timezone(moment, zone) AS timezone(zone, moment)")
    # An array's element from either end, NULL when out of range (DuckDB's is for maps only).
    connection.execute("CREATE MACRO element_at(list, i) AS list_extract(list, i)")
    # The table's location in the bucket (`s3://${ExportBucket}/table/`): its folder locally.
    location = table["StorageDescriptor"]["Location"]["Fn::Sub"]
    files = f"{export_root}/{location.split('/', 3)[3]}"
    connection.execute(
        # The template's own names and types, and the test's folder: nothing from outside.
        f"""CREATE VIEW {table["Name"]} AS SELECT {named}, {", ".join(partitions)} FROM read_json(
            '{files}*/AWSDynamoDB/*/data/*.json.gz',
            format = 'newline_delimited',
            columns = {_names_and_types(columns)},
            hive_partitioning = true,
            hive_types = {_names_and_types(partitions)}
        )"""  # noqa: S608
    )
    return connection


def _started_export(runtime: Any, day: str) -> list[dict[str, Any]]:
    """The exports of the table into `day`'s prefix, as DynamoDB describes them."""
    from chalicelib.settings import get_settings

    dynamodb = runtime.client("dynamodb")
    summaries = dynamodb.list_exports(TableArn=get_settings().table_arn)["ExportSummaries"]
    described = [
        dynamodb.describe_export(ExportArn=s["ExportArn"])["ExportDescription"] for s in summaries
    ]
    return [d for d in described if d["S3Prefix"] == f"table/export_date={day}"]


def _completed(runtime: Any, arn: str) -> dict[str, Any]:
    dynamodb = runtime.client("dynamodb")
    deadline = time.monotonic() + 20
    while True:
        export: dict[str, Any] = dynamodb.describe_export(ExportArn=arn)["ExportDescription"]
        if export["ExportStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return export
        time.sleep(0.05)


def _download(runtime: Any, bucket: str, prefix: str, into: Path) -> list[str]:
    s3 = runtime.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    for key in keys:
        target = into / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return keys


def _rows(connection: Any, sql: str, day: str) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, [day])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _nonzero(values: dict[str, Any], fields: list[str]) -> dict[str, float]:
    return {f: float(values.get(f) or 0) for f in fields if values.get(f)}


def test_the_daily_export_is_what_athena_counts_and_agrees_with_the_dashboards(
    runtime: Any, api: Api, journey: Any, make_patient: Any, tmp_path: Path
) -> None:
    import app as app_module
    from chalicelib import clock
    from chalicelib.settings import get_settings
    from local.schedules import run_scheduled

    # A clinic's few days (as tests/journeys/test_analytics.py plays them): a visit booked,
    # confirmed and attended, one missed, one cancelled by the patient, one by the clinic.
    first: Journey = journey()
    clinic, admin = first.clinic, first.clinic.tenant.admin
    second, third, fourth = (Journey(runtime, api, clinic, make_patient) for _ in range(3))
    visit = local_moment(days=2, hour=10)
    kept = first.book(visit)
    first.act(kept, "confirm")
    missed = second.book(visit + timedelta(minutes=30))
    third.act(third.book(visit + timedelta(hours=1)), "cancel")
    fourth.act(fourth.book(visit + timedelta(minutes=90)), "cancel", clinic.tenant.staff)
    move_to(runtime, visit + timedelta(minutes=5))
    first.act(kept, "check-in", clinic.tenant.staff)
    first.act(kept, "fulfil", clinic.tenant.staff)
    move_to(runtime, visit + timedelta(days=1))
    assert second.appointment(missed)["status"] == "noshow"

    # The schedule's run, and a retry of it (Lambda's, or EventBridge delivering twice): one
    # export of the day.
    moment = clock.now()
    day = moment.astimezone(UTC).date().isoformat()  # the export's day is the run's UTC day
    assert run_scheduled(app_module.analytics_export, "analytics_export", moment) is None
    assert run_scheduled(app_module.analytics_export, "analytics_export", moment) is None
    (started,) = _started_export(runtime, day)
    export = _completed(runtime, started["ExportArn"])
    assert export["ExportStatus"] == "COMPLETED", export
    assert export["ExportFormat"] == "DYNAMODB_JSON"

    # AWS's layout: manifests that account for every data file and item.
    bucket = get_settings().export_bucket
    keys = _download(runtime, bucket, f"table/export_date={day}/", tmp_path)
    export_id = export["ExportArn"].rsplit("/", 1)[1]
    base = f"table/export_date={day}/AWSDynamoDB/{export_id}"
    assert {f"{base}/manifest-summary.json", f"{base}/manifest-files.json"} <= set(keys)
    summary = json.loads((tmp_path / base / "manifest-summary.json").read_text())
    files = [
        json.loads(line)
        for line in (tmp_path / base / "manifest-files.json").read_text().splitlines()
    ]
    data = sorted(k for k in keys if k.startswith(f"{base}/data/") and k.endswith(".json.gz"))
    assert sorted(f["dataFileS3Key"] for f in files) == data
    lines = [
        json.loads(line)
        for key in data
        for line in gzip.decompress((tmp_path / key).read_bytes()).decode().splitlines()
    ]
    assert summary["itemCount"] == sum(f["itemCount"] for f in files) == len(lines) > 0
    assert all(set(line) == {"Item"} and "S" in line["Item"]["PK"] for line in lines)

    connection = duckdb_over(tmp_path)
    queries = deployed_queries()
    assert set(queries) == {p.name for p in ATHENA.glob("*.sql")}, "every query is deployed"
    tenant_id = clinic.tenant.id
    span = f"from={(visit - timedelta(days=40)).date()}&to={(visit + timedelta(days=40)).date()}"

    # Appointments by month, in the hospital's zone.
    fields = ["booked", "cancelled_by_patient", "cancelled_by_clinic", "attended", "noshow"]
    counted = {
        row["month"]: _nonzero(row, fields)
        for row in _rows(connection, queries["appointments_by_month.sql"], day)
        if row["tenant_id"] == tenant_id
    }
    response = api.call("GET", f"/analytics/appointments?granularity=month&{span}", admin)
    assert response.status_code == 200, response.body
    kept_counters = {
        row["period"]: _nonzero(row["values"], fields) for row in payload(response)["rows"]
    }
    assert counted == {p: v for p, v in kept_counters.items() if v}
    assert sum(v["booked"] for v in counted.values()) == 4
    assert sum(v.get("noshow", 0) for v in counted.values()) == 1

    # Messages by month and channel.
    fields = ["sent", "delivered", "bounced", "suppressed", "failed", "skipped", "sms_segments"]
    counted = {
        (row["month"], row["channel"]): _nonzero(row, fields)
        for row in _rows(connection, queries["messages_by_channel.sql"], day)
        if row["tenant_id"] == tenant_id
    }
    response = api.call(
        "GET", f"/analytics/messages?granularity=month&group_by=channel&{span}", admin
    )
    assert response.status_code == 200, response.body
    kept_counters = {
        (row["period"], row["group"]): _nonzero(row["values"], fields)
        for row in payload(response)["rows"]
    }
    assert counted == {k: v for k, v in kept_counters.items() if v}
    assert sum(v.get("sent", 0) for v in counted.values()) >= 4  # a confirmation each, at least
