"""What a patient's SMS reply means. Matching is on the whole, trimmed, case-folded body."""

from __future__ import annotations

CONFIRM = frozenset({"C", "Y", "YES", "确认", "是"})
CANCEL = frozenset({"N", "X", "NO", "取消"})
RESCHEDULE = frozenset({"R", "改约", "改期"})
# The usual carrier opt-out words, and 退订/TD that Chinese numbers use.
STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "OPTOUT", "退订", "TD"})
START = frozenset({"START", "UNSTOP", "订阅"})
HELP = frozenset({"HELP", "INFO", "帮助"})


def classify(body: str) -> str:
    word = body.strip().strip(".!。！").upper()
    for meaning, words in (
        ("stop", STOP),
        ("start", START),
        ("help", HELP),
        ("confirm", CONFIRM),
        ("cancel", CANCEL),
        ("reschedule", RESCHEDULE),
    ):
        if word in words:
            return meaning
    return "unknown"


def reply_text(meaning: str, clinic: str, language: str) -> str | None:
    """The one-off answer to STOP, START and HELP (None for the others)."""
    chinese = language.startswith("zh")
    texts = {
        "stop": (
            "{c}：您已退订短信通知，回复START可重新订阅。",
            "{c}: you will get no more texts from us. Reply START to subscribe again.",
        ),
        "start": (
            "{c}：您已重新订阅短信通知，回复退订或STOP可停止。",
            "{c}: texts are back on. Reply STOP to stop them.",
        ),
        "help": (
            "{c}：预约提醒短信。回复C确认，N取消，R改约；回复退订或STOP停止接收。",
            "{c}: appointment texts. Reply C to confirm, N to cancel, R to reschedule, "
            "STOP to stop.",
        ),
    }
    if meaning not in texts:
        return None
    return texts[meaning][0 if chinese else 1].format(c=clinic)
