"""boto3 clients, created on first use (boto3 costs ~200 ms to import, a client ~80 ms to make)
and kept for the container's life. botocore clients are thread-safe.

Standard retry mode: three attempts with backoff for throttling and 5xx. What still fails after
that is classified by `adapters.failures` and left to the caller's own retry (a state machine's
Retry, a client's Retry-After). Timeouts are short so that a hung call fails well inside the
Lambda function's own timeout.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.settings import get_settings


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    settings = get_settings()
    return boto3.client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=3,
            read_timeout=10,
        ),
    )
