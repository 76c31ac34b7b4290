"""What a journey step says, per channel and language, rendered by a sandboxed template engine.

SMS carries the minimum a patient needs (first name, time, place): no department, no notes, no
diagnosis. Email and push may say more. Templates can use only the fields in FIELDS; a template
that names another is rejected when it is checked, not when a message is due.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from chalicelib.domain.errors import invalid

FIELDS = frozenset(
    {
        "clinic",
        "first_name",
        "date",
        "time",
        "location",
        "department",
        "notes",
        "link",
        "keywords",
        "reply",
        "title",
        "reference",  # a complaint's (C-2026-000123)
        "message",  # staff's closing message to a complaint: email only
        "points",  # loyalty points just earned
    }
)
SMS_FIELDS = frozenset(
    {
        "clinic",
        "first_name",
        "date",
        "time",
        "location",
        "link",
        "keywords",
        "reply",
        "reference",
        "points",
    }
)
CHANNELS = ("sms", "push", "email")
# Values a template is rendered with when it is saved: to check it and count its SMS segments.
SAMPLE_FIELDS_ZH = {
    "clinic": "仁济医院东院",
    "first_name": "伟",
    "date": "2026-12-10",
    "time": "10:00",
    "location": "门诊2号楼305室",
    "department": "心内科",
    "notes": "请空腹",
    "link": "https://app.careloop.example/a/a-0123456789abcdef",
    "keywords": "C/N/R",
    "reply": "回复C确认，N取消，R改约。",
    "title": "术后伤口护理",
    "reference": "C-2026-000123",
    "message": "感谢您的反馈，我们已调整复诊预约流程。",
    "points": "50",
}
SAMPLE_FIELDS_EN = {
    **SAMPLE_FIELDS_ZH,
    "clinic": "Renji Hospital East",
    "first_name": "Wei",
    "location": "Outpatient Building 2, Room 305",
    "department": "Cardiology",
    "reply": "Reply C to confirm, N to cancel, R to reschedule.",
    "notes": "Please come fasting",
    "title": "Caring for your wound",
    "message": "Thank you for telling us. We have changed how follow-up visits are booked.",
}


def sample_fields(language: str) -> dict[str, str]:
    return SAMPLE_FIELDS_ZH if language.startswith("zh") else SAMPLE_FIELDS_EN


# The product's own wording; tenants may override per step, channel and language.
DEFAULT_TEMPLATES: dict[tuple[str, str, str], str] = {
    (
        "confirmation",
        "sms",
        "zh-CN",
    ): "{{clinic}}：{{first_name}}您好，您已预约{{date}} {{time}}，地点{{location}}。"
    "{{reply}}{{link}}",
    (
        "confirmation",
        "sms",
        "en",
    ): "{{clinic}}: Hi {{first_name}}, you are booked for {{date}} {{time}} at {{location}}. "
    "{% if reply %}{{reply}} {% endif %}{{link}}",
    (
        "reminder",
        "sms",
        "zh-CN",
    ): "{{clinic}}提醒：{{first_name}}您好，您的预约在{{date}} {{time}}，地点{{location}}。"
    "{{reply}}",
    (
        "reminder",
        "sms",
        "en",
    ): "{{clinic}} reminder: {{first_name}}, your appointment is {{date}} {{time}} at "
    "{{location}}.{% if reply %} {{reply}}{% endif %}",
    (
        "noshow_followup",
        "sms",
        "zh-CN",
    ): "{{clinic}}：{{first_name}}您好，您今天未能就诊。如需重新预约请点击 {{link}}",
    (
        "noshow_followup",
        "sms",
        "en",
    ): "{{clinic}}: {{first_name}}, we missed you today. Book a new time here: {{link}}",
    (
        "confirmation",
        "email",
        "zh-CN",
    ): "<p>{{first_name}}您好：</p>"
    "<p>您已预约{{department}}，时间{{date}} {{time}}，地点{{location}}。</p>"
    "{% if notes %}<p>就诊须知：{{notes}}</p>{% endif %}<p>确认、取消或改约：{{link}}</p>",
    (
        "confirmation",
        "email",
        "en",
    ): "<p>Dear {{first_name}},</p><p>Your {{department}} appointment is on {{date}} at "
    "{{time}}, {{location}}.</p>{% if notes %}<p>Before you come: {{notes}}</p>{% endif %}"
    "<p>Confirm, cancel or reschedule: {{link}}</p>",
    (
        "reminder",
        "email",
        "zh-CN",
    ): "<p>{{first_name}}您好：</p>"
    "<p>提醒您{{date}} {{time}}在{{location}}就诊（{{department}}）。</p>"
    "{% if notes %}<p>就诊须知：{{notes}}</p>{% endif %}<p>{{link}}</p>",
    (
        "reminder",
        "email",
        "en",
    ): "<p>Dear {{first_name}},</p><p>A reminder of your {{department}} appointment on "
    "{{date}} at {{time}}, {{location}}.</p>{% if notes %}<p>Before you come: {{notes}}</p>"
    "{% endif %}<p>{{link}}</p>",
    (
        "noshow_followup",
        "email",
        "zh-CN",
    ): "<p>{{first_name}}您好：</p><p>您今天未能来{{department}}就诊。重新预约：{{link}}</p>",
    (
        "noshow_followup",
        "email",
        "en",
    ): "<p>Dear {{first_name}},</p><p>We missed you at {{department}} today. "
    "Book a new time: {{link}}</p>",
    ("confirmation", "push", "zh-CN"): "已预约{{date}} {{time}}，{{location}}",
    ("confirmation", "push", "en"): "Booked: {{date}} {{time}}, {{location}}",
    ("reminder", "push", "zh-CN"): "就诊提醒：{{date}} {{time}}，{{location}}",
    ("reminder", "push", "en"): "Reminder: {{date}} {{time}}, {{location}}",
    ("noshow_followup", "push", "zh-CN"): "您今天未能就诊，点此重新预约",
    ("noshow_followup", "push", "en"): "We missed you today. Tap to book a new time",
    # The second attempt goes out days later: it names the missed visit's date, not "today".
    (
        "noshow_second",
        "sms",
        "zh-CN",
    ): "{{clinic}}：{{first_name}}您好，您{{date}}的预约未能就诊，如需重新预约请点击 {{link}}",
    (
        "noshow_second",
        "sms",
        "en",
    ): "{{clinic}}: {{first_name}}, we missed you on {{date}}. Book a new time here: {{link}}",
    (
        "noshow_second",
        "email",
        "zh-CN",
    ): "<p>{{first_name}}您好：</p><p>您{{date}}未能来{{department}}就诊。重新预约：{{link}}</p>",
    (
        "noshow_second",
        "email",
        "en",
    ): "<p>Dear {{first_name}},</p><p>We missed you at {{department}} on {{date}}. "
    "Book a new time: {{link}}</p>",
    ("noshow_second", "push", "zh-CN"): "您{{date}}未能就诊，点此重新预约",
    ("noshow_second", "push", "en"): "We missed you on {{date}}. Tap to book a new time",
}
# Aftercare and recall wording: (kind, language) → (sms, push, email). No clinical detail in
# SMS or push (a lock screen is not private); the email may name the department or the reading.
_CARE_WORDING: dict[tuple[str, str], tuple[str, str, str]] = {
    ("checkin", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，请花两分钟告诉我们您的恢复情况：{{link}}",
        "请填写恢复情况问卷",
        "<p>{{first_name}}您好：</p><p>请花两分钟填写恢复情况问卷，医生会查看您的回答：{{link}}</p>",
    ),
    ("checkin", "en"): (
        "{{clinic}}: Hi {{first_name}}, how are you doing? Two minutes of questions: {{link}}",
        "How are you doing? Tap to answer a few questions",
        "<p>Dear {{first_name}},</p><p>Please tell us how you are doing; your care team reads "
        "every answer: {{link}}</p>",
    ),
    ("checkin_reminder", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您的恢复问卷还未填写：{{link}}",
        "恢复问卷还未填写",
        "<p>{{first_name}}您好：</p><p>您的恢复情况问卷还未填写，请抽空完成：{{link}}</p>",
    ),
    ("checkin_reminder", "en"): (
        "{{clinic}}: {{first_name}}, your check-in questions are still open: {{link}}",
        "Your check-in is still open",
        "<p>Dear {{first_name}},</p><p>Your check-in questions are still open: {{link}}</p>",
    ),
    ("education", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您有一篇康复指导可阅读：{{link}}",
        "新的康复指导",
        "<p>{{first_name}}您好：</p><p>为您推荐康复指导《{{title}}》：{{link}}</p>",
    ),
    ("education", "en"): (
        "{{clinic}}: {{first_name}}, there is a recovery guide for you: {{link}}",
        "A recovery guide for you",
        "<p>Dear {{first_name}},</p><p>A recovery guide for you: {{title}}. {{link}}</p>",
    ),
    ("recheck_invite", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您该来复查了，点此预约：{{link}}",
        "该复查了，点此预约",
        "<p>{{first_name}}您好：</p><p>您该来{{department}}复查了，点此预约：{{link}}</p>",
    ),
    ("recheck_invite", "en"): (
        "{{clinic}}: {{first_name}}, it is time for your check-up. Book here: {{link}}",
        "Time for your check-up: tap to book",
        "<p>Dear {{first_name}},</p><p>It is time for your {{department}} check-up. "
        "Book a time: {{link}}</p>",
    ),
    ("recall_invitation", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您该来复诊了，点此预约：{{link}}",
        "该复诊了，点此预约",
        "<p>{{first_name}}您好：</p><p>您该来{{department}}复诊了，点此预约：{{link}}</p>",
    ),
    ("recall_invitation", "en"): (
        "{{clinic}}: {{first_name}}, you are due for a follow-up visit. Book here: {{link}}",
        "You are due for a follow-up: tap to book",
        "<p>Dear {{first_name}},</p><p>You are due for a follow-up visit at {{department}}. "
        "Book a time: {{link}}</p>",
    ),
    ("recall_reminder", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，提醒您预约复诊：{{link}}",
        "提醒您预约复诊",
        "<p>{{first_name}}您好：</p><p>提醒您预约{{department}}复诊：{{link}}</p>",
    ),
    ("recall_reminder", "en"): (
        "{{clinic}}: {{first_name}}, a reminder to book your follow-up: {{link}}",
        "A reminder to book your follow-up",
        "<p>Dear {{first_name}},</p><p>A reminder to book your {{department}} follow-up: "
        "{{link}}</p>",
    ),
    ("recall_last_call", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，复诊预约最后提醒，如需帮助请致电我们：{{link}}",
        "复诊预约最后提醒",
        "<p>{{first_name}}您好：</p><p>这是{{department}}复诊的最后提醒，之后会有工作人员联系您：{{link}}</p>",
    ),
    ("recall_last_call", "en"): (
        "{{clinic}}: {{first_name}}, last reminder to book your follow-up: {{link}}",
        "Last reminder: book your follow-up",
        "<p>Dear {{first_name}},</p><p>This is our last reminder to book your {{department}} "
        "follow-up; after this a member of staff will call you. {{link}}</p>",
    ),
    # Satisfaction and complaints. The survey asks nothing clinical; a thank-you links to the
    # hospital's review page (promoters only, never for a low score); a complaint's answer is
    # told in full by email only (a text and a push say there is one).
    ("satisfaction_survey", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，感谢您的就诊。请花一分钟评价本次就诊：{{link}}",
        "请评价本次就诊",
        "<p>{{first_name}}您好：</p><p>感谢您来{{department}}就诊。请花一分钟告诉我们您的感受：{{link}}</p>",
    ),
    ("satisfaction_survey", "en"): (
        "{{clinic}}: Hi {{first_name}}, thank you for your visit. How did we do? {{link}}",
        "How was your visit? Tap to tell us",
        "<p>Dear {{first_name}},</p><p>Thank you for visiting {{department}}. Please take a "
        "minute to tell us how it went: {{link}}</p>",
    ),
    ("satisfaction_thanks", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，感谢您的好评！如愿意，欢迎在此分享您的体验：{{link}}",
        "感谢您的评价",
        "<p>{{first_name}}您好：</p><p>感谢您的好评！如您愿意，欢迎在此分享您的就诊体验：{{link}}</p>",
    ),
    ("satisfaction_thanks", "en"): (
        "{{clinic}}: Thank you, {{first_name}}! If you would like to share your experience: "
        "{{link}}",
        "Thank you for your feedback",
        "<p>Dear {{first_name}},</p><p>Thank you for your kind feedback. If you would like to "
        "share your experience with others, you can do so here: {{link}}</p>",
    ),
    ("points_earned", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您获得了{{points}}积分，可在此查看：{{link}}",
        "您获得了{{points}}积分",
        "<p>{{first_name}}您好：</p><p>感谢您按时复诊/随访，您获得了{{points}}积分。查看积分：{{link}}</p>",
    ),
    ("points_earned", "en"): (
        "{{clinic}}: {{first_name}}, you earned {{points}} points. See them here: {{link}}",
        "You earned {{points}} points",
        "<p>Dear {{first_name}},</p><p>Thank you for keeping up with your care: you earned "
        "{{points}} points. See them in the app: {{link}}</p>",
    ),
    ("complaint_closed", "zh-CN"): (
        "{{clinic}}：{{first_name}}您好，您的反馈（{{reference}}）已有答复，请在此查看：{{link}}",
        "您的反馈已有答复",
        "<p>{{first_name}}您好：</p><p>关于您的反馈（{{reference}}）：</p>"
        "{% if message %}<p>{{message}}</p>{% else %}<p>已处理完毕。</p>{% endif %}"
        "<p>查看详情：{{link}}</p>",
    ),
    ("complaint_closed", "en"): (
        "{{clinic}}: {{first_name}}, there is an answer to your feedback {{reference}}: {{link}}",
        "There is an answer to your feedback",
        "<p>Dear {{first_name}},</p><p>About your feedback {{reference}}:</p>"
        "{% if message %}<p>{{message}}</p>{% else %}<p>It has been resolved.</p>{% endif %}"
        "<p>See it in the app: {{link}}</p>",
    ),
}
_CARE_SUBJECTS = {
    "checkin": ("{{clinic}}：恢复情况问卷", "{{clinic}}: how are you doing?"),
    "checkin_reminder": ("{{clinic}}：问卷提醒", "{{clinic}}: your check-in is open"),
    "education": ("{{clinic}}：康复指导", "{{clinic}}: a recovery guide"),
    "recheck_invite": ("{{clinic}}：复查预约", "{{clinic}}: time for a check-up"),
    "recall_invitation": ("{{clinic}}：复诊预约", "{{clinic}}: time for a follow-up"),
    "recall_reminder": ("{{clinic}}：复诊提醒", "{{clinic}}: book your follow-up"),
    "recall_last_call": ("{{clinic}}：复诊最后提醒", "{{clinic}}: last reminder"),
    "satisfaction_survey": ("{{clinic}}：就诊评价", "{{clinic}}: how was your visit?"),
    "satisfaction_thanks": ("{{clinic}}：感谢您的评价", "{{clinic}}: thank you"),
    "points_earned": ("{{clinic}}：积分到账", "{{clinic}}: points earned"),
    "complaint_closed": (
        "{{clinic}}：反馈答复 {{reference}}",
        "{{clinic}}: your feedback {{reference}}",
    ),
}
for (_kind, _language), _texts in _CARE_WORDING.items():
    for _channel, _text in zip(("sms", "push", "email"), _texts, strict=True):
        DEFAULT_TEMPLATES[(_kind, _channel, _language)] = _text

SUBJECTS = {
    ("confirmation", "zh-CN"): "{{clinic}}：预约确认",
    ("confirmation", "en"): "{{clinic}}: booked",
    ("reminder", "zh-CN"): "{{clinic}}：就诊提醒",
    ("reminder", "en"): "{{clinic}}: reminder",
    ("noshow_followup", "zh-CN"): "{{clinic}}：重新预约",
    ("noshow_followup", "en"): "{{clinic}}: book again",
    ("noshow_second", "zh-CN"): "{{clinic}}：重新预约",
    ("noshow_second", "en"): "{{clinic}}: book again",
}
for _kind, (_zh, _en) in _CARE_SUBJECTS.items():
    SUBJECTS[(_kind, "zh-CN")] = _zh
    SUBJECTS[(_kind, "en")] = _en

# The message kinds a tenant may reword (every kind the product has wording for).
TEMPLATE_KINDS = frozenset(kind for kind, _, _ in DEFAULT_TEMPLATES)

# GSM 03.38 basic set (extension characters count twice).
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€")


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None
    encoding: str | None = None  # SMS only: GSM-7 or UCS-2
    segments: int | None = None


def template_kind(step: str) -> str:
    """reminder_7d, reminder_2h ... share the reminder wording; each no-show attempt has its
    own (the second, days later, cannot say "today")."""
    if step.startswith("reminder_"):
        return "reminder"
    return step


def template_id(kind: str, channel: str, language: str) -> str:
    """The key of a tenant's own wording of a message kind."""
    return f"{kind}#{channel}#{language}"


