"""Opt-outs as staff read them on a patient's record: a phone's STOP (when, which keyword, to this
hospital or to every hospital) and its START, an email address's bounce or complaint.

Opt-outs belong to the phone number or address, not to a patient (a reply arrives before we know
whose it is, and family members share numbers), so a patient's record shows the state of each of
its contacts: the patient's own and the guardian's.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NotRequired, TypedDict

SMS_REPLY = "sms_reply"  # how a STOP or START came: a text to a hospital's number


class OptOutScope(StrEnum):
    THIS_HOSPITAL = "this_hospital"  # STOP to this hospital's number
    EVERY_HOSPITAL = "every_hospital"  # STOP whose hospital could not be told


class SmsOptRecord(TypedDict):
    """A STOP or START as stored: when, which word, how it came."""

    at: str
    keyword: NotRequired[str]  # absent on records made before keywords were kept
    how: NotRequired[str]  # sms_reply


class SmsOptIn(SmsOptRecord):
    """A START, with the STOP it lifted."""

    lifted: NotRequired[SmsOptRecord]
    lifted_scope: NotRequired[str]


class SmsOptRecords(TypedDict, total=False):
    """The records one phone number carries for one hospital."""

    this_hospital: SmsOptRecord  # STOP to this hospital
    every_hospital: SmsOptRecord  # STOP to every hospital
    back_in: SmsOptIn  # START to this hospital (after a STOP to it, or to every hospital)
    back_in_everywhere: SmsOptIn  # START whose hospital could not be told


class ContactOptOut(TypedDict):
    """One contact's state on the patient's record."""

    channel: str  # sms | email
    address: str
    whose: str  # patient | guardian
    opted_out: bool
    at: NotRequired[str]  # when the opt-out (or, lifted, the last one) happened
    how: NotRequired[str]  # sms_reply | bounce | complaint
    keyword: NotRequired[str]
    scope: NotRequired[str]  # OptOutScope, for SMS
    lifted_at: NotRequired[str]
    lifted_how: NotRequired[str]
    lifted_keyword: NotRequired[str]


def sms_opted_out(records: SmsOptRecords) -> bool:
    """STOP to this hospital, or to every hospital and no START to this one since (a START in
    the same second as the STOP does not lift it: the safe side)."""
    if "this_hospital" in records:
        return True
    everyone = records.get("every_hospital")
    back_in = records.get("back_in")
    return everyone is not None and (back_in is None or back_in["at"] <= everyone["at"])


def sms_state(phone: str, whose: str, records: SmsOptRecords) -> ContactOptOut:
    """What staff see of one phone: the STOP in force, or the last START and what it lifted."""
    state: ContactOptOut = {"channel": "sms", "address": phone, "whose": whose, "opted_out": False}
    if sms_opted_out(records):
        if "this_hospital" in records:
            stop, scope = records["this_hospital"], OptOutScope.THIS_HOSPITAL
        else:
            stop, scope = records["every_hospital"], OptOutScope.EVERY_HOSPITAL
        state["opted_out"] = True
        state["scope"] = scope.value
        _stop_fields(stop, state)
        return state
    starts = [s for s in (records.get("back_in"), records.get("back_in_everywhere")) if s]
    if starts:
        start = max(starts, key=lambda s: s["at"])
        if "lifted" in start:
            _stop_fields(start["lifted"], state)
        if "lifted_scope" in start:
            state["scope"] = start["lifted_scope"]
        state["lifted_at"] = start["at"]
        if "how" in start:
            state["lifted_how"] = start["how"]
        if "keyword" in start:
            state["lifted_keyword"] = start["keyword"]
    return state


def email_state(address: str, whose: str, suppression: dict[str, str] | None) -> ContactOptOut:
    """An address that bounced or complained is not written to again."""
    state: ContactOptOut = {
        "channel": "email",
        "address": address,
        "whose": whose,
        "opted_out": suppression is not None,
    }
    if suppression is not None:
        state["at"] = suppression["at"]
        state["how"] = suppression["reason"]
    return state


def _stop_fields(stop: SmsOptRecord, state: ContactOptOut) -> None:
    state["at"] = stop["at"]
    if "how" in stop:
        state["how"] = stop["how"]
    if "keyword" in stop:
        state["keyword"] = stop["keyword"]
