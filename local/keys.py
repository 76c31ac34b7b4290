"""The local identity provider: an RSA key pair standing in for a Cognito user pool.

The private key signs tokens (`python -m local token`); the public key is published as a JWKS
file that the API verifies against through the same code that reads Cognito's JWKS on AWS.
Tokens are shaped like Cognito ID tokens.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_HOURS = 12


@dataclass(frozen=True)
class LocalKeys:
    private_key_path: Path
    jwks_path: Path
    kid: str

    def mint(
        self,
        *,
        issuer: str,
        audience: str,
        role: str,
        tenant_id: str | None = None,
        patient_id: str | None = None,
        subject: str | None = None,
        lifetime_seconds: int = TOKEN_HOURS * 3600,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": subject or str(uuid.uuid4()),
            "iss": issuer,
            "aud": audience,
            "token_use": "id",
            "iat": now,
            "auth_time": now,
            "exp": now + lifetime_seconds,
            "cognito:groups": [role],
            "cognito:username": subject or f"local-{role}",
        }
        if tenant_id:
            claims["custom:tenant_id"] = tenant_id
        if patient_id:
            claims["custom:patient_id"] = patient_id
        claims.update(extra or {})
        key = self.private_key_path.read_bytes()
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})


def ensure_keys(directory: Path) -> LocalKeys:
    """Create the key pair and JWKS once; reuse them so tokens survive a restart."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "jwt-private.pem"
    jwks_path = directory / "jwks.json"
    if not private_path.exists() or not jwks_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        kid = uuid.uuid4().hex
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        public_jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        jwks_path.write_text(json.dumps({"keys": [public_jwk]}, indent=2))
    kid = json.loads(jwks_path.read_text())["keys"][0]["kid"]
    return LocalKeys(private_path, jwks_path, kid)
