"""What a patient's SMS reply means. Matching is on the whole, trimmed, case-folded body.

A reply may carry the short code of one appointment (`C2`, `N 2`, `确认2`): when one number has
more than one answer awaited at a hospital, each text names its appointment's code
(`domain.replies`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIRM = frozenset({"C", "Y", "YES", "确认", "是"})
CANCEL = frozenset({"N", "X", "NO", "取消"})
RESCHEDULE = frozenset({"R", "改约", "改期"})
# The usual carrier opt-out words, and 退订/TD that Chinese numbers use.
STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "OPTOUT", "退订", "TD"})
START = frozenset({"START", "UNSTOP", "订阅"})
HELP = frozenset({"HELP", "INFO", "帮助"})

# Only answers to an appointment take a code; STOP, START and HELP never do.
ANSWERS = (("confirm", CONFIRM), ("cancel", CANCEL), ("reschedule", RESCHEDULE))
WITH_CODE = re.compile(r"^(?P<word>\D+?)\s*(?P<code>[1-9][0-9]?)$")


@dataclass(frozen=True)
class Reply:
    meaning: str  # stop | start | help | confirm | cancel | reschedule | unknown
    code: str | None = None  # the appointment's short code, when the reply named one
    keyword: str | None = None  # the word of a reply, as the patient wrote it (upper, no code)


def classify(body: str) -> Reply:
    word = body.strip().strip(".!。！").upper()
    for meaning, words in (("stop", STOP), ("start", START), ("help", HELP), *ANSWERS):
        if word in words:
            return Reply(meaning, keyword=word if meaning != "help" else None)
    coded = WITH_CODE.match(word)
    if coded:
        for meaning, words in ANSWERS:
            if coded["word"] in words:
                return Reply(meaning, coded["code"], keyword=coded["word"])
    return Reply("unknown")


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