def sms_segments(text: str) -> tuple[str, int]:
    if all(ch in _GSM7 or ch in _GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        return "GSM-7", 1 if units <= 160 else math.ceil(units / 153)
    units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)  # UTF-16 code units
    return "UCS-2", 1 if units <= 70 else math.ceil(units / 67)


@cache
def _environment(autoescape: bool) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=autoescape)


def check_template(source: str, channel: str) -> None:
    """Reject, when saved, a template that would fail or leak at send time."""
    from jinja2 import TemplateSyntaxError, meta

    path = "$.subject" if channel == "subject" else "$.body"
    try:
        names = meta.find_undeclared_variables(_environment(channel == "email").parse(source))
    except TemplateSyntaxError as exc:
        raise invalid(path, f"template syntax: {exc.message}") from exc
    allowed = SMS_FIELDS if channel == "sms" else FIELDS  # subject lines may use all
    unknown = sorted(names - allowed)
    if unknown:
        raise invalid(path, f"unknown field(s) for {channel}: {', '.join(unknown)}")


# A message to a minor's guardian names the child first, whatever the template says.
ABOUT_CHILD = {"zh-CN": "（关于{child}）", "en": "(About {child}) "}


def _about_child(child: str, lang: str, channel: str) -> str:
    from markupsafe import escape

    notice = ABOUT_CHILD["zh-CN" if lang.startswith("zh") else "en"]
    if channel == "email":
        return f"<p>{notice.format(child=escape(child)).strip()}</p>"
    return notice.format(child=child)


def render(
    step: str,
    channel: str,
    language: str,
    fields: dict[str, Any],
    override: str | None = None,
    subject_override: str | None = None,
    about_child: str | None = None,
) -> Rendered:
    """The step's text for a channel and language; `about_child`: to a guardian, naming the
    child (their first name) before the text."""
    kind = template_kind(step)
    lang = (
        language
        if (kind, channel, language) in DEFAULT_TEMPLATES
        else ("zh-CN" if language.startswith("zh") else "en")
    )
    source = override or DEFAULT_TEMPLATES[(kind, channel, lang)]
    visible = {k: v for k, v in fields.items() if channel != "sms" or k in SMS_FIELDS}
    body = _environment(channel == "email").from_string(source).render(**visible)
    if about_child:
        body = _about_child(about_child, lang, channel) + body
    subject = None
    if channel in ("email", "push"):
        subject_source = subject_override or SUBJECTS[(kind, lang)]
        subject = _environment(False).from_string(subject_source).render(**visible)
    if channel == "sms":
        encoding, segments = sms_segments(body)
        return Rendered(body, None, encoding, segments)
    return Rendered(body, subject)
