"""Questionnaire definitions, answers and scoring, without I/O."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.domain import questionnaires as q
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.questionnaire_starters import (
    CHRONIC_CHECK_IN,
    POST_DISCHARGE,
    POST_OPERATIVE,
    SATISFACTION,
    STARTERS,
)


def paths(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d.path for d in error.value.details]


@pytest.mark.parametrize("definition", STARTERS.values(), ids=list(STARTERS))
def test_every_starter_is_a_valid_definition(definition: dict[str, Any]) -> None:
    q.check_definition(definition)
    for item in definition["items"]:
        assert set(item["text"]) == {"zh-CN", "en"}, "text in both languages"


def test_definition_problems_are_named() -> None:
    bad = copy.deepcopy(POST_OPERATIVE)
    bad["items"].append({"linkId": "pain", "type": "integer", "text": {"en": "again"}})
    bad["items"].append(
        {
            "linkId": "colour",
            "type": "choice",
            "text": {"en": "?"},
            "enableWhen": [{"question": "later", "operator": "=", "answer": 1}],
        }
    )
    bad["scoring"].append({"linkId": "nothing", "operator": "=", "value": 1, "risk": "urgent"})
    bad["scoring"].append({"linkId": "wound", "operator": "=", "value": "green", "risk": "watch"})
    with pytest.raises(ValidationFailed) as error:
        q.check_definition(bad)
    assert paths(error) == [
        "$.items[5].linkId",
        "$.items[6].answerOption",
        "$.items[6].enableWhen",
        "$.scoring[6].linkId",
        "$.scoring[7].value",
    ]


def test_enable_when_follows_earlier_answers() -> None:
    asked = [i["linkId"] for i in q.enabled_items(POST_OPERATIVE, {"fever": False})]
    assert "fever_since" not in asked
    asked = [i["linkId"] for i in q.enabled_items(POST_OPERATIVE, {"fever": True})]
    assert "fever_since" in asked


def test_partial_answers_may_be_incomplete_but_not_wrong() -> None:
    q.check_answers(POST_OPERATIVE, {"pain": 3}, complete=False)
    with pytest.raises(ValidationFailed) as error:
        q.check_answers(POST_OPERATIVE, {"pain": 11, "wound": "purple"}, complete=False)
    assert paths(error) == ["$.answers.pain", "$.answers.wound"]


def test_a_submission_names_each_missing_or_wrong_item() -> None:
    with pytest.raises(ValidationFailed) as error:
        q.check_answers(
            POST_OPERATIVE,
            {"pain": "a lot", "fever_since": "2026-12-01", "extra": 1},
            complete=True,
        )
    assert paths(error) == [
        "$.answers.pain",
        "$.answers.fever_since",
        "$.answers.extra",
        "$.answers.fever",
        "$.answers.mobility",
        "$.answers.wound",
    ]


def test_conditional_required_items_only_when_enabled() -> None:
    q.check_answers(CHRONIC_CHECK_IN, {"measure": "glucose", "glucose": 6.2}, complete=True)
    with pytest.raises(ValidationFailed) as error:
        q.check_answers(
            CHRONIC_CHECK_IN, {"measure": "blood_pressure", "systolic": 150}, complete=True
        )
    assert paths(error) == ["$.answers.diastolic"]


@pytest.mark.parametrize(
    ("definition", "answers", "risk"),
    [
        (
            POST_OPERATIVE,
            {"pain": 2, "wound": "healing", "fever": False, "mobility": "normal"},
            "ok",
        ),
        (
            POST_OPERATIVE,
            {"pain": 5, "wound": "healing", "fever": False, "mobility": "normal"},
            "watch",
        ),
        (
            POST_OPERATIVE,
            {"pain": 5, "wound": "discharge", "fever": False, "mobility": "normal"},
            "urgent",
        ),
        (
            POST_OPERATIVE,
            {"pain": 1, "wound": "healing", "fever": True, "mobility": "normal"},
            "urgent",
        ),
        (
            POST_DISCHARGE,
            {"medication": "some", "new_symptoms": False, "breathless": False},
            "watch",
        ),
        (
            POST_DISCHARGE,
            {"medication": "all", "new_symptoms": False, "breathless": True},
            "urgent",
        ),
        (SATISFACTION, {"score": 9}, "ok"),
        (SATISFACTION, {"score": 3}, "watch"),
        (CHRONIC_CHECK_IN, {"measure": "glucose", "glucose": 12.0}, "watch"),
        (CHRONIC_CHECK_IN, {"measure": "glucose", "glucose": 3.1}, "urgent"),
        (
            CHRONIC_CHECK_IN,
            {"measure": "blood_pressure", "systolic": 145, "diastolic": 90},
            "watch",
        ),
        (
            CHRONIC_CHECK_IN,
            {"measure": "blood_pressure", "systolic": 150, "diastolic": 115},
            "urgent",
        ),
    ],
)
def test_scoring_gives_the_highest_matching_risk(
    definition: dict[str, Any], answers: dict[str, Any], risk: str
) -> None:
    q.check_answers(definition, answers, complete=True)
    assert q.risk_of(definition, answers) == risk


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(ValidationFailed):
        q.check_answers(SATISFACTION, {"score": True}, complete=False)
    assert q.risk_of(SATISFACTION, {"score": False}) == "ok"
