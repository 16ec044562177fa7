"""Run-now (TriggerTask) and snooze (SnoozeTask) as pure decisions, and how dispatch treats them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import events as ev
from domain.commands import CancelTask, PauseTask, SnoozeTask, TriggerTask
from domain.errors import InvalidState, ValidationError
from domain.execution import decide_dispatch, decide_finish
from domain.schedule import Schedule
from domain.task import MAX_SNOOZE_SECONDS, TaskState, decide
from tests.unit.test_execution import T0, after, every_minute, once_at, run, task

HOURLY = Schedule(kind="cron", expr="30 * * * *")  # first at T0 + 30 min
NEXT = T0 + timedelta(minutes=30)


def finish(state: TaskState, at: object) -> TaskState:
    return after(
        state,
        decide_finish(state, run_id=state.run_id or "", attempt=state.attempt, ok=True,
                      now=at, random_unit=0.0),  # type: ignore[arg-type]
    )  # fmt: skip


def test_trigger_makes_the_task_due_now_and_records_the_event_that_fired_it() -> None:
    state = task(HOURLY)
    at = T0 + timedelta(minutes=10)
    (triggered,) = decide(state, TriggerTask(event="invoice.paid", event_payload={"n": 1}), now=at)
    assert isinstance(triggered, ev.TaskTriggered)
    assert (triggered.due_at, triggered.event, triggered.event_payload) == (
        at,
        "invoice.paid",
        {"n": 1},
    )
    assert after(state, [triggered]).next_run_at == at


def test_a_triggered_run_leaves_the_recurring_schedule_untouched() -> None:
    state = task(HOURLY)
    at = T0 + timedelta(minutes=10)
    state = after(state, decide(state, TriggerTask(), now=at))
    state = run(state, at)
    assert state.run_status == "running"
    assert state.next_run_at == NEXT, "the next occurrence must stay"
    state = finish(state, at)
    assert (state.run_status, state.next_run_at) == ("pending", NEXT)


def test_a_triggered_one_shot_still_runs_at_its_own_time() -> None:
    due = T0 + timedelta(hours=2)
    state = task(once_at(due))
    state = after(state, decide(state, TriggerTask(), now=T0))
    state = finish(run(state, T0), T0)
    assert (state.run_status, state.next_run_at) == ("pending", due)
    state = finish(run(state, due), due)
    assert (state.run_status, state.next_run_at, state.runs_completed) == ("completed", None, 2)


def test_an_event_task_runs_once_per_trigger() -> None:
    state = task(Schedule(kind="event", expr="invoice.paid"))
    assert state.next_run_at is None
    state = after(state, decide(state, TriggerTask(event="invoice.paid"), now=T0))
    state = finish(run(state, T0), T0)
    assert (state.run_status, state.next_run_at) == ("completed", None)


def test_trigger_on_an_already_due_task_adds_nothing() -> None:
    state = task(once_at(T0))
    assert decide(state, TriggerTask(), now=T0 + timedelta(seconds=1)) == []


@pytest.mark.parametrize("status_after", ["dispatched", "running"])
def test_trigger_while_a_run_is_in_flight_is_refused(status_after: str) -> None:
    state = task(every_minute())
    at = T0 + timedelta(minutes=1)
    state = after(state, decide_dispatch(state, now=at, run_id="r1", lease_seconds=30))
    if status_after == "running":
        state = run(task(every_minute()), at)
    with pytest.raises(InvalidState, match=status_after):
        decide(state, TriggerTask(), now=at)


@pytest.mark.parametrize(
    ("command", "word"), [(PauseTask(), "paused"), (CancelTask(), "cancelled")]
)
def test_trigger_and_snooze_refuse_a_task_that_is_not_active(command: object, word: str) -> None:
    state = task(HOURLY)
    state = after(state, decide(state, command, now=T0))  # type: ignore[arg-type]
    with pytest.raises(InvalidState, match=word):
        decide(state, TriggerTask(), now=T0)
    with pytest.raises(InvalidState, match=word):
        decide(state, SnoozeTask(delay_seconds=60), now=T0)


def test_snooze_moves_the_next_run_later_by_the_delay_and_keeps_the_reason() -> None:
    state = task(HOURLY)
    (snoozed,) = decide(state, SnoozeTask(delay_seconds=600, reason="waiting on CRM"), now=T0)
    assert isinstance(snoozed, ev.TaskSnoozed)
    assert (snoozed.next_run_at, snoozed.reason) == (
        NEXT + timedelta(minutes=10),
        "waiting on CRM",
    )
    state = after(state, [snoozed])
    assert decide_dispatch(state, now=NEXT, run_id="r1", lease_seconds=30) == []
    state = run(state, NEXT + timedelta(minutes=10))
    assert state.run_status == "running"
    assert state.next_run_at == NEXT + timedelta(hours=1), "later occurrences keep their times"


@pytest.mark.parametrize("delay", [0, -5, MAX_SNOOZE_SECONDS + 1])
def test_snooze_delay_outside_one_second_to_a_week_is_refused(delay: int) -> None:
    with pytest.raises(ValidationError) as refused:
        decide(task(HOURLY), SnoozeTask(delay_seconds=delay), now=T0)
    assert refused.value.field == "delay_seconds"


def test_snooze_of_exactly_a_week_is_accepted() -> None:
    (snoozed,) = decide(task(HOURLY), SnoozeTask(delay_seconds=MAX_SNOOZE_SECONDS), now=T0)
    assert isinstance(snoozed, ev.TaskSnoozed)
    assert snoozed.next_run_at == NEXT + timedelta(weeks=1)


def test_snooze_reason_over_the_limit_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        decide(task(HOURLY), SnoozeTask(delay_seconds=60, reason="x" * 1001), now=T0)
    assert refused.value.field == "reason"


def test_snooze_without_a_scheduled_run_is_refused() -> None:
    state = task(Schedule(kind="event", expr="invoice.paid"))
    with pytest.raises(InvalidState, match="no scheduled run"):
        decide(state, SnoozeTask(delay_seconds=60), now=T0)
