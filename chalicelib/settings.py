"""Environment → typed settings, read once, lazily.

Nothing else in `chalicelib` reads `os.environ`: it asks `get_settings()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    table_name: str
    jwt_issuer: str
    jwt_audience: str
    jwks_url: str
    aws_endpoint_url: str | None
    max_body_bytes: int

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"missing required environment variable {name}")
    return value


@cache
def get_settings() -> Settings:
    issuer = _required("JWT_ISSUER").rstrip("/")
    return Settings(
        stage=os.environ.get("CARELOOP_STAGE", "prod"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        table_name=_required("TABLE_NAME"),
        jwt_issuer=issuer,
        jwt_audience=_required("JWT_AUDIENCE"),
        # Cognito publishes its signing keys under the issuer; the local runtime points this
        # at a file it writes.
        jwks_url=os.environ.get("JWKS_URL") or f"{issuer}/.well-known/jwks.json",
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", "65536")),
    )
