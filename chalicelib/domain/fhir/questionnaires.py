"""Our questionnaires as FHIR Questionnaires, and back.

Ours are FHIR-shaped but not FHIR: `items` not `item`, texts as language maps, no status. Going
out, the text in the default language is the value and the others are HL7 translation
extensions; min/max use HL7's minValue/maxValue extensions; the scoring rules (no FHIR home)
are extensions of ours, so a round trip keeps them. Choice options are Codings whose code is
the option's value; a value that is not a string keeps its JSON type in an extension of ours.

Coming in (ours round-tripped, or a hospital's own), everything our questionnaires cannot do is
refused by path (`$.item[2].type`), all at once, never dropped silently; what changes nothing
for the patient (codes, prefixes, extensions of display) is left behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

from chalicelib.domain.common import Document
from chalicelib.domain.errors import FieldError, Problems, ValidationFailed
from chalicelib.domain.fhir.common import (
    LANGUAGES,
    STRUCTURE_DEFINITION_BASE,
    TRANSLATION_EXTENSION,
    Resource,
    Value,
    option_code,
    put_translated,
    typed_value,
    with_meta,
)
from chalicelib.domain.questionnaires import OPERATORS, check_definition

SCORING_EXTENSION = STRUCTURE_DEFINITION_BASE + "questionnaire-scoring-rule"
OPTION_VALUE_EXTENSION = STRUCTURE_DEFINITION_BASE + "answer-option-value"
MIN_VALUE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/maxValue"

# Ours -> FHIR. Our free-text answers may be long (2000 characters): FHIR's `text`.
FHIR_ITEM_TYPES = {
    "choice": "choice",
    "integer": "integer",
    "decimal": "decimal",
    "boolean": "boolean",
    "date": "date",
    "string": "text",
}
OUR_ITEM_TYPES = {**{fhir: ours for ours, fhir in FHIR_ITEM_TYPES.items()}, "string": "string"}

LINK_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
MAX_TEXT, MAX_ITEMS, MAX_OPTIONS, MAX_CONDITIONS, MAX_RULES = 500, 50, 30, 5, 50
RISKS = ("watch", "urgent")


class AnswerOption(TypedDict):
    value: Value
    text: dict[str, str]


class EnableWhen(TypedDict):
    question: str
    operator: str
    answer: Value


class QuestionnaireItem(TypedDict):
    linkId: str
    type: str
    text: dict[str, str]
    required: NotRequired[bool]
    answerOption: NotRequired[list[AnswerOption]]
    minValue: NotRequired[int | float]
    maxValue: NotRequired[int | float]
    enableWhen: NotRequired[list[EnableWhen]]


class ScoringRule(TypedDict):
    linkId: str
    operator: str
    value: Value
    risk: str


class QuestionnaireDefinition(TypedDict):
    """What `PUT /questionnaires/{id}` takes (questionnaire-put.json), with the id when the
    resource had one our ids allow."""

    id: NotRequired[str]
    title: dict[str, str]
    items: list[QuestionnaireItem]
    scoring: NotRequired[list[ScoringRule]]


# -- Ours -> FHIR -------------------------------------------------------------------------------


def _option_to_fhir(option: Mapping[str, Any], language: str) -> Resource:
    value_coding: Resource = {"code": option_code(option["value"])}
    put_translated(value_coding, "display", option["text"], language)
    fhir_option: Resource = {"valueCoding": value_coding}
    if not isinstance(option["value"], str):  # a code is a string: keep the JSON type
        fhir_option["extension"] = [
            {"url": OPTION_VALUE_EXTENSION, **typed_value("value", option["value"])}
        ]
    return fhir_option


def _bound(url: str, item_type: str, value: int | float) -> Resource:
    if item_type == "integer" and isinstance(value, int):
        return {"url": url, "valueInteger": value}
    return {"url": url, "valueDecimal": value}


def _answer_to_fhir(source: Mapping[str, Any] | None, answer: Value) -> Resource:
    """An enableWhen answer typed as the question it looks at."""
    kind = source["type"] if source else None
    if kind == "choice":
        return {"answerCoding": {"code": option_code(answer)}}
    if kind == "date":
        return {"answerDate": answer}
    if kind == "decimal" and not isinstance(answer, bool):
        return {"answerDecimal": answer}
    return typed_value("answer", answer)


def _item_to_fhir(
    item: Mapping[str, Any], earlier: Mapping[str, Mapping[str, Any]], language: str
) -> Resource:
    fhir_item: Resource = {"linkId": item["linkId"], "type": FHIR_ITEM_TYPES[item["type"]]}
    bounds = [
        _bound(url, item["type"], item[key])
        for key, url in (("minValue", MIN_VALUE_EXTENSION), ("maxValue", MAX_VALUE_EXTENSION))
        if key in item
    ]
    if bounds:
        fhir_item["extension"] = bounds
    put_translated(fhir_item, "text", item["text"], language)
    conditions = item.get("enableWhen", [])
    if conditions:
        fhir_item["enableWhen"] = [
            {
                "question": c["question"],
                "operator": c["operator"],
                **_answer_to_fhir(earlier.get(c["question"]), c["answer"]),
            }
            for c in conditions
        ]
        if len(conditions) > 1:
            fhir_item["enableBehavior"] = "all"  # ours: every condition must hold
    if "required" in item:
        fhir_item["required"] = item["required"]
    if item.get("answerOption"):
        fhir_item["answerOption"] = [_option_to_fhir(o, language) for o in item["answerOption"]]
    return fhir_item


def _rule_to_fhir(rule: Mapping[str, Any]) -> Resource:
    return {
        "url": SCORING_EXTENSION,
        "extension": [
            {"url": "linkId", "valueString": rule["linkId"]},
            {"url": "operator", "valueCode": rule["operator"]},
            {"url": "value", **typed_value("value", rule["value"])},
            {"url": "risk", "valueCode": rule["risk"]},
        ],
    }


def questionnaire_to_fhir(ours: Mapping[str, Any], default_language: str) -> Resource:
    """A valid FHIR Questionnaire of one of ours (a starter, a stored one or a PUT body), texts
    in `default_language` with the other languages as translations."""
    resource: Resource = {"resourceType": "Questionnaire"}
    if "id" in ours:
        resource["id"] = ours["id"]
    with_meta(resource, ours)
    resource["language"] = default_language
    if ours.get("scoring"):
        resource["extension"] = [_rule_to_fhir(rule) for rule in ours["scoring"]]
    put_translated(resource, "title", ours["title"], default_language)
    resource["status"] = "active"
    resource["subjectType"] = ["Patient"]
    if "updated_at" in ours:
        resource["date"] = ours["updated_at"]
    earlier: dict[str, Mapping[str, Any]] = {}
    items = []
    for item in ours["items"]:
        items.append(_item_to_fhir(item, earlier, default_language))
        earlier[item["linkId"]] = item
    resource["item"] = items
    return resource


# -- FHIR -> ours -------------------------------------------------------------------------------


def _our_language(code: object) -> str | None:
    """One of our languages, however its case was written."""
    if not isinstance(code, str):
        return None
    return next((ours for ours in LANGUAGES if ours.lower() == code.lower()), None)


def _sub_extension(extension: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    for part in extension.get("extension", []):
        if part.get("url") == url:
            found: Mapping[str, Any] = part
            return found
    return None


def _extension_value(extension: Mapping[str, Any] | None) -> Any:
    if extension is None:
        return None
    return next((v for k, v in extension.items() if k.startswith("value")), None)


def _texts(
    holder: Mapping[str, Any], name: str, language: str, path: str, problems: Problems
) -> dict[str, str]:
    """`holder[name]` in `language` and its translations in our languages, as a language map.
    Translations into languages we cannot show are left out."""
    texts: dict[str, str] = {}
    if isinstance(holder.get(name), str):
        texts[language] = holder[name]
    element = holder.get(f"_{name}") or {}
    for extension in element.get("extension", []):
        if extension.get("url") != TRANSLATION_EXTENSION:
            continue
        other = _our_language(_extension_value(_sub_extension(extension, "lang")))
        content = _extension_value(_sub_extension(extension, "content"))
        if other is not None and isinstance(content, str):
            texts.setdefault(other, content)
    for lang, text in texts.items():
        if len(text) > MAX_TEXT:
            problems.add(f"{path}.{name}", f"the {lang} text is longer than {MAX_TEXT} characters")
    return texts


def _option_from_fhir(
    option: Mapping[str, Any], language: str, path: str, problems: Problems
) -> AnswerOption | None:
    value: Value
    if "valueCoding" in option:
        value_coding = option["valueCoding"]
        if "code" not in value_coding:
            problems.add(f"{path}.valueCoding.code", "an option needs a code: its value")
            return None
        value = value_coding["code"]
        text = _texts(value_coding, "display", language, f"{path}.valueCoding", problems)
    elif any(k in option for k in ("valueString", "valueInteger", "valueDate")):
        value = next(option[k] for k in ("valueString", "valueInteger", "valueDate") if k in option)
        text = {language: str(value)}
    else:
        kind = next((k for k in option if k.startswith("value")), "value[x]")
        problems.add(f"{path}.{kind}", "options must be codings, strings, integers or dates")
        return None
    for extension in option.get("extension", []):
        typed = _extension_value(extension)
        if extension.get("url") == OPTION_VALUE_EXTENSION and typed is not None:
            value = typed  # ours: the value with its own JSON type (1, not "1")
    return {"value": value, "text": text or {language: option_code(value)}}


def _options_from_fhir(
    item: Mapping[str, Any], language: str, path: str, problems: Problems
) -> list[AnswerOption]:
    options = item["answerOption"]
    if not 1 <= len(options) <= MAX_OPTIONS:
        problems.add(f"{path}.answerOption", f"between 1 and {MAX_OPTIONS} options")
    parsed = [
        _option_from_fhir(option, language, f"{path}.answerOption[{index}]", problems)
        for index, option in enumerate(options)
    ]
    return [option for option in parsed if option is not None]


def _bounds_from_fhir(
    item: Mapping[str, Any], our_item: QuestionnaireItem, path: str, problems: Problems
) -> None:
    for index, extension in enumerate(item.get("extension", [])):
        key = {MIN_VALUE_EXTENSION: "minValue", MAX_VALUE_EXTENSION: "maxValue"}.get(
            extension.get("url")
        )
        if key is None:
            continue
        value = extension.get("valueInteger", extension.get("valueDecimal"))
        if our_item["type"] not in ("integer", "decimal") or value is None:
            problems.add(
                f"{path}.extension[{index}]", f"{key} is supported on integer and decimal items"
            )
        elif key == "minValue":
            our_item["minValue"] = value
        else:
            our_item["maxValue"] = value


def _condition_answer(
    condition: Mapping[str, Any], source: QuestionnaireItem | None, path: str, problems: Problems
) -> Value | None:
    for kind in ("answerBoolean", "answerInteger", "answerDecimal", "answerDate", "answerString"):
        if kind in condition:
            found: Value = condition[kind]
            return found
    if "answerCoding" in condition:
        code = condition["answerCoding"].get("code")
        # The option whose code it is, with its value's own type (1, not "1").
        for option in source.get("answerOption", []) if source else []:
            if option_code(option["value"]) == code:
                return option["value"]
        if code is None:
            problems.add(f"{path}.answerCoding.code", "is required")
        found_code: str | None = code
        return found_code
    kind = next((k for k in condition if k.startswith("answer")), "answer[x]")
    problems.add(f"{path}.{kind}", "conditions on this kind of answer are not supported")
    return None


def _conditions_from_fhir(
    item: Mapping[str, Any],
    earlier: Mapping[str, QuestionnaireItem],
    path: str,
    problems: Problems,
) -> list[EnableWhen]:
    conditions = item["enableWhen"]
    if len(conditions) > 1 and item.get("enableBehavior") == "any":
        problems.add(f"{path}.enableBehavior", "only 'all' is supported: every condition holds")
    if len(conditions) > MAX_CONDITIONS:
        problems.add(f"{path}.enableWhen", f"at most {MAX_CONDITIONS} conditions")
    parsed: list[EnableWhen] = []
    for index, condition in enumerate(conditions):
        at = f"{path}.enableWhen[{index}]"
        if condition["operator"] not in OPERATORS:
            problems.add(f"{at}.operator", f"{condition['operator']!r} is not supported")
            continue
        answer = _condition_answer(condition, earlier.get(condition["question"]), at, problems)
        if answer is not None:
            parsed.append(
                {
                    "question": condition["question"],
                    "operator": condition["operator"],
                    "answer": answer,
                }
            )
    return parsed


# Parts of an item that change what is asked or how it is answered, which ours cannot do.
_UNSUPPORTED_ITEM_PARTS = {
    "item": "nested items are not supported",
    "repeats": "repeating answers are not supported",
    "readOnly": "read-only items are not supported",
    "answerValueSet": "options from a value set are not supported: list them in answerOption",
    "modifierExtension": "modifier extensions are not supported",
}


def _item_from_fhir(
    item: Mapping[str, Any],
    earlier: Mapping[str, QuestionnaireItem],
    language: str,
    path: str,
    problems: Problems,
) -> QuestionnaireItem | None:
    for part, why in _UNSUPPORTED_ITEM_PARTS.items():
        if item.get(part) not in (None, False, []):
            problems.add(f"{path}.{part}", why)
    link = item["linkId"]
    if not LINK_ID.fullmatch(link):
        problems.add(f"{path}.linkId", "must be a lower-case letter then letters, digits or _")
    kind = OUR_ITEM_TYPES.get(item["type"])
    if kind is None:
        supported = ", ".join(sorted(OUR_ITEM_TYPES))
        problems.add(f"{path}.type", f"{item['type']!r} items are not supported ({supported})")
        return None
    text = _texts(item, "text", language, path, problems)
    if not text:
        problems.add(f"{path}.text", "every question needs a text")
    ours: QuestionnaireItem = {"linkId": link, "type": kind, "text": text}
    if "required" in item:
        ours["required"] = item["required"]
    _bounds_from_fhir(item, ours, path, problems)
    if item.get("answerOption"):
        if kind == "choice":
            ours["answerOption"] = _options_from_fhir(item, language, path, problems)
        else:
            problems.add(f"{path}.answerOption", "options are supported on choice items only")
    if item.get("enableWhen"):
        ours["enableWhen"] = _conditions_from_fhir(item, earlier, path, problems)
    return ours


def _rule_from_fhir(
    extension: Mapping[str, Any], path: str, problems: Problems
) -> ScoringRule | None:
    parts = {
        name: _extension_value(_sub_extension(extension, name))
        for name in ("linkId", "operator", "value", "risk")
    }
    missing = [name for name, value in parts.items() if value is None]
    if missing:
        problems.add(path, f"a scoring rule needs {', '.join(missing)}")
        return None
    if parts["operator"] not in OPERATORS:
        problems.add(path, f"operator {parts['operator']!r} is not one of {', '.join(OPERATORS)}")
    if parts["risk"] not in RISKS:
        problems.add(path, f"risk {parts['risk']!r} is not one of {', '.join(RISKS)}")
    return {
        "linkId": parts["linkId"],
        "operator": parts["operator"],
        "value": parts["value"],
        "risk": parts["risk"],
    }


def _scoring_from_fhir(
    resource: Mapping[str, Any], problems: Problems
) -> tuple[list[ScoringRule], list[int]]:
    """The scoring rules, and the index of the extension each came from (to name it)."""
    rules: list[ScoringRule] = []
    positions: list[int] = []
    for index, extension in enumerate(resource.get("extension", [])):
        if extension.get("url") == SCORING_EXTENSION:
            rule = _rule_from_fhir(extension, f"$.extension[{index}]", problems)
            if rule is not None:
                rules.append(rule)
                positions.append(index)
    if len(rules) > MAX_RULES:
        problems.add("$.extension", f"at most {MAX_RULES} scoring rules")
    return rules, positions


def _language(resource: Mapping[str, Any], default_language: str | None, problems: Problems) -> str:
    declared = resource.get("language") or default_language
    language = _our_language(declared)
    if language is None:
        path = "$.language"
        if declared is None:
            problems.add(path, "is needed: the language of the texts")
        else:
            problems.add(path, f"{declared!r} is not one of {', '.join(LANGUAGES)}")
    return language or LANGUAGES[0]


def _in_fhir_terms(path: str, rule_positions: list[int]) -> str:
    """A path of our definition (`$.items[2].linkId`, `$.scoring[1].value`) as one of the FHIR
    resource it came from."""
    if path.startswith("$.items"):
        return "$.item" + path.removeprefix("$.items")
    scoring = re.match(r"^\$\.scoring\[(\d+)\]", path)
    if scoring:
        return f"$.extension[{rule_positions[int(scoring.group(1))]}]"
    return path


def questionnaire_from_fhir(
    resource: Mapping[str, Any], *, default_language: str | None = None
) -> QuestionnaireDefinition:
    """One of our questionnaire definitions from a FHIR Questionnaire (ours exported, or a
    hospital's own). The texts' language is the resource's `language`, else `default_language`.
    Raises ValidationFailed naming, by JSON path, every part that is invalid FHIR or that our
    questionnaires cannot do."""
    from chalicelib.domain.fhir.validation import resource_problems

    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Questionnaire":
        raise ValidationFailed(
            "not a FHIR Questionnaire",
            details=[FieldError("$.resourceType", "must be Questionnaire")],
        )
    invalid_fhir = resource_problems(resource)
    if invalid_fhir:
        raise ValidationFailed("not a valid FHIR Questionnaire", details=invalid_fhir)
    problems = Problems()
    if resource.get("modifierExtension"):
        problems.add("$.modifierExtension", _UNSUPPORTED_ITEM_PARTS["modifierExtension"])
    language = _language(resource, default_language, problems)
    title = _texts(resource, "title", language, "$", problems)
    if not title:
        problems.add("$.title", "a questionnaire needs a title")
    fhir_items = resource.get("item", [])
    if not 1 <= len(fhir_items) <= MAX_ITEMS:
        problems.add("$.item", f"between 1 and {MAX_ITEMS} items")
    items: list[QuestionnaireItem] = []
    earlier: dict[str, QuestionnaireItem] = {}
    for index, fhir_item in enumerate(fhir_items):
        item = _item_from_fhir(fhir_item, earlier, language, f"$.item[{index}]", problems)
        if item is not None:
            items.append(item)
            earlier[item["linkId"]] = item
    rules, rule_positions = _scoring_from_fhir(resource, problems)
    definition: QuestionnaireDefinition = {"title": title, "items": items}
    if rules:
        definition["scoring"] = rules
    if isinstance(resource.get("id"), str) and ID.fullmatch(resource["id"]):
        definition["id"] = resource["id"]
    _raise(problems)  # the rules below read a definition of the right shape
    try:
        check_definition(cast(Document, definition))
    except ValidationFailed as failure:
        for detail in failure.details:
            problems.add(_in_fhir_terms(detail.path, rule_positions), detail.message)
    _raise(problems)
    return definition


def _raise(problems: Problems) -> None:
    if problems.details:
        summary = "; ".join(f"{d.path}: {d.message}" for d in problems.details[:5])
        raise ValidationFailed(
            f"the questionnaire cannot be imported: {summary}", details=problems.details
        )
