"""AWS clients, created on first use and kept for the container's life (botocore clients are
thread-safe). They are botocore's own, from one botocore session: boto3 adds nothing used here
and costs ~200 ms to import on a cold start; a client still costs ~80 ms to make.

Standard retry mode: three attempts with backoff for throttling and 5xx. What still fails after
that is classified by `adapters.failures` and left to the caller's own retry (a state machine's
Retry, a client's Retry-After). Timeouts are short so that a hung call fails well inside the
Lambda function's own timeout.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from chalicelib.settings import get_settings

# Making clients from one botocore session is not thread-safe (the local server's threads).
_making = threading.Lock()


@cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@cache
def client(service: str) -> Any:
    from botocore.config import Config

    settings = get_settings()
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10
    )
    with _making:
        return _session().create_client(
            service,
            region_name=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            config=config,
        )
