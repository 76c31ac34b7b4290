"""Patient rules, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain import patients as rules
from chalicelib.domain.common import merge_patch
from chalicelib.domain.errors import Forbidden, ValidationFailed

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
NOW_ISO = "2026-11-23T01:00:00Z"
TENANT = {"id": "t1", "time_zone": "Asia/Shanghai", "default_language": "zh-CN", "country": "CN"}


def new(**body: Any) -> dict[str, Any]:
    return rules.new_patient({"name": {"given": "Wei"}, **body}, TENANT, "p-1", NOW, NOW_ISO)


def failing_path(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    return exc.value.details[0].path


def test_national_number_is_read_in_the_tenants_country_and_stored_as_e164() -> None:
    assert new(phone="138 0013 8000")["phone"] == "+8613800138000"
    assert new(phone="+44 20 7946 0018")["phone"] == "+442079460018"


@pytest.mark.parametrize("phone", ["12345", "not a phone", "+86 000"])
def test_invalid_phone_names_the_field(phone: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        new(phone=phone)
    assert failing_path(exc) == "$.phone"


def test_language_and_time_zone_default_to_the_tenants() -> None:
    doc = new()
    assert (doc["language"], doc["time_zone"]) == ("zh-CN", "Asia/Shanghai")


def test_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as exc:
        new(time_zone="Mars/Olympus")
    assert failing_path(exc) == "$.time_zone"


def test_a_minor_needs_a_guardian() -> None:
    with pytest.raises(ValidationFailed) as exc:
        new(birth_date="2015-06-01")
    assert failing_path(exc) == "$.guardian"
    guardian = {"name": "Li Na", "relationship": "parent", "phone": "13900139000"}
    doc = new(birth_date="2015-06-01", guardian=guardian)
    assert doc["guardian"]["phone"] == "+8613900139000"


def test_age_turns_on_the_birthday() -> None:
    assert rules.age_on(date(2008, 11, 23), date(2026, 11, 22)) == 17
    assert rules.age_on(date(2008, 11, 23), date(2026, 11, 23)) == 18


def test_birth_date_in_the_future_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as exc:
        new(birth_date="2030-01-01")
    assert failing_path(exc) == "$.birth_date"


def test_consent_without_a_time_is_recorded_as_given_now_and_future_consent_is_rejected() -> None:
    doc = new(consent={"sms": {"status": "granted", "method": "paper_form"}})
    assert doc["consent"]["sms"]["at"] == NOW_ISO
    with pytest.raises(ValidationFailed) as exc:
        new(consent={"sms": {"status": "granted", "method": "app", "at": "2027-01-01T00:00:00Z"}})
    assert failing_path(exc) == "$.consent.sms.at"


def test_consent_time_with_an_offset_is_stored_in_utc() -> None:
    doc = new(
        consent={"email": {"status": "granted", "method": "app", "at": "2026-11-23T08:30:00+08:00"}}
    )
    assert doc["consent"]["email"]["at"] == "2026-11-23T00:30:00Z"


def test_preferred_channel_needs_its_contact() -> None:
    with pytest.raises(ValidationFailed) as exc:
        new(preferred_channels=["email"])
    assert failing_path(exc) == "$.preferred_channels"


def test_email_is_normalised() -> None:
    assert new(email=" Zhang.Wei@Example.COM ")["email"] == "zhang.wei@example.com"


def test_patient_may_edit_contact_but_not_clinical_fields() -> None:
    current = {**new(phone="13800138000"), "version": 1}
    changed = rules.patched_patient(
        current, {"language": "en"}, TENANT, NOW, NOW_ISO, by_patient=True
    )
    assert changed["language"] == "en"
    with pytest.raises(Forbidden):
        rules.patched_patient(
            current, {"medical": {"conditions": ["x"]}}, TENANT, NOW, NOW_ISO, by_patient=True
        )
    staff_change = rules.patched_patient(
        current, {"member_class": "vip"}, TENANT, NOW, NOW_ISO, by_patient=False
    )
    assert staff_change["member_class"] == "vip"


@pytest.mark.parametrize("field", ["id", "version", "created_at"])
def test_read_only_fields_cannot_be_patched(field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        rules.check_patch_allowed({field: "x"}, by_patient=False)
    assert failing_path(exc) == f"$.{field}"


def test_merge_patch_merges_objects_and_null_removes() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge_patch(target, {"a": {"b": None, "e": 4}, "d": None}) == {"a": {"c": 2, "e": 4}}
    assert target == {"a": {"b": 1, "c": 2}, "d": 3}, "the original is untouched"


def test_mrn_of() -> None:
    assert rules.mrn_of({"external_ids": {"mrn": "M-1"}}) == "M-1"
    assert rules.mrn_of({}) is None


# --- who a message about a patient goes to ---------------------------------------------------

GUARDIAN = {
    "name": "Li Na",
    "relationship": "parent",
    "phone": "+8613800138000",
    "email": "li.na@example.com",
    "language": "en",
    "preferred_channels": ["email"],
    "consent": {"sms": {"status": "withdrawn", "method": "sms"}},
}
TODAY = date(2026, 11, 23)


def aged(years: int, **more: Any) -> dict[str, Any]:
    born = TODAY.replace(year=TODAY.year - years).isoformat()
    return {
        "id": "p-1",
        "name": {"given": "Ming", "family": "Zhang"},
        "birth_date": born,
        "language": "zh-CN",
        "time_zone": "Asia/Shanghai",
        "guardian": GUARDIAN,
        **more,
    }


@pytest.mark.parametrize("years", [6, 9, 13])
def test_a_young_minor_is_reached_through_the_guardian_even_with_a_phone(years: int) -> None:
    child = aged(years, phone="+8613900000000", preferred_channels=["sms"])
    view = rules.addressee(child, TENANT, TODAY)
    assert view["phone"] == "+8613800138000" and view["email"] == "li.na@example.com"
    assert view["name"] == {"given": "Li Na"} and view["guardian_of"] == "Ming"
    assert view["language"] == "en" and view["preferred_channels"] == ["email"]
    assert view["consent"] == GUARDIAN["consent"], "the guardian's consent, not the child's"
    assert view["id"] == "p-1" and view["time_zone"] == "Asia/Shanghai"


def test_from_the_tenants_age_a_minor_with_a_contact_of_their_own_is_reached_directly() -> None:
    teen = aged(15, phone="+8613900000000")
    assert rules.addressee(teen, TENANT, TODAY) is teen
    no_phone = aged(15)
    assert rules.addressee(no_phone, TENANT, TODAY)["guardian_of"] == "Ming"
    strict = {**TENANT, "minors": {"own_contact_from_age": 16}}
    assert rules.addressee(teen, strict, TODAY)["guardian_of"] == "Ming"
    assert rules.addressee(teen, TENANT, TODAY, guardian_only=True)["guardian_of"] == "Ming"


def test_an_adult_and_a_minor_turning_eighteen_are_reached_directly() -> None:
    adult = aged(40, phone="+8613900000000")
    assert rules.addressee(adult, TENANT, TODAY) is adult
    assert rules.addressee(aged(18), TENANT, TODAY)["name"] == {"given": "Ming", "family": "Zhang"}
    view = rules.addressee(aged(9), TENANT, TODAY)
    assert rules.addressee(view, TENANT, TODAY) is view, "addressing twice changes nothing"


def test_a_guardians_channels_follow_what_the_guardian_has() -> None:
    phone_only = {"name": "Li Na", "relationship": "parent", "phone": "+8613800138000"}
    view = rules.addressee(aged(6, guardian=phone_only), TENANT, TODAY)
    assert view["preferred_channels"] == ["sms"] and "email" not in view
    assert view["language"] == "zh-CN", "the child's language when the guardian has none"


def test_a_guardians_preferred_channel_needs_its_contact() -> None:
    guardian = {
        "name": "Li Na",
        "relationship": "parent",
        "phone": "138 0013 8000",
        "preferred_channels": ["email"],
    }
    with pytest.raises(ValidationFailed) as exc:
        new(birth_date="2019-05-01", guardian=guardian)
    assert failing_path(exc) == "$.guardian.preferred_channels"
    stamped = new(
        birth_date="2019-05-01",
        guardian={
            **guardian,
            "preferred_channels": ["sms"],
            "consent": {"sms": {"status": "granted", "method": "app"}},
        },
    )
    assert stamped["guardian"]["consent"]["sms"]["at"] == NOW_ISO
