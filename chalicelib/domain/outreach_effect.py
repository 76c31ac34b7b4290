"""What outreach achieved: conversion of each group of a campaign (its wordings, its control
group) or of a recall rule, and the lift of one group over another with a 95% confidence
interval. Pure.

Conversion is the share of a group's patients who booked what the outreach asked for within
its window from the moment the campaign reached them in its segment (assigned them a wording,
or held them out). Every patient counts in the group they were assigned to, whether or not the
message could reach them (intention to treat): the control group holds patients the message
would not have reached too, so leaving those out of the wordings only would favour them.

The interval of a difference of two shares is Newcombe's hybrid score interval (method 10 of
Newcombe 1998, from each share's Wilson interval): unlike the textbook normal approximation it
stays within [-1, 1] and behaves with few conversions, which is what a clinic's campaign has.
"""

from __future__ import annotations

from math import sqrt
from statistics import NormalDist
from typing import NotRequired, TypedDict

Z95 = NormalDist().inv_cdf(0.975)  # 1.96


class GroupConversion(TypedDict):
    group: str  # `control`, or the wording's name (`messaged` when there is one)
    patients: int  # assigned to the group when the campaign reached them in its segment
    converted: int  # of those, booked what was asked within the window
    reached: NotRequired[int]  # of a wording's patients, those its message reached
    conversion: NotRequired[float]  # converted / patients (absent with no patients)


class Lift(TypedDict):
    group: str
    versus: str
    difference: float  # conversion of `group` less that of `versus` (0.05: 5 points more)
    ci95: list[float]  # [low, high] of the difference
    relative: NotRequired[float]  # difference / conversion of `versus` (absent when it is 0)


def wilson(converted: int, patients: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a share."""
    share = converted / patients
    spread = z * z / patients
    centre = (share + spread / 2) / (1 + spread)
    half = z / (1 + spread) * sqrt(share * (1 - share) / patients + spread / (4 * patients))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    converted: int, patients: int, base_converted: int, base_patients: int
) -> tuple[float, float, float]:
    """The difference of two shares and its 95% interval (Newcombe's method 10)."""
    share, base = converted / patients, base_converted / base_patients
    low, high = wilson(converted, patients)
    base_low, base_high = wilson(base_converted, base_patients)
    difference = share - base
    return (
        difference,
        difference - sqrt((share - low) ** 2 + (base_high - base) ** 2),
        difference + sqrt((high - share) ** 2 + (base - base_low) ** 2),
    )


def group_conversion(
    group: str, patients: int, converted: int, reached: int | None = None
) -> GroupConversion:
    found: GroupConversion = {"group": group, "patients": patients, "converted": converted}
    if reached is not None:
        found["reached"] = reached
    if patients:
        found["conversion"] = round(converted / patients, 4)
    return found


def lift(group: GroupConversion, versus: GroupConversion) -> Lift | None:
    """How much better `group` converted than `versus` (None: either has no patients)."""
    if not group["patients"] or not versus["patients"]:
        return None
    difference, low, high = difference_interval(
        group["converted"], group["patients"], versus["converted"], versus["patients"]
    )
    found: Lift = {
        "group": group["group"],
        "versus": versus["group"],
        "difference": round(difference, 4),
        "ci95": [round(low, 4), round(high, 4)],
    }
    base = versus["converted"] / versus["patients"]
    if base:
        found["relative"] = round(difference / base, 4)
    return found


def lifts(groups: list[GroupConversion], control: str) -> list[Lift]:
    """Each wording against the control group (when there is one), and each wording after the
    first against the first (an A/B comparison of wordings)."""
    by_name = {g["group"]: g for g in groups}
    wordings = [g for g in groups if g["group"] != control]
    pairs = [(w, by_name[control]) for w in wordings if control in by_name]
    pairs += [(w, wordings[0]) for w in wordings[1:]]
    return [found for g, v in pairs if (found := lift(g, v)) is not None]
