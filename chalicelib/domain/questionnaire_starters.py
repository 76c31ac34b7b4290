"""The questionnaires every tenant starts with. Scoring thresholds are conservative defaults a
hospital is expected to review: urgent answers reach a clinician at once, watch answers are
looked at within the day."""

from __future__ import annotations

from chalicelib.domain.common import Document


def _text(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


def _options(*pairs: tuple[str, str, str]) -> list[Document]:
    return [{"value": value, "text": _text(zh, en)} for value, zh, en in pairs]


POST_OPERATIVE: Document = {
    "id": "post-operative",
    "title": _text("术后恢复随访", "Recovery after surgery"),
    "items": [
        {
            "linkId": "pain",
            "type": "integer",
            "minValue": 0,
            "maxValue": 10,
            "required": True,
            "text": _text("今天的疼痛程度（0 无痛 – 10 最痛）", "Pain today (0 none – 10 worst)"),
        },
        {
            "linkId": "wound",
            "type": "choice",
            "required": True,
            "text": _text("伤口情况", "How does the wound look?"),
            "answerOption": _options(
                ("healing", "愈合良好", "Healing well"),
                ("red_swollen", "红肿", "Red or swollen"),
                ("discharge", "有渗液或脓液", "Oozing or pus"),
            ),
        },
        {
            "linkId": "fever",
            "type": "boolean",
            "required": True,
            "text": _text("体温是否超过38°C？", "Temperature above 38 °C?"),
        },
        {
            "linkId": "fever_since",
            "type": "date",
            "enableWhen": [{"question": "fever", "operator": "=", "answer": True}],
            "text": _text("从哪天开始发热？", "Since which day?"),
        },
        {
            "linkId": "mobility",
            "type": "choice",
            "required": True,
            "text": _text("活动能力", "Getting about"),
            "answerOption": _options(
                ("normal", "如常", "As usual"),
                ("limited", "受限", "Limited"),
                ("bedbound", "卧床", "In bed"),
            ),
        },
    ],
    "scoring": [
        {"linkId": "pain", "operator": ">=", "value": 7, "risk": "urgent"},
        {"linkId": "pain", "operator": ">=", "value": 4, "risk": "watch"},
        {"linkId": "wound", "operator": "=", "value": "discharge", "risk": "urgent"},
        {"linkId": "wound", "operator": "=", "value": "red_swollen", "risk": "watch"},
        {"linkId": "fever", "operator": "=", "value": True, "risk": "urgent"},
        {"linkId": "mobility", "operator": "=", "value": "bedbound", "risk": "watch"},
    ],
}

POST_DISCHARGE: Document = {
    "id": "post-discharge",
    "title": _text("出院后随访", "After you went home"),
    "items": [
        {
            "linkId": "medication",
            "type": "choice",
            "required": True,
            "text": _text("是否按时服药？", "Have you taken your medicines as prescribed?"),
            "answerOption": _options(
                ("all", "全部按时", "All of them"),
                ("some", "部分", "Some of them"),
                ("none", "没有", "None"),
            ),
        },
        {
            "linkId": "missed_reason",
            "type": "string",
            "enableWhen": [{"question": "medication", "operator": "!=", "answer": "all"}],
            "text": _text("没有按时服药的原因", "Why not?"),
        },
        {
            "linkId": "new_symptoms",
            "type": "boolean",
            "required": True,
            "text": _text("是否有新的不适？", "Any new symptoms?"),
        },
        {
            "linkId": "symptoms",
            "type": "string",
            "enableWhen": [{"question": "new_symptoms", "operator": "=", "answer": True}],
            "text": _text("请描述", "Please describe them"),
        },
        {
            "linkId": "breathless",
            "type": "boolean",
            "required": True,
            "text": _text("休息时是否气短？", "Short of breath at rest?"),
        },
    ],
    "scoring": [
        {"linkId": "breathless", "operator": "=", "value": True, "risk": "urgent"},
        {"linkId": "medication", "operator": "!=", "value": "all", "risk": "watch"},
        {"linkId": "new_symptoms", "operator": "=", "value": True, "risk": "watch"},
    ],
}

SATISFACTION: Document = {
    "id": "satisfaction",
    "title": _text("就诊满意度", "How was your visit?"),
    "items": [
        {
            "linkId": "score",
            "type": "integer",
            "minValue": 0,
            "maxValue": 10,
            "required": True,
            "text": _text(
                "您愿意把我们推荐给亲友吗？（0–10）", "How likely are you to recommend us? (0–10)"
            ),
        },
        {"linkId": "comment", "type": "string", "text": _text("意见或建议", "Anything to add?")},
        *(
            {
                "linkId": link_id,
                "type": "integer",
                "minValue": 1,
                "maxValue": 5,
                "text": _text(f"{zh}（1–5）", f"{en} (1–5)"),
            }
            for link_id, zh, en in (
                ("waiting_time", "候诊时间", "Waiting time"),
                ("staff", "医护人员的态度", "How staff treated you"),
                ("explanation", "病情和治疗的解释", "How things were explained"),
                ("cleanliness", "环境卫生", "Cleanliness"),
            )
        ),
    ],
    # NPS detractors (0-6) are looked at; the tenant's own threshold (satisfaction.
    # detractor_max_score) decides when a recovery complaint opens.
    "scoring": [{"linkId": "score", "operator": "<=", "value": 6, "risk": "watch"}],
}

CHRONIC_CHECK_IN: Document = {
    "id": "chronic-check-in",
    "title": _text("慢病自我监测", "Chronic care check-in"),
    "items": [
        {
            "linkId": "measure",
            "type": "choice",
            "required": True,
            "text": _text("本次记录", "What are you reporting?"),
            "answerOption": _options(
                ("glucose", "血糖", "Blood glucose"), ("blood_pressure", "血压", "Blood pressure")
            ),
        },
        {
            "linkId": "glucose",
            "type": "decimal",
            "minValue": 1.0,
            "maxValue": 35.0,
            "required": True,
            "enableWhen": [{"question": "measure", "operator": "=", "answer": "glucose"}],
            "text": _text("血糖（mmol/L）", "Blood glucose (mmol/L)"),
        },
        {
            "linkId": "systolic",
            "type": "integer",
            "minValue": 60,
            "maxValue": 260,
            "required": True,
            "enableWhen": [{"question": "measure", "operator": "=", "answer": "blood_pressure"}],
            "text": _text("收缩压（mmHg）", "Systolic (mmHg)"),
        },
        {
            "linkId": "diastolic",
            "type": "integer",
            "minValue": 30,
            "maxValue": 160,
            "required": True,
            "enableWhen": [{"question": "measure", "operator": "=", "answer": "blood_pressure"}],
            "text": _text("舒张压（mmHg）", "Diastolic (mmHg)"),
        },
    ],
    "scoring": [
        {"linkId": "glucose", "operator": ">=", "value": 16.7, "risk": "urgent"},
        {"linkId": "glucose", "operator": "<", "value": 3.9, "risk": "urgent"},
        {"linkId": "glucose", "operator": ">=", "value": 11.1, "risk": "watch"},
        {"linkId": "systolic", "operator": ">=", "value": 180, "risk": "urgent"},
        {"linkId": "diastolic", "operator": ">=", "value": 110, "risk": "urgent"},
        {"linkId": "systolic", "operator": ">=", "value": 140, "risk": "watch"},
    ],
}

STARTERS: dict[str, Document] = {
    q["id"]: q for q in (POST_OPERATIVE, POST_DISCHARGE, SATISFACTION, CHRONIC_CHECK_IN)
}
