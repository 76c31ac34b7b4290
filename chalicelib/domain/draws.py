"""Verifiable draws among a tenant's members. Pure rules, no I/O.

A draw is announced (`open`), then closed (`committed`): the list of eligible patients (the
members of its classes at that moment) and a random seed are fixed and stored, and only their
SHA-256 commitments are published. At or after `draw_at` it runs (`drawn`): the winners are
computed from the seed and the list by `pick_winners`, and the seed and the list are revealed,
so that anyone can check that they match the commitments published before the draw and rerun it.

How to verify a draw (everything needed is in `GET /draws/{id}/verification` once it has run):

1. `eligible` is the list of patient ids, sorted (by their UTF-8 bytes, which for our ids,
   lowercase ASCII, is plain string order), no duplicates. Its canonical text is the ids joined
   by a single newline (`\\n`), no trailing newline, UTF-8. Check that
   `sha256(canonical text).hexdigest() == eligible_commitment` and `len(eligible) ==
   eligible_count`.
2. `seed` is 64 lowercase hex digits (32 random bytes). Check that
   `sha256(seed as its 64 ASCII characters).hexdigest() == seed_commitment`
   (shell: `printf %s "$SEED" | sha256sum`).
3. Rank every eligible id by `HMAC-SHA256(key = the 32 bytes the seed's hex stands for,
   message = the id's UTF-8 bytes)`, as lowercase hex; ascending, ties (never seen) broken by
   the id. The winners are the first `winners` ids of that ranking, in ranking order (all of
   them if fewer are eligible). Shell, for one id:
   `printf %s "$ID" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$SEED"`.

Running again with the same seed and list gives the same winners; any other seed gives an
unrelated ranking. The seed is made by the server (`secrets.token_hex(32)`) when the draw is
closed and is not shown to anyone (staff included) until the draw has run.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum
from typing import NotRequired, TypedDict

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Conflict, Problems

ALGORITHM = "hmac-sha256-rank-v1"
# The module docstring's steps, as `GET /draws/{id}/verification` states them.
VERIFICATION_STEPS = (
    "eligible_commitment = SHA-256 of the eligible ids (sorted, unique) joined by '\\n', no "
    "trailing newline, UTF-8; eligible_count = their number",
    "seed_commitment = SHA-256 of the seed's 64 lowercase hex characters (ASCII)",
    "rank each eligible id by HMAC-SHA256(key = bytes.fromhex(seed), message = the id in "
    "UTF-8), lowercase hex, ascending (ties by the id); winner_ids = the first `winners` ids",
)
MAX_WINNERS = 1000


class DrawStatus(StrEnum):
    OPEN = "open"  # announced; who is eligible is not fixed yet
    COMMITTED = "committed"  # eligible list and seed fixed, their hashes published
    DRAWN = "drawn"  # winners picked; seed and list revealed
    CANCELLED = "cancelled"


DRAW_TRANSITIONS: dict[DrawStatus, frozenset[DrawStatus]] = {
    DrawStatus.OPEN: frozenset({DrawStatus.COMMITTED, DrawStatus.CANCELLED}),
    DrawStatus.COMMITTED: frozenset({DrawStatus.DRAWN, DrawStatus.CANCELLED}),
    DrawStatus.DRAWN: frozenset(),
    DrawStatus.CANCELLED: frozenset(),
}


def check_transition(current: DrawStatus, new: DrawStatus) -> None:
    if new not in DRAW_TRANSITIONS[current]:
        raise Conflict(f"a {current} draw cannot become {new}", code="invalid_status_change")


class Commitment(TypedDict):
    seed_commitment: str
    eligible_commitment: str
    eligible_count: int


class Draw(TypedDict):
    """A draw as stored (the seed and the list are kept apart from it until revealed)."""

    id: str
    name: str
    member_classes: list[str]
    winners: int
    draw_at: str
    status: DrawStatus
    created_at: str
    created_by: str
    committed_at: NotRequired[str]
    seed_commitment: NotRequired[str]
    eligible_commitment: NotRequired[str]
    eligible_count: NotRequired[int]
    drawn_at: NotRequired[str]
    winner_ids: NotRequired[list[str]]
    cancelled_at: NotRequired[str]


def canonical_eligible(patient_ids: list[str]) -> bytes:
    """The list's canonical text: sorted, unique ids joined by newlines (no trailing one)."""
    return "\n".join(sorted(set(patient_ids))).encode("utf-8")


