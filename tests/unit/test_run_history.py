"""The runs table (with HTTP status, lateness, cancel) and the schedule decisions, folded from
a task's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain import events as ev
from domain.actions import HandlerAction, HttpAction
from domain.run_history import decisions_of, next_fires, redact_headers
from domain.schedule import Schedule
from domain.task_definition import TaskDefinition
from domain.task_runs import runs_of
from infra.event_store import FeedHead
from services.live.changes import ChangeFeed, Watcher, task_topic, topics_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def created(action: object = None) -> ev.TaskCreated:
    definition = TaskDefinition(
        name="t", schedule=Schedule(kind="cron", expr="* * * * *"),
        action=action or HttpAction(url="https://example.com"),  # type: ignore[arg-type]
    )  # fmt: skip
    return ev.TaskCreated(at=T0, task_id="t1", project_id="p", definition=definition,
                          next_run_at=at(60))  # fmt: skip


def test_a_retried_run_has_one_row_per_attempt() -> None:
    stream = [
        created(),
        ev.TaskDispatched(at=at(60.5), run_id="r", attempt=1, due_at=at(60), lease_until=at(90)),
        ev.TaskStarted(at=at(61), run_id="r", attempt=1, worker_id="w1", lease_until=at(91)),
        ev.TaskFailed(at=at(62), run_id="r", attempt=1, error="HTTP 503", reason="http_status",
                      duration_ms=900.0, final=False, http_status=503),
        ev.TaskRetrying(at=at(62), run_id="r", attempt=2, next_attempt_at=at(64)),
        ev.TaskDispatched(at=at(64.25), run_id="r", attempt=2, due_at=at(64), lease_until=at(94)),
        ev.TaskStarted(at=at(65), run_id="r", attempt=2, worker_id="w2", lease_until=at(95)),
        ev.TaskCompleted(at=at(66), run_id="r", attempt=2, result={"status": 201, "body": ""},
                         duration_ms=800.0),
    ]  # fmt: skip
    first, second = runs_of(stream)
    assert (first.status, first.http_status, first.final, first.worker_id) == (
        "failed", 503, False, "w1",
    )  # fmt: skip
    assert first.lateness_ms == 500.0 and first.duration_ms == 900.0
    assert (second.status, second.http_status, second.final) == ("completed", 201, True)
    assert second.lateness_ms == 250.0 and second.started_at == at(65)
    assert [d.kind for d in decisions_of(stream)] == ["fired"], "a retry is not a fire time"


def test_only_http_results_give_a_status_and_lost_workers_no_duration() -> None:
    stream = [
        created(HandlerAction(name="h")),
        ev.TaskDispatched(at=at(60), run_id="a", attempt=1, due_at=at(60), lease_until=at(90)),
        ev.TaskStarted(at=at(60), run_id="a", attempt=1, worker_id="w", lease_until=at(90)),
        ev.TaskCompleted(at=at(61), run_id="a", attempt=1, result={"status": 7}),
        ev.TaskDispatched(at=at(120), run_id="b", attempt=1, due_at=at(120), lease_until=at(150)),
        ev.TaskFailed(at=at(150), run_id="b", attempt=1, error="worker lost",
                      reason="worker_lost"),
    ]  # fmt: skip
    handled, lost = runs_of(stream)
    assert handled.http_status is None
    assert (lost.status, lost.started_at, lost.duration_ms) == ("failed", None, None)


def test_a_cancel_closes_the_attempt_in_flight() -> None:
    stream = [
        created(),
        ev.TaskDispatched(at=at(60), run_id="a", attempt=1, due_at=at(60), lease_until=at(90)),
        ev.TaskCancelled(at=at(70)),
    ]
    (attempt,) = runs_of(stream)
    assert (attempt.status, attempt.finished_at) == ("cancelled", at(70))


def test_every_kind_of_schedule_decision_is_listed() -> None:
    stream = [
        created(),
        ev.TaskMisfired(at=at(300), missed=3, policy="run_once", first_missed_at=at(60),
                        last_missed_at=at(240)),
        ev.TaskOccurrenceSkipped(at=at(360), due_at=at(360), reason="overlap", next_run_at=None),
        ev.TaskSnoozed(at=at(400), next_run_at=at(900), reason="maintenance"),
        ev.TaskPaused(at=at(410)),
        ev.TaskResumed(at=at(420), next_run_at=at(900)),
        ev.TaskTriggered(at=at(430), due_at=at(430)),
        ev.TaskTriggered(at=at(440), due_at=at(440), event="invoice.paid"),
    ]  # fmt: skip
    decisions = decisions_of(stream)
    assert [d.kind for d in decisions] == [
        "misfired", "skipped_overlap", "snoozed", "paused", "resumed", "triggered", "triggered",
    ]  # fmt: skip
    assert decisions[0].detail == "3 missed, policy run_once"
    assert [d.detail for d in decisions[-2:]] == ["run now", "event invoice.paid"]


def test_next_fires_follow_the_dst_rule() -> None:
    # New York springs forward on 2026-03-08: 02:30 does not exist and fires at 03:00 EDT.
    schedule = Schedule(kind="cron", expr="30 2 * * *", timezone="America/New_York")
    fires = next_fires(schedule, after=datetime(2026, 3, 7, 0, 0, tzinfo=UTC), count=3)
    assert fires == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
    ]
    assert next_fires(Schedule(kind="event", expr="x"), after=T0, count=5) == []
    once = Schedule(kind="once", expr="2026-03-01T13:00:00Z")
    assert next_fires(once, after=T0, count=5) == [datetime(2026, 3, 1, 13, tzinfo=UTC)]


def test_header_values_are_redacted_at_any_depth_and_names_kept() -> None:
    data = {"definition": {"action": {"headers": {"Authorization": "Bearer x", "X-A": "1"},
                                      "url": "u"}}, "list": [{"headers": {"K": "v"}}]}  # fmt: skip
    out = redact_headers(data)
    redacted = {"Authorization": "[redacted]", "X-A": "[redacted]"}
    assert out["definition"]["action"] == {"headers": redacted, "url": "u"}
    assert out["list"] == [{"headers": {"K": "[redacted]"}}]
    assert data["definition"]["action"]["headers"]["X-A"] == "1", "the input is not changed"


def test_change_signals_are_per_project_and_coalesced() -> None:
    feed = ChangeFeed()
    mine, theirs = Watcher("p1"), Watcher("p2")
    feed._watchers.update({mine, theirs})
    feed.publish([FeedHead("p1", "task-a-1", "task.created")] * 50
                 + [FeedHead("system", "worker-w", "worker.registered")])  # fmt: skip
    assert mine.pending == {"tasks", task_topic("a-1"), "workers"}
    assert theirs.pending == {"workers"}
    assert task_topic("a-1") == "task_a_1"
    assert topics_of(FeedHead("p", "other-x", "x")) == ()
