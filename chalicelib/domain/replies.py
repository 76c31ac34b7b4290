"""Which appointment an SMS reply answers. Pure: no I/O.

A text invites a reply only when it leaves from the hospital's own two-way number (a sender ID
cannot receive one). What a reply can answer is kept per (patient's phone, hospital's number):
the answers awaited there, each with a short code. A parent and a child sharing one phone, or
one patient with two visits, make two awaited answers on one number: then every text names its
appointment's code (C1/N1, C2/N2 ...) and a reply without a code acts on nothing; it is answered
with the codes. A reply is only ever resolved within the hospital that owns the number it was
sent to.
"""

from __future__ import annotations

from itertools import count
from typing import TypedDict


class AwaitedAnswer(TypedDict):
    code: str
    patient_id: str
    appointment_id: str
    until: str  # ISO UTC: the visit's start; after it the text no longer awaits an answer


def live(entries: list[AwaitedAnswer], now: str) -> list[AwaitedAnswer]:
    return [e for e in entries if e["until"] > now]


def awaiting(
    entries: list[AwaitedAnswer], patient_id: str, appointment_id: str, until: str, now: str
) -> tuple[str, list[AwaitedAnswer]]:
    """The appointment's code (kept for its every text) and the entries with it, lapsed ones
    dropped. A new appointment takes the smallest code not in use."""
    kept = live(entries, now)
    for entry in kept:
        if entry["appointment_id"] == appointment_id:
            entry["until"] = until  # a rescheduled visit awaits to its new start
            return entry["code"], kept
    used = {e["code"] for e in kept}
    code = next(str(n) for n in count(1) if str(n) not in used)
    kept.append(
        AwaitedAnswer(code=code, patient_id=patient_id, appointment_id=appointment_id, until=until)
    )
    return code, kept


def shown_code(code: str, entries: list[AwaitedAnswer]) -> str | None:
    """The code a text names: only when the number awaits more than one answer."""
    return code if len(entries) > 1 else None


def answered(
    entries: list[AwaitedAnswer], code: str | None, now: str
) -> AwaitedAnswer | list[AwaitedAnswer] | None:
    """The one awaited answer a reply is for; the live entries when it cannot tell which (no
    code while several are awaited, or a code none has); None when nothing is awaited."""
    current = live(entries, now)
    if not current:
        return None
    if code is not None:
        chosen = [e for e in current if e["code"] == code]
        return chosen[0] if chosen else current
    return current[0] if len(current) == 1 else current


def keywords(code: str | None, *, confirmed: bool = False) -> str:
    suffix = code or ""
    if confirmed:
        return f"N{suffix}/R{suffix}"
    return f"C{suffix}/N{suffix}/R{suffix}"


def invitation(language: str, code: str | None, *, confirmed: bool = False) -> str:
    """The sentence that invites a reply, in the patient's language; once the patient has
    confirmed, only cancelling or rescheduling is offered."""
    c = code or ""
    if language.startswith("zh"):
        if confirmed:
            return f"如需取消请回复N{c}，改约回复R{c}。"
        return f"回复C{c}确认，N{c}取消，R{c}改约。"
    if confirmed:
        return f"Reply N{c} to cancel, R{c} to reschedule."
    return f"Reply C{c} to confirm, N{c} to cancel, R{c} to reschedule."


def which_one(clinic: str, language: str, choices: list[tuple[str, str, str]]) -> str:
    """The answer to a reply that could not tell which visit it is about: each visit's code,
    with the first name and time the texts themselves carry. `choices`: (code, first name,
    "MM-DD HH:MM")."""
    if language.startswith("zh"):
        listed = "；".join(f"{name} {when}：回复C{c}确认，N{c}取消" for c, name, when in choices)
        return f"{clinic}：此号码有多个预约，请在回复中注明编号。{listed}。"
    listed = "; ".join(
        f"{name} {when}: C{c} to confirm, N{c} to cancel" for c, name, when in choices
    )
    return f"{clinic}: this number has more than one visit booked; reply with its number. {listed}."
