"""An SNS delivery or a scheduled run that keeps failing is retried as Lambda retries an
asynchronous invocation (MaximumRetryAttempts from infra/platform.yaml), then kept as a dead
letter that `GET /local/dead-letters` and `python -m local dead-letters` list, without PHI."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import Api, payload

SENDER = "+8613912345678"
REPLY = "C Wei Zhang, diabetic, room 12"


class DownstreamUnavailable(Exception):
    """Stands in for a dependency that stays down through every retry."""


def failing(calls: list[str], name: str, times: int | None = None) -> Any:
    def fail(*args: Any) -> Any:
        calls.append(name)
        if times is None or len(calls) <= times:
            raise DownstreamUnavailable("the SMS from " + SENDER)  # a message that quotes PHI
        return {"started": 0}

    return fail


def listed(api: Api, function: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/local/dead-letters?function={function}")
    assert response.status_code == 200, response.body
    items: list[dict[str, Any]] = payload(response)["items"]
    return items


def test_an_sms_reply_that_always_fails_is_retried_then_listed_without_phi(
    runtime: Any, api: Api, app_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from chalicelib.handlers import inbound
    from local.__main__ import main

    before = {letter["id"] for letter in listed(api, "inbound_sms")}
    calls: list[str] = []
    monkeypatch.setattr(inbound, "_inbound", lambda: SimpleNamespace(sms=failing(calls, "sms")))
    response = api.call("POST", "/local/sms-reply", body={"from": SENDER, "text": REPLY})
    assert response.status_code == 202, response.body
    runtime.settle()

    assert calls == ["sms"] * 3, "the first attempt and Lambda's two retries"
    new = [letter for letter in listed(api, "inbound_sms") if letter["id"] not in before]
    assert len(new) == 1, new
    letter = new[0]
    assert letter["event_kind"] == "sns"
    assert letter["function"] == "inbound_sms"
    assert letter["error"] == "DownstreamUnavailable"
    assert letter["attempts"] == 3
    assert letter["failed_at"].endswith("Z")
    text = json.dumps(listed(api, "inbound_sms"))
    assert SENDER not in text and "Wei" not in text and "8613912345678" not in text

    # The CLI a newcomer uses, against the running server.
    main(["dead-letters", "--server", app_url, "--function", "inbound_sms"])
    printed = capsys.readouterr().out
    assert letter["id"] in printed
    assert "inbound_sms" in printed and "DownstreamUnavailable after 3 attempts" in printed
    assert SENDER not in printed and "Wei" not in printed

    # What failed is kept beside the listing, as the queue's message body holds it on AWS.
    from local.dead_letters import dead_letters

    kept = dead_letters.event(letter["id"])
    assert kept is not None and SENDER in kept["Records"][0]["Sns"]["Message"]


def test_a_reply_that_succeeds_on_a_retry_leaves_no_dead_letter(
    runtime: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.handlers import inbound

    before = len(listed(api, "inbound_sms"))
    calls: list[str] = []
    monkeypatch.setattr(
        inbound, "_inbound", lambda: SimpleNamespace(sms=failing(calls, "sms", times=2))
    )
    response = api.call("POST", "/local/sms-reply", body={"from": SENDER, "text": "C"})
    assert response.status_code == 202
    runtime.settle()
    assert calls == ["sms"] * 3
    assert len(listed(api, "inbound_sms")) == before


def test_a_scheduled_sweep_that_always_fails_is_retried_then_listed(
    runtime: Any, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app as app_module
    from chalicelib import clock
    from chalicelib.handlers import care
    from local.schedules import run_scheduled

    calls: list[str] = []
    broken = SimpleNamespace(recall=SimpleNamespace(sweep=failing(calls, "sweep")))
    monkeypatch.setattr(care, "services", lambda: broken)
    letter = run_scheduled(app_module.recall_sweep, "recall_sweep", clock.now())

    assert calls == ["sweep"] * 3
    assert letter is not None
    found = [d for d in listed(api, "recall_sweep") if d["id"] == letter["id"]]
    assert found == [letter]
    assert letter["event_kind"] == "schedule" and letter["error"] == "DownstreamUnavailable"


def test_every_schedule_of_the_app_can_run_locally() -> None:
    """Daily crons and rates (a sweep every 15 minutes) both run on the virtual clock."""
    from datetime import UTC, datetime, timedelta

    from chalice.app import Cron, Rate

    import app as app_module
    from local.schedules import next_fire

    moment = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert next_fire(Rate(15, unit=Rate.MINUTES))(moment) == moment + timedelta(minutes=15)
    daily = next_fire(Cron(0, 1, "*", "*", "?", "*"))
    assert daily(moment) == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    for source in app_module.app.event_sources:
        expression = getattr(source, "schedule_expression", None)
        if expression is not None:
            assert next_fire(expression)(moment) > moment, source.name
