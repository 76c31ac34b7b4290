"""boto3 clients, created on first use (boto3 costs ~200 ms to import, a client ~80 ms to make)
and kept for the container's life. botocore clients are thread-safe."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalicelib.settings import get_settings


@cache
def client(service: str) -> Any:
    import boto3

    settings = get_settings()
    return boto3.client(
        service, region_name=settings.region, endpoint_url=settings.aws_endpoint_url
    )
