"""The draw's algorithm and commitments, as a verifier would check them from the revealed values."""

from __future__ import annotations

import hashlib
import hmac
import secrets

import pytest

from chalicelib.domain import draws
from chalicelib.domain.draws import DrawStatus
from chalicelib.domain.errors import Conflict

IDS = [f"p-{n:016x}" for n in range(50)]
SEED = "5f" * 32


def test_the_same_seed_and_list_give_the_same_winners_whatever_the_order() -> None:
    first = draws.pick_winners(SEED, IDS, 5)
    assert len(first) == 5 and len(set(first)) == 5 and set(first) <= set(IDS)
    assert draws.pick_winners(SEED, list(reversed(IDS)), 5) == first
    assert draws.pick_winners(SEED, IDS + IDS[:10], 5) == first  # duplicates count once


def test_another_seed_gives_other_winners() -> None:
    first = draws.pick_winners(SEED, IDS, 5)
    others = {tuple(draws.pick_winners(secrets.token_hex(32), IDS, 5)) for _ in range(5)}
    assert tuple(first) not in others


def test_fewer_eligible_than_winners_all_win_and_none_is_empty() -> None:
    assert sorted(draws.pick_winners(SEED, IDS[:3], 10)) == sorted(IDS[:3])
    assert draws.pick_winners(SEED, [], 3) == []


def test_a_seed_that_is_not_64_lowercase_hex_is_refused() -> None:
    with pytest.raises(ValueError):
        draws.pick_winners("ab", IDS, 1)
    with pytest.raises(ValueError):
        draws.pick_winners(SEED.upper(), IDS, 1)


def test_commitments_match_the_reveal() -> None:
    published = draws.commitment(SEED, list(reversed(IDS)))
    assert published["eligible_count"] == len(IDS)
    assert published["seed_commitment"] == hashlib.sha256(SEED.encode()).hexdigest()
    canonical = "\n".join(sorted(IDS)).encode()
    assert published["eligible_commitment"] == hashlib.sha256(canonical).hexdigest()
    winners = draws.pick_winners(SEED, IDS, 3)
    assert draws.verify(SEED, IDS, 3, published, winners) == []
    assert draws.verify(secrets.token_hex(32), IDS, 3, published, winners)[0].startswith("the seed")
    tampered = draws.verify(SEED, IDS[1:], 3, published, draws.pick_winners(SEED, IDS[1:], 3))
    assert "the eligible list does not match its commitment" in tampered


def test_a_verifier_recomputes_the_draw_from_the_docstring_alone() -> None:
    """What an outsider writes from the documented method (no import of our code): the same
    commitments and the same winners."""
    seed = secrets.token_hex(32)
    published = draws.commitment(seed, IDS)
    winners = draws.pick_winners(seed, IDS, 4)

    eligible = sorted(set(IDS))
    assert (
        hashlib.sha256("\n".join(eligible).encode("utf-8")).hexdigest()
        == (published["eligible_commitment"])
    )
    assert hashlib.sha256(seed.encode("ascii")).hexdigest() == published["seed_commitment"]
    key = bytes.fromhex(seed)
    ranking = sorted(
        eligible, key=lambda p: (hmac.new(key, p.encode(), hashlib.sha256).hexdigest(), p)
    )
    assert ranking[:4] == winners


def test_statuses_move_only_along_the_table() -> None:
    draws.check_transition(DrawStatus.OPEN, DrawStatus.COMMITTED)
    draws.check_transition(DrawStatus.COMMITTED, DrawStatus.DRAWN)
    draws.check_transition(DrawStatus.OPEN, DrawStatus.CANCELLED)
    draws.check_transition(DrawStatus.COMMITTED, DrawStatus.CANCELLED)
    for current, new in (
        (DrawStatus.OPEN, DrawStatus.DRAWN),
        (DrawStatus.DRAWN, DrawStatus.DRAWN),
        (DrawStatus.DRAWN, DrawStatus.CANCELLED),
        (DrawStatus.CANCELLED, DrawStatus.COMMITTED),
    ):
        with pytest.raises(Conflict) as refused:
            draws.check_transition(current, new)
        assert refused.value.code == "invalid_status_change"
    assert set(draws.DRAW_TRANSITIONS) == set(DrawStatus)


def test_a_patient_sees_commitments_and_their_own_win_only() -> None:
    doc = {
        "id": "d-1",
        "name": "Spring",
        "draw_at": "2027-01-01T00:00:00Z",
        "status": "drawn",
        "winners": 1,
        "member_classes": ["vip"],
        "winner_ids": [IDS[0]],
        "eligible_count": 50,
        "seed_commitment": "0" * 64,
        "eligible_commitment": "1" * 64,
    }
    assert draws.patient_view(doc, IDS[0])["won"] is True
    shown = draws.patient_view(doc, IDS[1])
    assert shown["won"] is False and "winner_ids" not in shown and "member_classes" not in shown
