"""The table's daily export for analysts: the scheduled function starts one export a day however
often it is retried, the emulator writes it in AWS's layout, and the Athena queries the platform
template deploys (infra/athena/*.sql, run here with DuckDB over the export) count exactly what
the dashboards' incremental counters say. A day's runs hours apart (past the client token's 8
hours) leave one export, a failed export's retry is counted once, and a day's partition holding
two completed exports (as runs left it before they looked) is counted once too."""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import UTC, datetime, timedelta
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
    # As Athena reads a partition (storage.location.template): every file under the day's
    # AWSDynamoDB/, of every export, manifests included (a line without the column's key is a
    # row whose `item` is NULL; what is not JSON, the checksums, is skipped as the SerDe's
    # ignore.malformed.json skips it; an empty `_started` holds no row). Athena's hidden column
    # "$path" is the file's name.
    connection.execute(
        # The template's own names and types, and the test's folder: nothing from outside.
        f"""CREATE VIEW {table["Name"]} AS
        SELECT {named}, {", ".join(partitions)}, filename AS "$path" FROM read_json(
            '{files}*/AWSDynamoDB/**',
            format = 'newline_delimited',
            columns = {_names_and_types(columns)},
            hive_partitioning = true,
            hive_types = {_names_and_types(partitions)},
            filename = true,
            ignore_errors = true
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
    # The bookings' month and the visits' may differ (the shared clock may stand at a month's end).
    assert sum(v.get("booked", 0) for v in counted.values()) == 4
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


def _counted(runtime: Any, day: str, prefix: str, into: Path) -> dict[str, list[dict[str, Any]]]:
    """Both deployed queries' rows for `day`, over what is under `prefix` in the bucket."""
    from chalicelib.settings import get_settings

    _download(runtime, get_settings().export_bucket, prefix, into)
    connection = duckdb_over(into)
    return {name: _rows(connection, sql, day) for name, sql in deployed_queries().items()}


def _booked(counted: dict[str, list[dict[str, Any]]], tenant_id: str) -> int:
    rows = counted["appointments_by_month.sql"]
    return sum(int(row["booked"]) for row in rows if row["tenant_id"] == tenant_id)


def _next_utc_day(hour: int) -> datetime:
    """`hour`:00 UTC on the day after the clock's UTC day."""
    from chalicelib import clock

    day = clock.now().astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_runs_of_one_day_hours_apart_leave_one_export_that_is_counted_once(
    runtime: Any, journey: Any, tmp_path: Path
) -> None:
    import app as app_module
    from chalicelib.settings import get_settings
    from local.schedules import run_scheduled

    patient: Journey = journey()
    patient.book(local_moment(days=3, hour=10))
    tenant_id = patient.clinic.tenant.id

    # A run by hand in the morning (an operator sending the schedule's event now), then the
    # schedule's own at 17:00: nine hours apart, past the client token's eight.
    morning = _next_utc_day(8)
    day = morning.date().isoformat()
    move_to(runtime, morning)
    assert run_scheduled(app_module.analytics_export, "analytics_export", morning) is None
    (first,) = _started_export(runtime, day)
    assert _completed(runtime, first["ExportArn"])["ExportStatus"] == "COMPLETED"
    evening = morning + timedelta(hours=9)
    move_to(runtime, evening)
    assert run_scheduled(app_module.analytics_export, "analytics_export", evening) is None
    (only,) = _started_export(runtime, day)
    assert only["ExportArn"] == first["ExportArn"]

    prefix = f"table/export_date={day}/"
    counted = _counted(runtime, day, prefix, tmp_path / "day")
    assert _booked(counted, tenant_id) == 1

    # A second completed export in the same partition, as runs hours apart started before
    # they looked for the day's: the queries count the newest alone, not both.
    second = runtime.client("dynamodb").export_table_to_point_in_time(
        TableArn=get_settings().table_arn,
        S3Bucket=get_settings().export_bucket,
        S3Prefix=f"table/export_date={day}",
        ExportFormat="DYNAMODB_JSON",
        ClientToken="a-run-before-the-fix",
    )["ExportDescription"]
    assert _completed(runtime, second["ExportArn"])["ExportStatus"] == "COMPLETED"
    assert len(_started_export(runtime, day)) == 2
    newest = f"{prefix}AWSDynamoDB/{second['ExportArn'].rsplit('/', 1)[1]}/"
    assert _counted(runtime, day, prefix, tmp_path / "both") == _counted(
        runtime, day, newest, tmp_path / "newest"
    )
    assert _booked(_counted(runtime, day, prefix, tmp_path / "again"), tenant_id) == 1


def test_a_failed_export_and_the_retry_that_follows_are_counted_once(
    runtime: Any, journey: Any, tmp_path: Path
) -> None:
    import app as app_module
    from chalicelib.settings import get_settings
    from local.schedules import run_scheduled
    from local.table_exports import fail_next_export

    patient: Journey = journey()
    patient.book(local_moment(days=3, hour=11))
    tenant_id = patient.clinic.tenant.id

    # The day's export fails part way: a data file written, no manifest.
    moment = _next_utc_day(17)
    day = moment.date().isoformat()
    prefix = f"table/export_date={day}/"
    move_to(runtime, moment)
    fail_next_export("UNKNOWN")
    assert run_scheduled(app_module.analytics_export, "analytics_export", moment) is None
    (failed,) = _started_export(runtime, day)
    assert _completed(runtime, failed["ExportArn"])["ExportStatus"] == "FAILED"
    failed_id = failed["ExportArn"].rsplit("/", 1)[1]
    bucket = get_settings().export_bucket
    left = _download(runtime, bucket, f"{prefix}AWSDynamoDB/{failed_id}/", tmp_path / "failed")
    assert any("/data/" in key for key in left)
    assert not any("manifest" in key for key in left)

    # Run again within the failed export's token's 8 hours (a retry, or by hand): another
    # export, under another token, completes beside it.
    move_to(runtime, moment + timedelta(hours=1))
    assert run_scheduled(app_module.analytics_export, "analytics_export", moment) is None
    retried = [e for e in _started_export(runtime, day) if e["ExportArn"] != failed["ExportArn"]]
    (retry,) = retried
    assert _completed(runtime, retry["ExportArn"])["ExportStatus"] == "COMPLETED"
    # And once more: the completed export is found, none other is started.
    assert run_scheduled(app_module.analytics_export, "analytics_export", moment) is None
    assert len(_started_export(runtime, day)) == 2

    retry_id = retry["ExportArn"].rsplit("/", 1)[1]
    counted = _counted(runtime, day, prefix, tmp_path / "day")
    alone = _counted(runtime, day, f"{prefix}AWSDynamoDB/{retry_id}/", tmp_path / "retry")
    assert counted == alone
    assert _booked(counted, tenant_id) == 1
