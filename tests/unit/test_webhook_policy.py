"""Which events become webhooks and when failed deliveries are tried again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.webhook_policy import DEFAULT_SCHEDULE, next_attempt, task_payload, wants
from tests.unit.test_execution import task
from tests.unit.test_trigger_snooze import HOURLY

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_default_filter_is_every_task_event_but_not_internal_or_worker_events() -> None:
    assert wants((), "task.completed") and wants((), "task.retrying")
    assert not wants((), "task.dispatched") and not wants((), "task.checkpointed")
    assert not wants((), "worker.offline"), "worker events go only to endpoints that ask"
    assert wants(("worker.offline",), "worker.offline")
    assert not wants(("task.completed",), "task.failed")


def test_schedule_then_give_up() -> None:
    delays = [
        (next_attempt(n, now=NOW, status_code=500, retry_after=None) - NOW).total_seconds()  # type: ignore[operator]
        for n in range(1, len(DEFAULT_SCHEDULE) + 1)
    ]
    assert delays == list(DEFAULT_SCHEDULE)
    assert (
        next_attempt(len(DEFAULT_SCHEDULE) + 1, now=NOW, status_code=500, retry_after=None) is None
    )


def test_retry_after_only_lengthens_and_is_capped() -> None:
    longer = next_attempt(1, now=NOW, status_code=429, retry_after="120", schedule=(5,))
    assert longer == NOW + timedelta(seconds=120)
    shorter = next_attempt(1, now=NOW, status_code=429, retry_after="1", schedule=(5,))
    assert shorter == NOW + timedelta(seconds=5)
    capped = next_attempt(1, now=NOW, status_code=429, retry_after="99999999", schedule=(5,))
    assert capped == NOW + timedelta(days=1)
    ignored = next_attempt(1, now=NOW, status_code=429, retry_after="soon", schedule=(5,))
    assert ignored == NOW + timedelta(seconds=5)


def test_a_task_payload_names_its_event_and_stream_version() -> None:
    state = task(HOURLY)
    payload = task_payload("task.created", NOW, state, event_id="e-1")
    assert (payload.event_id, payload.stream_version) == ("e-1", 0)
