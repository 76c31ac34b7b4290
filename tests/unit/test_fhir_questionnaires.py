"""Our questionnaires as FHIR Questionnaires and back: valid FHIR, faithful round trips (texts in
every language, options, conditions, bounds, scoring), and a hospital's own Questionnaire
imported, or refused with every unsupported part named by its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.fhir import questionnaire_from_fhir, questionnaire_to_fhir, validate_resource
from chalicelib.domain.fhir.common import TRANSLATION_EXTENSION
from chalicelib.domain.fhir.questionnaires import SCORING_EXTENSION
from chalicelib.domain.questionnaire_starters import POST_OPERATIVE, STARTERS
from chalicelib.schemas import load_schema, validate


def paths(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [d.path for d in error.value.details]


def as_put_body(definition: Any) -> dict[str, Any]:
    """What PUT /questionnaires/{id} takes: the definition without its id."""
    return {k: v for k, v in definition.items() if k != "id"}


# Everything our schema lets a questionnaire say, in one: numbers and booleans as option values,
# several conditions on one item, decimal bounds, three languages, a text missing in the
# default language, and rules on each kind of value.
EVERYTHING: dict[str, Any] = {
    "id": "eye-check",
    "title": {"zh-CN": "眼科复查", "zh-TW": "眼科複查", "en-GB": "Eye check"},
    "items": [
        {
            "linkId": "eye",
            "type": "choice",
            "required": True,
            "text": {"zh-CN": "哪只眼睛？", "en-GB": "Which eye?"},
            "answerOption": [
                {"value": "left", "text": {"zh-CN": "左眼", "en-GB": "Left"}},
                {"value": "right", "text": {"zh-CN": "右眼", "en-GB": "Right"}},
            ],
        },
        {
            "linkId": "sharpness",
            "type": "choice",
            "text": {"en-GB": "How sharp, 1 to 3?"},
            "answerOption": [
                {"value": 1, "text": {"en-GB": "Blurred"}},
                {"value": 2, "text": {"en-GB": "Fair"}},
                {"value": 3, "text": {"en-GB": "Sharp"}},
            ],
        },
        {
            "linkId": "drops",
            "type": "choice",
            "text": {"zh-CN": "按时滴眼药？"},
            "answerOption": [
                {"value": True, "text": {"zh-CN": "是"}},
                {"value": False, "text": {"zh-CN": "否"}},
            ],
        },
        {
            "linkId": "pressure",
            "type": "decimal",
            "minValue": 5,
            "maxValue": 60.5,
            "text": {"zh-CN": "眼压（mmHg）"},
            "enableWhen": [
                {"question": "eye", "operator": "=", "answer": "left"},
                {"question": "sharpness", "operator": "<=", "answer": 2},
                {"question": "drops", "operator": "!=", "answer": False},
            ],
        },
        {
            "linkId": "days",
            "type": "integer",
            "minValue": 0,
            "text": {"zh-CN": "滴药天数"},
            "enableWhen": [{"question": "pressure", "operator": ">", "answer": 21.5}],
        },
        {
            "linkId": "since",
            "type": "date",
            "text": {"zh-CN": "从哪天开始？"},
            "enableWhen": [{"question": "days", "operator": ">=", "answer": 3}],
        },
        {
            "linkId": "notes",
            "type": "string",
            "required": False,
            "text": {"zh-CN": "其他", "zh-TW": "其他"},
            "enableWhen": [{"question": "since", "operator": "=", "answer": "2026-12-01"}],
        },
    ],
    "scoring": [
        {"linkId": "eye", "operator": "=", "value": "left", "risk": "watch"},
        {"linkId": "sharpness", "operator": "=", "value": 1, "risk": "urgent"},
        {"linkId": "drops", "operator": "=", "value": False, "risk": "watch"},
        {"linkId": "pressure", "operator": ">=", "value": 30.5, "risk": "urgent"},
    ],
}


def test_the_everything_example_is_ours() -> None:
    validate("questionnaire-put", as_put_body(EVERYTHING))


@pytest.mark.parametrize(
    "ours", [*STARTERS.values(), EVERYTHING], ids=[*STARTERS, EVERYTHING["id"]]
)
@pytest.mark.parametrize("language", ["zh-CN", "en", "en-GB"])
def test_valid_fhir_and_a_faithful_round_trip(ours: dict[str, Any], language: str) -> None:
    resource = questionnaire_to_fhir(ours, language)
    validate_resource(resource)
    assert resource["status"] == "active" and resource["language"] == language
    assert "items" not in resource and len(resource["item"]) == len(ours["items"])
    assert questionnaire_from_fhir(resource) == ours


def test_texts_are_the_default_language_with_translations() -> None:
    resource = questionnaire_to_fhir(POST_OPERATIVE, "en")
    assert resource["title"] == "Recovery after surgery"
    assert resource["_title"] == {
        "extension": [
            {
                "url": TRANSLATION_EXTENSION,
                "extension": [
                    {"url": "lang", "valueCode": "zh-CN"},
                    {"url": "content", "valueString": "术后恢复随访"},
                ],
            }
        ]
    }
    wound = resource["item"][1]
    assert wound["text"] == "How does the wound look?"
    assert wound["answerOption"][0]["valueCoding"]["code"] == "healing"
    assert wound["answerOption"][0]["valueCoding"]["display"] == "Healing well"


def test_a_text_missing_in_the_default_language_is_only_translations() -> None:
    resource = questionnaire_to_fhir(EVERYTHING, "zh-CN")
    sharpness = resource["item"][1]
    assert "text" not in sharpness
    assert sharpness["_text"]["extension"][0]["extension"][0] == {
        "url": "lang",
        "valueCode": "en-GB",
    }


def test_conditions_bounds_options_and_rules_in_fhir_terms() -> None:
    resource = questionnaire_to_fhir(EVERYTHING, "zh-CN")
    pressure = resource["item"][3]
    assert pressure["enableBehavior"] == "all"
    assert pressure["enableWhen"] == [
        {"question": "eye", "operator": "=", "answerCoding": {"code": "left"}},
        {"question": "sharpness", "operator": "<=", "answerCoding": {"code": "2"}},
        {"question": "drops", "operator": "!=", "answerCoding": {"code": "false"}},
    ]
    assert pressure["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueDecimal": 5},
        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueDecimal": 60.5},
    ]
    assert resource["item"][6]["type"] == "text"  # our long free text
    assert resource["item"][5]["enableWhen"][0]["answerInteger"] == 3
    rules = [e for e in resource["extension"] if e["url"] == SCORING_EXTENSION]
    assert len(rules) == 4
    assert rules[3]["extension"][2] == {"url": "value", "valueDecimal": 30.5}


def test_a_stored_questionnaire_says_its_version() -> None:
    stored = {
        **load_schema("questionnaire-put")["examples"][0],
        "id": "cataract-day-1",
        "source": "tenant",
        "version": 4,
        "created_at": "2026-10-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
    }
    validate("questionnaire", stored)
    resource = questionnaire_to_fhir(stored, "zh-CN")
    validate_resource(resource)
    assert resource["meta"] == {"versionId": "4", "lastUpdated": "2026-11-01T00:00:00Z"}
    assert resource["date"] == "2026-11-01T00:00:00Z"
    back = questionnaire_from_fhir(resource)
    validate("questionnaire-put", as_put_body(back))
    assert back["id"] == "cataract-day-1"
    assert as_put_body(back) == load_schema("questionnaire-put")["examples"][0]


# A hospital's own, as its system exports it: LOINC-coded options, a display code, prefixes,
# translations into languages we do not offer, a single-line string item, no id we could use.
HOSPITAL_PHQ2: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "id": "PHQ-2",
    "url": "https://hospital.example.org/fhir/Questionnaire/PHQ-2",
    "language": "en-US",
    "status": "active",
    "title": "Patient Health Questionnaire-2",
    "_title": {
        "extension": [
            {
                "url": TRANSLATION_EXTENSION,
                "extension": [
                    {"url": "lang", "valueCode": "zh-cn"},
                    {"url": "content", "valueString": "患者健康问卷-2"},
                ],
            },
            {
                "url": TRANSLATION_EXTENSION,
                "extension": [
                    {"url": "lang", "valueCode": "fr"},
                    {"url": "content", "valueString": "Questionnaire sur la santé du patient"},
                ],
            },
        ]
    },
    "code": [{"system": "http://loinc.org", "code": "55757-9"}],
    "item": [
        {
            "linkId": "interest",
            "prefix": "1.",
            "code": [{"system": "http://loinc.org", "code": "44250-9"}],
            "text": "Little interest or pleasure in doing things",
            "type": "choice",
            "required": True,
            "answerOption": [
                {
                    "valueCoding": {
                        "system": "http://loinc.org",
                        "code": "LA6568-5",
                        "display": "Not at all",
                    }
                },
                {
                    "valueCoding": {
                        "system": "http://loinc.org",
                        "code": "LA6569-3",
                        "display": "Several days",
                    }
                },
                {"valueCoding": {"system": "http://loinc.org", "code": "LA6570-1"}},
            ],
        },
        {
            "linkId": "score",
            "text": "Total score",
            "type": "integer",
            "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 6}
            ],
        },
        {"linkId": "comment", "text": "Anything else?", "type": "string", "maxLength": 200},
        {
            "linkId": "severity",
            "text": "Severity",
            "type": "choice",
            "answerOption": [{"valueString": "mild"}, {"valueInteger": 2}],
        },
    ],
}


def test_a_hospitals_questionnaire_is_imported() -> None:
    validate_resource(HOSPITAL_PHQ2)
    definition = questionnaire_from_fhir(HOSPITAL_PHQ2)
    validate("questionnaire-put", as_put_body(definition))
    assert "id" not in definition  # PHQ-2 is not an id of ours: the PUT names one
    assert definition["title"] == {
        "en-US": "Patient Health Questionnaire-2",
        "zh-CN": "患者健康问卷-2",
    }
    interest, score, comment, severity = definition["items"]
    assert interest["answerOption"] == [
        {"value": "LA6568-5", "text": {"en-US": "Not at all"}},
        {"value": "LA6569-3", "text": {"en-US": "Several days"}},
        {"value": "LA6570-1", "text": {"en-US": "LA6570-1"}},
    ]
    assert score == {
        "linkId": "score",
        "type": "integer",
        "text": {"en-US": "Total score"},
        "maxValue": 6,
    }
    assert comment["type"] == "string"
    assert severity["answerOption"] == [
        {"value": "mild", "text": {"en-US": "mild"}},
        {"value": 2, "text": {"en-US": "2"}},
    ]


def test_the_language_comes_from_the_resource_or_the_caller() -> None:
    without = {k: v for k, v in HOSPITAL_PHQ2.items() if k != "language"}
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir(without)
    assert paths(error) == ["$.language"]
    assert questionnaire_from_fhir(without, default_language="en")["title"]["en"] == (
        "Patient Health Questionnaire-2"
    )
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir({**HOSPITAL_PHQ2, "language": "fr"})
    assert paths(error) == ["$.language"]


def test_every_unsupported_part_is_named() -> None:
    unsupported = copy.deepcopy(HOSPITAL_PHQ2)
    unsupported["item"] += [
        {"linkId": "intro", "type": "display", "text": "Over the last 2 weeks..."},
        {
            "linkId": "mood",
            "type": "group",
            "text": "Mood",
            "item": [{"linkId": "down", "type": "boolean", "text": "Feeling down?"}],
        },
        {"linkId": "1.1", "type": "boolean", "text": "Sleep trouble?", "repeats": True},
        {
            "linkId": "meds",
            "type": "choice",
            "text": "Medicines",
            "answerValueSet": "http://hospital.example.org/ValueSet/meds",
        },
        {
            "linkId": "when",
            "type": "dateTime",
            "text": "When?",
            "enableWhen": [{"question": "interest", "operator": "exists", "answerBoolean": True}],
        },
        {
            "linkId": "how_long",
            "type": "integer",
            "enableBehavior": "any",
            "enableWhen": [
                {"question": "score", "operator": ">", "answerInteger": 2},
                {"question": "score", "operator": "<", "answerQuantity": {"value": 1}},
            ],
        },
        {
            "linkId": "weight",
            "type": "decimal",
            "text": "Weight",
            "answerOption": [{"valueString": "heavy"}],
        },
    ]
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir(unsupported)
    assert paths(error) == [
        "$.item[4].type",
        "$.item[5].item",
        "$.item[5].type",
        "$.item[6].repeats",
        "$.item[6].linkId",
        "$.item[7].answerValueSet",
        "$.item[8].type",
        "$.item[9].text",
        "$.item[9].enableBehavior",
        "$.item[9].enableWhen[1].answerQuantity",
        "$.item[10].answerOption",
    ]
    assert "'display' items are not supported" in str(error.value)


def test_invalid_fhir_is_refused_by_the_models_first() -> None:
    broken = copy.deepcopy(HOSPITAL_PHQ2)
    del broken["status"]
    broken["item"][0]["required"] = "very"
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir(broken)
    assert sorted(paths(error)) == ["$.item[0].required", "$.status"]
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir({"resourceType": "Patient"})
    assert paths(error) == ["$.resourceType"]


def test_our_rules_are_named_in_fhir_terms() -> None:
    """Beyond shape, what `check_definition` holds (conditions on earlier items, options on a
    choice, rules on known items), named by the FHIR path it came from."""
    resource = questionnaire_to_fhir(POST_OPERATIVE, "en")
    resource["item"][0]["enableWhen"] = [
        {"question": "mobility", "operator": "=", "answerCoding": {"code": "normal"}}
    ]
    del resource["item"][1]["answerOption"]
    resource["extension"][2]["extension"][0]["valueString"] = "nothing"
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir(resource)
    # The wound's other rule (extension[3]) no longer fits a question without options either.
    assert paths(error) == [
        "$.item[0].enableWhen",
        "$.item[1].answerOption",
        "$.extension[2]",
        "$.extension[3]",
    ]


def test_a_broken_scoring_rule_is_named() -> None:
    resource = questionnaire_to_fhir(POST_OPERATIVE, "en")
    resource["extension"][0]["extension"] = resource["extension"][0]["extension"][:2]
    resource["extension"][1]["extension"][3]["valueCode"] = "panic"
    with pytest.raises(ValidationFailed) as error:
        questionnaire_from_fhir(resource)
    assert paths(error) == ["$.extension[0]", "$.extension[1]"]
    assert "needs value, risk" in str(error.value)


def test_the_same_resource_gives_the_same_definition() -> None:
    assert questionnaire_from_fhir(HOSPITAL_PHQ2) == questionnaire_from_fhir(
        copy.deepcopy(HOSPITAL_PHQ2)
    )
