"""API Gateway proxy events, as Lambda receives them, for the cold-start runs."""

from __future__ import annotations

import uuid
from typing import Any


def get_event(resource: str, path: str, path_params: dict[str, str], token: str) -> dict[str, Any]:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {token}", "Accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_params,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


class Context:
    function_name = "careloop-prod-api_handler"
    memory_limit_in_mb = 256
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:careloop-prod-api_handler"
    )
    aws_request_id = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