def eligible_commitment(patient_ids: list[str]) -> str:
    return hashlib.sha256(canonical_eligible(patient_ids)).hexdigest()


def seed_commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode("ascii")).hexdigest()


def commitment(seed: str, patient_ids: list[str]) -> Commitment:
    return Commitment(
        seed_commitment=seed_commitment(seed),
        eligible_commitment=eligible_commitment(patient_ids),
        eligible_count=len(set(patient_ids)),
    )


def rank(seed: str, patient_id: str) -> str:
    """An id's place in the draw: HMAC-SHA256 under the seed's bytes, as hex."""
    return hmac.new(bytes.fromhex(seed), patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def pick_winners(seed: str, patient_ids: list[str], count: int) -> list[str]:
    """The draw itself: the `count` eligible ids of lowest rank, in rank order. Deterministic
    in (seed, list): see the module's docstring to rerun it."""
    if len(seed) != 64 or seed != seed.lower():
        raise ValueError("the seed is 64 lowercase hex digits")
    ranked = sorted(set(patient_ids), key=lambda p: (rank(seed, p), p))
    return ranked[:count]


def verify(
    seed: str,
    patient_ids: list[str],
    count: int,
    published: Commitment,
    winners: list[str],
) -> list[str]:
    """Everything a verifier checks, as the list of what does not hold (empty: the draw is
    what it was committed to be)."""
    problems = []
    if seed_commitment(seed) != published["seed_commitment"]:
        problems.append("the seed does not match its commitment")
    if eligible_commitment(patient_ids) != published["eligible_commitment"]:
        problems.append("the eligible list does not match its commitment")
    if len(set(patient_ids)) != published["eligible_count"]:
        problems.append("the eligible list does not have the published count")
    if pick_winners(seed, patient_ids, count) != winners:
        problems.append("rerunning the draw gives other winners")
    return problems


def check_new_draw(body: Document, now: datetime, draw_at: datetime) -> None:
    problems = Problems()
    if draw_at <= now:
        problems.add("$.draw_at", "must be in the future")
    classes = body["member_classes"]
    if len(classes) != len(set(classes)):
        problems.add("$.member_classes", "name each class once")
    problems.raise_if_any()


def segments_of(draw: Draw | Document) -> list[str]:
    """The `member:<class>` segments whose members are eligible."""
    return [f"member:{c}" for c in draw["member_classes"]]


def public_view(draw: Draw | Document, *, reveal: Document | None = None) -> Document:
    """A draw as the API shows it to staff: commitments once committed; after the run, the
    winners and (with `reveal`) the seed and eligible list."""
    shown: Document = {k: v for k, v in draw.items() if k != "winner_ids"}
    if draw["status"] == DrawStatus.DRAWN:
        shown["winner_ids"] = list(draw.get("winner_ids", []))
        if reveal is not None:
            shown.update(reveal)
    return shown


def patient_view(draw: Draw | Document, patient_id: str) -> Document:
    """What a patient sees of a draw they were eligible for: its name, time, status, the
    commitments, and whether they won; never the other members."""
    shown: Document = {
        "id": draw["id"],
        "name": draw["name"],
        "draw_at": draw["draw_at"],
        "status": str(draw["status"]),
        "winners": draw["winners"],
    }
    for key in ("seed_commitment", "eligible_commitment", "eligible_count"):
        if key in draw:
            shown[key] = draw[key]
    if draw["status"] == DrawStatus.DRAWN:
        shown["won"] = patient_id in draw.get("winner_ids", [])
    return shown
