"""Linking a patient's app account to their record at a hospital, with a code the hospital sends.

A code is 10 symbols from an alphabet without look-alikes (Crockford's base 32: 50 bits), shown
as XXXXX-XXXXX. Only its SHA-256 digest is stored; it works once, for LINK_CODE_HOURS, and an
account gets MAX_FAILED_REDEMPTIONS wrong tries an hour. A patient at two hospitals links each;
the token speaks for one hospital at a time (its `custom:tenant_id`), the one linked last or the
one the app chose since with `PUT /me/hospital`.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from typing import TypedDict

from chalicelib.domain.errors import invalid

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
LINK_CODE_HOURS = 72
MAX_FAILED_REDEMPTIONS = 5  # per account and clock hour
MAX_INVITATIONS_PER_DAY = 5  # per patient: staff cannot flood a phone with codes
# What a patient might type instead of the symbols (Crockford's reading rules).
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


class InvitationChannel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class LinkCode(TypedDict):
    digest: str
    tenant_id: str
    patient_id: str
    expires_at: int  # epoch seconds
    created_by: str


class AccountLink(TypedDict):
    tenant_id: str
    patient_id: str
    linked_at: str


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def read_code(typed: str) -> str:
    """The code a patient typed, in its stored form: case, spaces and dashes do not matter."""
    code = "".join(typed.upper().split()).replace("-", "").translate(_READ_AS)
    if len(code) != CODE_LENGTH or any(symbol not in ALPHABET for symbol in code):
        raise invalid("$.code", f"a link code is {CODE_LENGTH} letters and digits")
    return code


def digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def masked_phone(e164: str) -> str:
    return f"{e164[:3]}•••{e164[-4:]}"


def masked_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


INVITATION_TEXT = {
    "zh": "{clinic}：您的 CareLoop 绑定码是 {code}，{hours} 小时内在 App 中输入。"
    "我们不会来电索要此码。",
    "en": "{clinic}: your CareLoop link code is {code}. Enter it in the app within {hours} hours. "
    "We will never ask you for it by phone.",
}


def invitation_text(language: str, clinic: str, code: str) -> str:
    template = INVITATION_TEXT["zh" if language.startswith("zh") else "en"]
    return template.format(clinic=clinic, code=shown(code), hours=LINK_CODE_HOURS)
