"""Tenants: a hospital or clinic, with its time zone, language, quiet hours, sender identity and
departments."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from chalicelib.domain import satisfaction
from chalicelib.domain.common import Document, check_time_zone, merge_patch
from chalicelib.domain.errors import Forbidden, Problems, invalid

DEFAULT_QUIET_HOURS = {"start": "21:00", "end": "08:00"}

# How far ahead a tenant takes bookings (`booking.horizon_days`). An appointment's journey is one
# Standard execution, which lives at most a year: booked at most 335 days (about 11 months)
# ahead, it keeps a month for the visit check and the no-show follow-ups. The schema holds the
# maximum (tenant.json#/$defs/booking); a test keeps the two equal.
DEFAULT_BOOKING_HORIZON_DAYS = 180
MAX_BOOKING_HORIZON_DAYS = 335

# The sender identity must be verified with SES and the SMS carriers before it is used, which
# the platform operator does; a tenant's admin cannot switch it to an unverified address.
OPERATOR_ONLY_FIELDS = frozenset({"sender"})


def _check(doc: Document, stage: str) -> None:
    problems = Problems()
    with problems.check():
        check_time_zone("$.time_zone", doc["time_zone"])
    quiet = doc["quiet_hours"]
    if time.fromisoformat(quiet["start"]) == time.fromisoformat(quiet["end"]):
        problems.add("$.quiet_hours", "start and end must differ")
    department_ids = [d["id"] for d in doc.get("departments", [])]
    if len(department_ids) != len(set(department_ids)):
        problems.add("$.departments", "department ids must be unique")
    for index, department in enumerate(doc.get("departments", [])):
        topic = department.get("alert_topic_arn")
        # A tenant may alert only through its own topics, named for this stage and tenant.
        own = f"careloop-{stage}-{doc['id']}-alerts"
        if topic and not topic.rsplit(":", 1)[-1].startswith(own):
            problems.add(
                f"$.departments[{index}].alert_topic_arn",
                f"the topic's name must start with {own}",
            )
    satisfaction.check_settings(doc, problems)
    problems.raise_if_any()


def new_tenant(body: Document, now: datetime, now_iso: str, stage: str = "prod") -> Document:
    """A tenant from a schema-valid creation body, with defaults filled in."""
    doc: Document = {
        "quiet_hours": dict(DEFAULT_QUIET_HOURS),
        "departments": [],
        **body,
        "own_wording": [],
        "active": True,
        "created_at": now_iso,
        "updated_at": now_iso,
    }
    _check(doc, stage)
    return doc


def patched_tenant(
    current: Document, patch: Document, now_iso: str, *, by_operator: bool, stage: str = "prod"
) -> Document:
    for key in ("id", "created_at", "updated_at", "version", "own_wording"):
        if key in patch:
            raise invalid(f"$.{key}", "is read-only")
    if not by_operator:
        for key in OPERATOR_ONLY_FIELDS & set(patch):
            raise Forbidden(f"$.{key} is changed by the platform operator once it is verified")
    doc = merge_patch(current, patch)
    doc["updated_at"] = now_iso
    _check(doc, stage)
    return doc


def may_have_own_wording(tenant: Document, template: str) -> bool:
    """Whether the tenant may have saved its own wording `template` (template_id): it lists
    those it saved (`own_wording`, written with each); a record from before the list was kept
    has none, and may have any."""
    listed = tenant.get("own_wording")
    return listed is None or template in listed


def with_own_wording(tenant: Document, template: str, saved: Collection[str]) -> Document | None:
    """The tenant listing `template` beside the wordings it `saved` before; None if it lists
    it already."""
    if template in tenant.get("own_wording", ()):
        return None
    return {**tenant, "own_wording": sorted({*saved, template})}


def is_quiet(local_time: time, quiet_hours: Document) -> bool:
    """Whether a local wall-clock time falls inside quiet hours (which may span midnight)."""
    start = time.fromisoformat(quiet_hours["start"])
    end = time.fromisoformat(quiet_hours["end"])
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def out_of_quiet_hours(moment: datetime, zone: ZoneInfo, quiet_hours: Document) -> datetime:
    """The first moment at or after `moment` that is outside quiet hours, local to `zone`."""
    local = moment.astimezone(zone)
    if not is_quiet(local.time().replace(microsecond=0), quiet_hours):
        return moment
    end_hour, end_minute = (int(part) for part in quiet_hours["end"].split(":"))
    candidate = local.replace(hour=end_hour, minute=end_minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(moment.tzinfo)


def department_names(tenant: Document) -> dict[str, str]:
    """A tenant's departments, id → name (also the set of ids it knows)."""
    return {d["id"]: d["name"] for d in tenant.get("departments", [])}


def reply_number(tenant: Document) -> str | None:
    """The hospital's own two-way SMS number: its texts leave from it and invite replies to it.
    Without one, texts leave from its sender ID and invite none (a sender ID cannot be answered)."""
    number: str | None = tenant.get("sender", {}).get("sms_reply_number")
    return number


def booking_horizon_days(tenant: Document) -> int:
    """How many days ahead the tenant's slots are offered and booked."""
    days: int = (tenant.get("booking") or {}).get("horizon_days", DEFAULT_BOOKING_HORIZON_DAYS)
    return days


# What a hospital's stack (infra/hospital.yaml) sets; anything else (quiet hours, journey and
# booking settings) is the hospital's admins' to change, and an update of the stack keeps it.
STACK_FIELDS = ("name", "time_zone", "default_language", "country", "departments", "sender")


def tenant_from_stack(props: Document) -> Document:
    """The tenant-create body a hospital stack's custom resource describes (its properties
    arrive as strings and lists of strings)."""
    ids = [i.strip() for i in props.get("DepartmentIds", []) if i.strip()]
    names = [n.strip() for n in props.get("DepartmentNames", [])]
    if len(names) != len(ids):
        raise invalid("$.DepartmentNames", "give one name for each of DepartmentIds")
    prefix = props.get("AlertTopicPrefix", "")
    departments = [
        {"id": i, "name": n, **({"alert_topic_arn": f"{prefix}{i}"} if prefix else {})}
        for i, n in zip(ids, names, strict=True)
    ]
    sender: Document = {"email_from": props["EmailFrom"]}
    for field, prop in (
        ("email_configuration_set", "EmailConfigurationSet"),
        ("sms_sender_id", "SmsSenderId"),
        ("sms_reply_number", "SmsReplyNumber"),
    ):
        if props.get(prop):
            sender[field] = props[prop]
    body: Document = {
        "id": props["TenantId"],
        "name": props["Name"],
        "time_zone": props["TimeZone"],
        "default_language": props["Language"],
        "sender": sender,
        "departments": departments,
    }
    if props.get("Country"):
        body["country"] = props["Country"]
    return body


def is_active(tenant: Document) -> bool:
    """False once the hospital's stack was deleted: its data stays, nothing is sent."""
    return tenant.get("active", True) is not False
