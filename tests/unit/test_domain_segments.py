"""Segment membership and campaign rules, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import campaigns, segments
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.patients import age_on
from chalicelib.domain.segments import Entry

TENANT = {"id": "t1", "departments": [{"id": "cardiology", "name": "心内科"}]}


def patient(**fields: Any) -> dict[str, Any]:
    return {"id": "p-1", "name": {"given": "Wei"}, "departments": [], **fields}


def test_record_segments_follow_tags_class_and_departments() -> None:
    doc = patient(
        medical={"conditions": ["hypertension", "myopia"], "risk_flags": ["fall"]},
        member_class="vip",
        departments=["cardiology"],
    )
    assert segments.record_segments(doc) == {
        "chronic",
        "high-risk",
        "member:vip",
        "department:cardiology",
        # Each condition tag is an index of its own: recall rules saved later find them there.
        "condition:hypertension",
        "condition:myopia",
    }
    assert segments.record_segments(patient(medical={"conditions": ["myopia"]})) == {
        "condition:myopia"
    }
    assert segments.record_segments(patient(medical={"risk_flags": []})) == set()


def test_entries_place_birth_dates_and_parent_guarded_patients() -> None:
    child = patient(
        birth_date="2019-05-01",
        guardian={"name": "Li Na", "relationship": "parent", "phone": "+8613800138000"},
    )
    assert segments.entries(child) == {
        Entry("BIRTHS", "2019-05-01#p-1"),
        Entry("SEG#guardians-of-minors", "2019-05-01#p-1"),
    }
    spouse = patient(
        birth_date="1950-01-01",
        guardian={"name": "Li Na", "relationship": "spouse", "phone": "+8613800138000"},
    )
    assert segments.entries(spouse) == {Entry("BIRTHS", "1950-01-01#p-1")}


def test_a_deleted_profile_has_no_entries() -> None:
    doc = patient(medical={"conditions": ["asthma"]}, birth_date="1950-01-01")
    assert segments.entries({**doc, "deleted_at": "2026-11-23T01:00:00Z"}) == set()


def test_changes_are_the_difference() -> None:
    before = patient(medical={"conditions": ["asthma"]}, member_class="vip")
    after = patient(medical={"conditions": ["myopia"]}, member_class="vip")
    left, joined = segments.changes(before, after)
    assert left == {Entry("SEG#chronic", "P#p-1"), Entry("SEG#condition:asthma", "P#p-1")}
    assert joined == {Entry("SEG#condition:myopia", "P#p-1")}
    left, joined = segments.changes(None, before)
    assert left == set() and Entry("SEG#member:vip", "P#p-1") in joined


@pytest.mark.parametrize("years", [18, 65])
def test_latest_birth_date_agrees_with_age_on(years: int) -> None:
    day = date(2023, 1, 1)
    while day < date(2029, 1, 1):
        cutoff = segments.latest_birth_date(day, years)
        assert age_on(cutoff, day) >= years, (day, cutoff)
        assert age_on(cutoff + timedelta(days=1), day) < years, (day, cutoff)
        day += timedelta(days=1)


def test_time_dependent_segments_are_cut_at_query_time() -> None:
    today = date(2026, 11, 23)
    elderly = segments.query_for("elderly", today)
    assert elderly == segments.SegmentQuery("BIRTHS", below="1961-11-24")
    assert elderly.below is not None
    assert "1961-11-23#p-1" < elderly.below < "1961-11-24#p-1"
    minors = segments.query_for("guardians-of-minors", today)
    assert minors == segments.SegmentQuery("SEG#guardians-of-minors", at_least="2008-11-24")
    assert segments.query_for("chronic", today) == segments.SegmentQuery("SEG#chronic")


def test_unknown_segments_are_not_found() -> None:
    assert segments.check_segment("department:cardiology", TENANT) == "department:cardiology"
    assert segments.check_segment("member:gold", TENANT) == "member:gold"
    for name in ("department:surgery", "member:Gold!", "everyone", "SEG#chronic"):
        with pytest.raises(NotFound):
            segments.check_segment(name, TENANT)


def test_cursor_sort_keys_are_only_ours() -> None:
    assert segments.is_entry_sort_key("P#p-0123456789abcdef")
    # Birth-sorted entries keep the month only (the date is sealed in the profile).
    assert segments.is_entry_sort_key("1961-04#p-0123456789abcdef")
    assert not segments.is_entry_sort_key("1961-04-12#p-0123456789abcdef")
    assert not segments.is_entry_sort_key("T#other#P#p-1")
    assert not segments.is_entry_sort_key("P#p-1#x")


def test_definitions_list_departments_and_classes() -> None:
    ids = [d["id"] for d in segments.definitions(TENANT, ["vip", "gold", "vip"])]
    assert ids == [
        "chronic",
        "high-risk",
        "elderly",
        "guardians-of-minors",
        "department:cardiology",
        "member:gold",
        "member:vip",
    ]


def test_campaign_text_may_use_only_campaign_fields() -> None:
    campaigns.check_message({"text": {"en": "{{clinic}}: hi {{first_name}} {{link}}"}})
    with pytest.raises(ValidationFailed) as failure:
        campaigns.check_message({"text": {"en": "on {{date}}", "zh-CN": "{{ oops"}})
    assert {d.path for d in failure.value.details} == {
        "$.message.text.en",
        "$.message.text.zh-CN",
    }


def test_appointment_template_kinds_cannot_carry_a_campaign() -> None:
    for kind in ("reminder", "nonsense"):
        with pytest.raises(ValidationFailed) as failure:
            campaigns.check_message({"template": kind})
        assert failure.value.details[0].path == "$.message.template"


def test_text_is_picked_for_the_patients_language() -> None:
    texts = {"zh-CN": "中文", "en": "English"}
    assert campaigns.pick_text(texts, "en-GB", "zh-CN") == "English"
    assert campaigns.pick_text(texts, "zh-TW", "en") == "中文"
    assert campaigns.pick_text({"en": "English"}, "zh-CN", "zh-CN") == "English"


def test_rate_windows_and_status() -> None:
    moment = datetime(2026, 11, 23, 1, 0, 42, tzinfo=UTC)
    assert campaigns.window(moment) == (
        "2026-11-23T01:00",
        datetime(2026, 11, 23, 1, 1, tzinfo=UTC),
    )
    assert campaigns.rate_per_minute({}) == 60
    assert campaigns.rate_per_minute({"campaigns": {"rate_per_minute": 2}}) == 2
    progress = {"targeted": 3, "started": 3, "sent": 2, "suppressed": 1, "failed": 0, "held_out": 0}
    assert campaigns.status(progress, exhausted=True) == "done"
    assert campaigns.status(progress, exhausted=False) == "running"
    assert campaigns.status({**progress, "sent": 1}, exhausted=True) == "running"


def test_a_fulfilled_visit_is_indexed_by_its_type_and_as_any_visit() -> None:
    assert segments.visit_entries("p-1", "procedure") == {
        Entry("SEG#visited:procedure", "P#p-1"),
        Entry("SEG#visited:any", "P#p-1"),
    }
