"""The API's own description, served without a token."""

from __future__ import annotations

from typing import Any

from chalicelib.api import http
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.api.openapi import build_spec

api = ApiBlueprint(__name__, tag="meta")


@api.route(
    "/openapi.json",
    "GET",
    summary="Read the OpenAPI document",
    roles=None,
    response_schema="openapi-document",
)
def get_openapi(request: ApiRequest) -> dict[str, Any]:
    # Local-only routes are declared (and so described) only where the local runtime runs.
    return build_spec(http.OPERATIONS)
