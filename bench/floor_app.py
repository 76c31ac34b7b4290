"""The floor for this stack: a minimal Chalice app answering GET /patients/{id} with one boto3
get_item, no auth, no validation, no logging library."""

from __future__ import annotations

import os
from typing import Any

import boto3
from chalice.app import Chalice

app = Chalice(app_name="floor")
_table = os.environ["TABLE_NAME"]
_tenant = os.environ["BENCH_TENANT"]
_dynamodb = boto3.client("dynamodb")


@app.route("/patients/{patient_id}")
def get_patient(patient_id: str) -> dict[str, Any]:
    key = {"PK": {"S": f"T#{_tenant}#P#{patient_id}"}, "SK": {"S": "PROFILE"}}
    item: dict[str, Any] = _dynamodb.get_item(TableName=_table, Key=key)["Item"]
    return item
