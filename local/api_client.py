"""A thin JSON client over the Chalice test client: the tests, the fault tier's accounting and
the benchmarks call the API through it, in-process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local.aws_calls import api_function, running


@dataclass
class Api:
    http: Any

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        raw = b""
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with running(api_function(path)):
            return self.http.request(method, path, headers=sent, body=raw)


def payload(response: Any) -> Any:
    return json.loads(response.body) if response.body else None
