"""The audit chain's rules, alone: hashing, linking, and naming the first broken link."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from chalicelib.domain.audit import (
    GENESIS_HASH,
    AccessLogNames,
    Activity,
    ActorKind,
    AuditEntry,
    access_log_line,
    chained,
    first_broken_link,
    outside_departments,
    pseudonym,
    retention_expiry,
)

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _activity(action: str = "get_patient", **overrides: object) -> Activity:
    fields: dict[str, object] = {
        "actor": {"kind": ActorKind.PERSON, "subject": "sub-1", "role": "staff"},
        "action": action,
        "subjects": ("a" * 32,),
        "records": ({"type": "appointment", "id": "a-1"},),
        "fields": (),
        "outcome": "200",
        "source": {"ip": "10.0.0.1"},
        **overrides,
    }
    return Activity(**fields)  # type: ignore[arg-type]


def _chain(length: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    previous = GENESIS_HASH
    for seq in range(1, length + 1):
        entry = chained(
            _activity(f"op{seq}"),
            tenant_id="t-1",
            at=START + timedelta(seconds=seq),
            shard=0,
            seq=seq,
            prev_hash=previous,
            retention_years=6,
        )
        entries.append(entry)
        previous = entry["hash"]
    return entries


def test_an_untouched_chain_holds() -> None:
    assert first_broken_link(_chain(5)) is None
    assert first_broken_link([]) is None


def test_an_edited_entry_is_the_first_broken_link() -> None:
    entries = _chain(5)
    entries[2]["outcome"] = "404 not_found"
    assert first_broken_link(entries) == {
        "shard": 0,
        "seq": 3,
        "reason": "its content does not match its hash",
    }


def test_an_edited_entry_whose_hash_was_recomputed_breaks_the_next_link() -> None:
    from chalicelib.domain.audit import entry_hash

    entries = _chain(5)
    entries[1]["actor"] = {"kind": ActorKind.PERSON, "subject": "someone-else", "role": "admin"}
    entries[1]["hash"] = entry_hash(entries[1])
    assert first_broken_link(entries) == {
        "shard": 0,
        "seq": 3,
        "reason": "it does not follow the entry before it",
    }


def test_a_removed_or_inserted_entry_is_found() -> None:
    entries = _chain(5)
    assert first_broken_link(entries[:1] + entries[2:]) == {
        "shard": 0,
        "seq": 2,
        "reason": "an entry is missing here",
    }
    forged = copy.deepcopy(entries[1])
    assert first_broken_link([*entries[:2], forged, *entries[2:]])["seq"] == 3  # type: ignore[index]


def test_the_hash_ignores_nothing_but_itself_and_the_ttl() -> None:
    entry = _chain(1)[0]
    for field, value in (("fields", ["email"]), ("subjects", []), ("source", {"ip": "1.2.3.4"})):
        edited = copy.deepcopy(entry)
        edited[field] = value  # type: ignore[literal-required]
        assert first_broken_link([edited]) is not None, field
    kept = copy.deepcopy(entry)
    kept["expires_at"] = 0
    assert first_broken_link([kept]) is None


def test_an_entry_moved_to_another_chain_is_found() -> None:
    from chalicelib.domain.audit import verification

    moved = _chain(3)
    report = verification("t-1", "2026-12-07", {0: moved[:2], 5: moved[2:]})
    assert report["chains"] == 2 and report["entries"] == 3 and not report["intact"]
    # Chain 0 holds, ending at 2; chain 5 starts at 3, so its first entry is missing.
    assert report["first_broken"] == {"shard": 5, "seq": 1, "reason": "an entry is missing here"}


def test_a_pseudonym_is_stable_per_key_and_names_no_one() -> None:
    one, other = b"k" * 32, b"j" * 32
    assert pseudonym(one, "p-1") == pseudonym(one, "p-1")
    assert pseudonym(one, "p-1") != pseudonym(other, "p-1") != pseudonym(one, "p-2")
    assert "p-1" not in pseudonym(one, "p-1") and len(pseudonym(one, "p-1")) == 32


def test_a_whole_day_expires_together_after_the_retention() -> None:
    expiry = datetime.fromtimestamp(retention_expiry("2026-12-07", 6), UTC)
    assert expiry.date().isoformat() in ("2032-12-08", "2032-12-07")


def test_break_glass_only_where_both_sides_have_departments() -> None:
    assert outside_departments(["cardiology"], ["dermatology"])
    assert not outside_departments(["cardiology"], ["cardiology", "dermatology"])
    assert not outside_departments([], ["dermatology"])
    assert not outside_departments(["cardiology"], [])


def test_the_patients_log_names_staff_as_the_hospital_chooses() -> None:
    entry = _chain(1)[0]
    assert access_log_line(entry, AccessLogNames.ROLE, {"sub-1": "王芳"})["who"] == "hospital staff"
    assert access_log_line(entry, AccessLogNames.NAME, {"sub-1": "王芳"})["who"] == "王芳"
    journey = {**entry, "actor": {"kind": ActorKind.JOURNEY, "subject": "x", "role": "journey"}}
    line = access_log_line(journey, AccessLogNames.NAME, {})  # type: ignore[arg-type]
    assert line["who"] == "CareLoop (automatic)" and "ip" not in str(line)


def test_a_record_id_that_carries_a_patient_id_carries_their_pseudonym_instead() -> None:
    from chalicelib.services.audit import _pseudonymised

    named = {"a" * 32: "p-0123456789abcdef"}
    assert _pseudonymised("campaign#c-1#p-0123456789abcdef", named) == f"campaign#c-1#{'a' * 32}"
    assert _pseudonymised("a-1#v1#reminder", named) == "a-1#v1#reminder"
