"""A campaign's groups (control, wordings) and the lift between them, in milliseconds."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib.domain import campaigns, outreach_effect

# Newcombe (1998), "Interval estimation for the difference between independent proportions",
# Statistics in Medicine 17:873-890, Table II, method 10: his five examples and their intervals.
NEWCOMBE_METHOD_10 = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
]


@pytest.mark.parametrize(("counts", "published"), NEWCOMBE_METHOD_10)
def test_the_interval_of_a_difference_is_newcombes(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    _, low, high = outreach_effect.difference_interval(*counts)
    assert (round(low, 4), round(high, 4)) == published


def test_each_wording_is_compared_with_the_control_group_and_with_the_first_wording() -> None:
    groups = [
        outreach_effect.group_conversion("control", 80, 48),
        outreach_effect.group_conversion("plain", 70, 56),
        outreach_effect.group_conversion("benefit", 0, 0),
    ]
    assert groups[0]["conversion"] == 0.6 and "conversion" not in groups[2]
    [plain_vs_control] = outreach_effect.lifts(groups, "control")  # benefit reached nobody
    assert plain_vs_control == {
        "group": "plain",
        "versus": "control",
        "difference": 0.2,
        "ci95": [0.0524, 0.3339],
        "relative": 0.3333,
    }


def campaign(**extra: object) -> dict[str, object]:
    return {"id": "c-0123456789abcdef", "message": {"text": {"en": "Hi"}}, **extra}


def test_groups_are_reproducible_random_shares_of_the_segment() -> None:
    patients = [f"p-{n:012x}" for n in range(10_000)]
    ab = campaign(
        control_group={"percent": 10},
        variants=[
            {"name": "plain", "message": {"text": {"en": "A"}}},
            {"name": "benefit", "message": {"text": {"en": "B"}}},
        ],
    )
    arms = Counter(campaigns.arm_of(ab, p) for p in patients)
    assert 900 <= arms["control"] <= 1100  # 10% of 10,000, within 3.3 standard deviations
    assert 4300 <= arms["plain"] <= 4700 and 4300 <= arms["benefit"] <= 4700
    assert sum(arms.values()) == len(patients)
    # The same on every replay, and another campaign draws its own control group.
    assert [campaigns.arm_of(ab, p) for p in patients[:50]] == [
        campaigns.arm_of(dict(ab), p) for p in patients[:50]
    ]
    other = {**ab, "id": "c-fedcba9876543210"}
    same = sum(campaigns.arm_of(ab, p) == campaigns.arm_of(other, p) == "control" for p in patients)
    assert same < 200  # ~1% of patients are in both control groups by chance
    # Without a control group everyone is messaged; one wording is reported as `messaged`.
    assert {campaigns.arm_of(campaign(), p) for p in patients[:500]} == {"messaged"}
    assert campaigns.message_for(ab, "benefit") == {"text": {"en": "B"}}
