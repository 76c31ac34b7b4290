"""Questionnaires (FHIR Questionnaire-shaped) and their answers (QuestionnaireResponse-shaped):
what a definition must satisfy when saved, which items are enabled by earlier answers, whether
a submitted set of answers is complete and well-typed (naming the item when not), and the risk
level the tenant's scoring rules give it. Pure: no I/O.

An item: {linkId, text: {lang: str}, type: choice | integer | boolean | date | string,
required?, answerOption?: [{value, text}], minValue?, maxValue?,
enableWhen?: [{question, operator, answer}]}. Scoring: [{linkId, operator, value, risk}], where
risk is watch or urgent; the highest risk any rule matches wins, ok when none does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from chalicelib.domain.common import Document
from chalicelib.domain.errors import Problems

TYPES = ("choice", "integer", "decimal", "boolean", "date", "string")
OPERATORS = ("=", "!=", ">", "<", ">=", "<=")
RISKS = ("ok", "watch", "urgent")


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator in ("=", "!="):
        return (left == right) is (operator == "=")
    if not isinstance(left, int | float) or isinstance(left, bool):
        return False
    outcome: bool = {
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[operator]
    return outcome


def _number_problem(item: Document, value: Any, *, whole: bool) -> str | None:
    kinds = int if whole else int | float
    if not isinstance(value, kinds) or isinstance(value, bool):
        return "must be a whole number" if whole else "must be a number"
    if value < item.get("minValue", value):
        return f"must be at least {item['minValue']}"
    if value > item.get("maxValue", value):
        return f"must be at most {item['maxValue']}"
    return None


def _date_problem(_item: Document, value: Any) -> str | None:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return "must be a date such as 2026-12-10"
    return None


_PROBLEMS: dict[str, Callable[[Document, Any], str | None]] = {
    "integer": partial(_number_problem, whole=True),
    "decimal": partial(_number_problem, whole=False),
    "date": _date_problem,
    "boolean": lambda _item, value: None if isinstance(value, bool) else "must be true or false",
    "choice": lambda item, value: (
        None
        if value in [o["value"] for o in item.get("answerOption", [])]
        else "is not one of the options"
    ),
    "string": lambda _item, value: (
        None
        if isinstance(value, str) and 0 < len(value) <= 2000
        else "must be text of at most 2000 characters"
    ),
}


def _value_fits(item: Document, value: Any) -> str | None:
    """Why `value` is not an answer to `item`, or None if it is."""
    problem: str | None = _PROBLEMS[item["type"]](item, value)
    return problem


def check_definition(definition: Document) -> None:
    """What a questionnaire must satisfy when saved, every problem named."""
    problems = Problems()
    seen: dict[str, Document] = {}
    for index, item in enumerate(definition["items"]):
        path = f"$.items[{index}]"
        link = item["linkId"]
        if link in seen:
            problems.add(f"{path}.linkId", f"{link!r} is used twice")
        if item["type"] == "choice" and not item.get("answerOption"):
            problems.add(f"{path}.answerOption", "a choice needs options")
        if item["type"] in ("integer", "decimal") and item.get("minValue", 0) > item.get(
            "maxValue", 10**9
        ):
            problems.add(f"{path}.maxValue", "must not be below minValue")
        for condition in item.get("enableWhen", []):
            source = seen.get(condition["question"])
            if source is None:
                problems.add(
                    f"{path}.enableWhen", f"{condition['question']!r} is not an earlier item"
                )
            elif _value_fits(source, condition["answer"]) is not None:
                problems.add(f"{path}.enableWhen", "the answer does not fit the question")
        seen[link] = item
    for index, rule in enumerate(definition.get("scoring", [])):
        source = seen.get(rule["linkId"])
        if source is None:
            problems.add(f"$.scoring[{index}].linkId", f"{rule['linkId']!r} is not an item")
        elif rule["operator"] in ("=", "!=") and _value_fits(source, rule["value"]):
            problems.add(f"$.scoring[{index}].value", "does not fit the question")
    problems.raise_if_any()


def enabled_items(definition: Document, answers: Document) -> list[Document]:
    """The items the patient is asked, given the answers so far (all conditions must hold)."""
    return [
        item
        for item in definition["items"]
        if all(
            condition["question"] in answers
            and _compare(answers[condition["question"]], condition["operator"], condition["answer"])
            for condition in item.get("enableWhen", [])
        )
    ]


def check_answers(definition: Document, answers: Document, *, complete: bool) -> None:
    """Answers must fit their items; a submission (`complete`) must answer every required
    enabled item. Problems name the item: `$.answers.<linkId>`."""
    problems = Problems()
    items = {item["linkId"]: item for item in definition["items"]}
    enabled = {item["linkId"] for item in enabled_items(definition, answers)}
    for link, value in answers.items():
        if link not in items:
            problems.add(f"$.answers.{link}", "is not a question of this questionnaire")
        elif link not in enabled:
            problems.add(f"$.answers.{link}", "is not asked, given the other answers")
        elif (why := _value_fits(items[link], value)) is not None:
            problems.add(f"$.answers.{link}", why)
    if complete:
        for link in sorted(enabled - set(answers)):
            if items[link].get("required"):
                problems.add(f"$.answers.{link}", "is required")
    problems.raise_if_any()


def risk_of(definition: Document, answers: Document) -> str:
    level = 0
    for rule in definition.get("scoring", []):
        if rule["linkId"] in answers and _compare(
            answers[rule["linkId"]], rule["operator"], rule["value"]
        ):
            level = max(level, RISKS.index(rule["risk"]))
    return RISKS[level]
