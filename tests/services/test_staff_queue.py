"""Staff alerts against in-memory fakes: the topic hears of a task until the task records that
it was alerted, so a throttled publish is made by the step's retry and never lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from chalicelib.domain.errors import DependencyUnavailable
from chalicelib.services.staff_queue import StaffQueue

TENANT = {"id": "t1", "departments": [{"id": "cardiology", "name": "心内科"}]}
ABOUT = {"appointment_id": "a1", "patient_id": "p1", "department": "cardiology"}


@dataclass
class FakeTasks:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def create(self, tenant_id: str, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        if doc["id"] in self.tasks:
            return dict(self.tasks[doc["id"]]), False
        self.tasks[doc["id"]] = dict(doc)
        return dict(doc), True

    def mark_alerted(self, tenant_id: str, task: dict[str, Any], at: str) -> dict[str, Any]:
        self.tasks[task["id"]]["alerted_at"] = at
        return dict(self.tasks[task["id"]])


@dataclass
class FakeTopic:
    failures: list[Exception] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    def publish(self, topic: str, subject: str, message: str, attributes: Any) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.published.append(message)
        return f"m-{len(self.published)}"


@pytest.fixture
def staff_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    class Settings:
        staff_topic_arn = "arn:aws:sns:us-east-1:123456789012:careloop-local-staff"

    monkeypatch.setattr("chalicelib.services.staff_queue.get_settings", Settings)


def queue(tasks: FakeTasks, topic: FakeTopic) -> StaffQueue:
    return StaffQueue(cast(Any, tasks), cast(Any, topic))


@pytest.mark.usefixtures("staff_topic")
def test_a_throttled_alert_is_published_by_the_retry_and_then_never_again() -> None:
    tasks, topic = FakeTasks(), FakeTopic(failures=[DependencyUnavailable("Throttled")])
    with pytest.raises(DependencyUnavailable):
        queue(tasks, topic).open_task("t1", "a1-v1-no-answer", "no_answer", ABOUT, tenant=TENANT)
    assert "alerted_at" not in tasks.tasks["a1-v1-no-answer"], "the task is open, not alerted"
    # The step's retry: the task exists already, and its alert is still owed.
    queue(tasks, topic).open_task("t1", "a1-v1-no-answer", "no_answer", ABOUT, tenant=TENANT)
    assert len(topic.published) == 1 and "alerted_at" in tasks.tasks["a1-v1-no-answer"]
    queue(tasks, topic).open_task("t1", "a1-v1-no-answer", "no_answer", ABOUT, tenant=TENANT)
    assert len(topic.published) == 1, "alerted once the task says so"


@pytest.mark.usefixtures("staff_topic")
def test_an_urgent_alert_is_repeated_while_its_task_is_open() -> None:
    tasks, topic = FakeTasks(), FakeTopic()
    for _ in range(2):
        queue(tasks, topic).open_task(
            "t1", "qr-1-urgent", "urgent_answer", ABOUT, tenant=TENANT, priority="urgent"
        )
    assert len(topic.published) == 2, "twice is better than never"
