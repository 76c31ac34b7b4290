"""The pure rules of satisfaction and complaints: detractors, keywords, categories, settings,
status transitions, deadlines and what the patient sees."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain import complaints as c
from chalicelib.domain import satisfaction as s
from chalicelib.domain.errors import Conflict, Problems, ValidationFailed

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def settings(**own: object) -> s.SatisfactionSettings:
    return s.settings_of({"satisfaction": own})


@pytest.mark.parametrize(("score", "detractor"), [(0, True), (6, True), (7, False), (10, False)])
def test_detractors_are_at_or_below_the_threshold(score: int, detractor: bool) -> None:
    verdict = s.verdict({"score": score}, settings())
    assert verdict["detractor"] is detractor and verdict["recovery"] is detractor
    assert s.verdict({"score": 4}, settings(detractor_max_score=3))["recovery"] is False


def test_keywords_ignore_case_and_width_and_match_chinese_anywhere() -> None:
    keywords = ["rude", "投诉", "Dirty room"]
    assert s.flagged_keywords("The nurse was RUDE!", keywords) == ["rude"]
    assert s.flagged_keywords("ＲＵＤＥ staff", keywords) == ["rude"]
    assert s.flagged_keywords("我要投诉挂号处", keywords) == ["投诉"]
    assert s.flagged_keywords("a  dirty\nroom", keywords) == ["Dirty room"]
    assert s.flagged_keywords("prudent and kind", keywords) == [], "a word, not inside one"
    assert s.flagged_keywords("", keywords) == []


def test_a_flagged_comment_opens_recovery_and_takes_no_thank_you() -> None:
    own = settings(flag_keywords=["rude"], thank_you={"enabled": True, "review_url": "https://r"})
    flagged = s.verdict({"score": 10, "comment": "rude"}, own)
    assert flagged["recovery"] and not flagged["thank_you"] and s.flagged_by(flagged) == ["keyword"]
    assert s.verdict({"score": 9, "comment": "great"}, own)["thank_you"]
    assert not s.verdict({"score": 8}, own)["thank_you"], "passives are not thanked"
    assert not s.verdict({"score": 10}, settings())["thank_you"], "only when configured"


def test_the_worst_poor_aspect_names_the_category() -> None:
    assert s.recovery_category({"score": 2}) == c.ComplaintCategory.OTHER
    assert (
        s.recovery_category({"waiting_time": 3, "staff": 2}) == c.ComplaintCategory.STAFF_ATTITUDE
    )
    worst = {"waiting_time": 2, "cleanliness": 1}
    assert s.recovery_category(worst) == c.ComplaintCategory.FACILITIES


def test_settings_defaults_and_checks() -> None:
    assert settings()["min_days_between"] == 90 and settings()["recovery_hours"] == 48
    assert settings()["enabled"] is False and settings(enabled=True)["delay_days"] == 1
    problems = Problems()
    s.check_settings({"satisfaction": {"thank_you": {"enabled": True}}}, problems)
    s.check_settings({"satisfaction": {"flag_keywords": ["Rude", "rude"]}}, problems)
    with pytest.raises(ValidationFailed) as raised:
        problems.raise_if_any()
    paths = [d.path for d in raised.value.details]
    assert paths == ["$.satisfaction.thank_you.review_url", "$.satisfaction.flag_keywords"]


def test_the_builtin_plan_asks_once_and_hands_nothing_over() -> None:
    plan = s.builtin_plan(settings(delay_days=2, send_time="09:15"))
    assert plan["check_ins"] == [{"day": 2, "questionnaire": "satisfaction"}]
    assert plan["send_time"] == "09:15" and plan["hand_over"] is False
    assert plan["id"].startswith(s.BUILTIN_PREFIX)
    assert s.window_start(NOW, 90) == "2026-08-24T06:00:00Z"


def complaint(**extra: object) -> c.Complaint:
    return c.new_complaint(
        complaint_id="c-0123456789abcdef",
        reference=c.reference_of(2026, 123),
        patient_id="p-1",
        source=c.ComplaintSource.PATIENT,
        category=c.ComplaintCategory.BILLING,
        department="cardiology",
        text="charged twice",
        now=NOW,
        recovery_hours=48,
        by="sub-1",
        role="patient",
        extra=dict(extra),
    )


def test_reference_and_deadline() -> None:
    filed = complaint()
    assert filed["reference"] == "C-2026-000123"
    assert filed["deadline"] == "2026-11-24T06:00:00Z"
    assert not c.is_overdue(filed, datetime(2026, 11, 24, 5, 59, tzinfo=UTC))
    assert c.is_overdue(filed, datetime(2026, 11, 24, 6, 0, tzinfo=UTC))
    escalated = c.escalated(filed, ["lead-b", "lead-a"], NOW)
    assert escalated["escalated_to"] == ["lead-a", "lead-b"]
    assert not c.is_overdue(escalated, datetime(2026, 12, 1, tzinfo=UTC)), "escalates once"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (["in_progress", "resolved"], True),
        (["resolved"], True),
        (["closed_without_resolution"], True),
        (["in_progress", "in_progress"], False),
        (["resolved", "in_progress"], False),
        (["closed_without_resolution", "resolved"], False),
    ],
)
def test_transitions(path: list[str], allowed: bool) -> None:
    current = complaint()

    def walk() -> c.Complaint:
        moved = current
        for status in path:
            moved = c.changed_status(
                moved,
                c.ComplaintStatus(status),
                note="n",
                closing_message=None,
                by="s",
                role="staff",
                now=NOW,
            )
        return moved

    if allowed:
        done = walk()
        assert [h["status"] for h in done["history"]] == ["open", *path]
    else:
        with pytest.raises(Conflict) as raised:
            walk()
        assert raised.value.code == "invalid_status_change"


def test_ending_records_times_and_the_closing_message_rules() -> None:
    def end(filed: c.Complaint, status: str, message: str | None) -> c.Complaint:
        return c.changed_status(
            filed,
            c.ComplaintStatus(status),
            note=None,
            closing_message=message,
            by="s",
            role="staff",
            now=NOW,
        )

    resolved = end(complaint(), "resolved", None)
    assert resolved["resolved_at"] == resolved["closed_at"] == "2026-11-22T06:00:00Z"
    assert c.closing_message_due(resolved), "the template answers a filed complaint"
    recovery = complaint(source="satisfaction")
    assert not c.closing_message_due(end(recovery, "resolved", None))
    assert c.closing_message_due(end(recovery, "resolved", "Sorry"))
    assert not c.closing_message_due(end(complaint(), "closed_without_resolution", None))
    with pytest.raises(ValidationFailed):
        c.changed_status(
            complaint(),
            c.ComplaintStatus.IN_PROGRESS,
            note=None,
            closing_message="x",
            by="s",
            role="staff",
            now=NOW,
        )


def test_the_patient_sees_no_notes_no_handlers_and_no_recovery_tasks() -> None:
    worked = c.changed_status(
        complaint(),
        c.ComplaintStatus.IN_PROGRESS,
        note="internal",
        closing_message=None,
        by="staff-sub",
        role="staff",
        now=NOW,
    )
    shown = c.patient_view(worked)
    assert "internal" not in str(shown) and "staff-sub" not in str(shown)
    assert "created_by" not in shown and "patient_id" not in shown
    assert not c.visible_to_patient(complaint(source="satisfaction"))
