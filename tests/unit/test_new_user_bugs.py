"""Issue 10 §5, the domain half: snooze through pause/resume, cancel of a running task, the last
worker kept, and a one-shot in the past."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import events as ev
from domain.commands import CancelTask, DeleteTask, PauseTask, ResumeTask, SnoozeTask
from domain.execution import (
    StaleDelivery,
    decide_dispatch,
    decide_finish,
    decide_lease_expired,
    decide_start,
)
from domain.task import TaskState, decide, public_status
from tests.unit.test_execution import T0, after, once_at, run, task
from tests.unit.test_trigger_snooze import HOURLY, NEXT, finish


def pause_and_resume(state: TaskState, paused_at: object, resumed_at: object) -> TaskState:
    state = after(state, decide(state, PauseTask(), now=paused_at))  # type: ignore[arg-type]
    return after(state, decide(state, ResumeTask(), now=resumed_at))  # type: ignore[arg-type]


def test_pause_then_resume_keeps_a_cron_snooze() -> None:
    state = task(HOURLY)
    state = after(state, decide(state, SnoozeTask(delay_seconds=600), now=T0))
    snoozed = NEXT + timedelta(minutes=10)
    state = pause_and_resume(state, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert state.next_run_at == snoozed
    assert decide_dispatch(state, now=NEXT, run_id="r1", lease_seconds=30) == []
    state = run(state, snoozed)
    assert state.run_status == "running"
    assert state.next_run_at == NEXT + timedelta(hours=1), "later occurrences keep their times"


def test_pause_then_resume_keeps_a_once_snooze() -> None:
    due = T0 + timedelta(hours=1)
    state = task(once_at(due))
    state = after(state, decide(state, SnoozeTask(delay_seconds=3600), now=T0))
    state = pause_and_resume(state, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert state.next_run_at == due + timedelta(hours=1)
    assert decide_dispatch(state, now=due, run_id="r1", lease_seconds=30) == []


def test_a_cron_snooze_that_passed_while_paused_is_not_made_up() -> None:
    state = task(HOURLY)
    state = after(state, decide(state, SnoozeTask(delay_seconds=600), now=T0))
    resumed = NEXT + timedelta(minutes=20)
    state = pause_and_resume(state, T0 + timedelta(minutes=1), resumed)
    assert state.next_run_at == NEXT + timedelta(hours=1)


def test_a_snooze_is_used_up_by_the_run_it_delayed() -> None:
    state = task(HOURLY)
    state = after(state, decide(state, SnoozeTask(delay_seconds=600), now=T0))
    state = finish(run(state, NEXT + timedelta(minutes=10)), NEXT + timedelta(minutes=11))
    assert state.snoozed_until is None
    state = pause_and_resume(state, NEXT + timedelta(minutes=12), NEXT + timedelta(minutes=13))
    assert state.next_run_at == NEXT + timedelta(hours=1)


@pytest.mark.parametrize("command", [CancelTask(reason="stop"), DeleteTask()])
def test_cancel_or_delete_ends_a_running_run_as_cancelled(command: object) -> None:
    at = T0 + timedelta(minutes=30)
    state = run(task(HOURLY), at)
    (stopped,) = decide(state, command, now=at + timedelta(seconds=1))  # type: ignore[arg-type]
    assert isinstance(stopped, ev.TaskCancelled | ev.TaskDeleted)
    assert stopped.run_id == "r1"
    state = after(state, [stopped])
    assert (state.run_status, state.lease_until) == ("cancelled", None)
    with pytest.raises(StaleDelivery):
        decide_finish(state, run_id="r1", attempt=1, ok=True, now=at + timedelta(seconds=2),
                      random_unit=0.0)  # fmt: skip
    # Its lease can no longer expire into a worker_lost failure and a retry.
    assert decide_lease_expired(state, now=at + timedelta(hours=1), random_unit=0.0) == []


def test_cancel_of_a_dispatched_run_keeps_it_from_starting() -> None:
    state = task(HOURLY)
    state = after(state, decide_dispatch(state, now=NEXT, run_id="r1", lease_seconds=30))
    state = after(state, decide(state, CancelTask(), now=NEXT))
    assert public_status(state) == "cancelled"
    with pytest.raises(StaleDelivery):
        decide_start(state, run_id="r1", attempt=1, worker_id="w", now=NEXT, lease_seconds=30)


def test_cancel_between_runs_names_no_run() -> None:
    (cancelled,) = decide(task(HOURLY), CancelTask(), now=T0)
    assert isinstance(cancelled, ev.TaskCancelled)
    assert cancelled.run_id is None


def test_the_last_worker_is_kept_after_the_run_ends() -> None:
    state = run(task(HOURLY), NEXT)
    assert state.worker_id == "w"
    assert finish(state, NEXT).worker_id == "w"
    failed = after(
        state, decide_finish(state, run_id="r1", attempt=1, ok=False, now=NEXT, random_unit=0.0)
    )
    assert failed.worker_id == "w"


def test_a_one_shot_in_the_past_is_created_due_now_and_dispatched_late() -> None:
    asked = T0 - timedelta(days=30)
    state = task(once_at(asked))
    assert state.next_run_at == asked
    (dispatched,) = decide_dispatch(state, now=T0, run_id="r1", lease_seconds=30)
    assert isinstance(dispatched, ev.TaskDispatched)
    assert (dispatched.due_at, dispatched.at) == (asked, T0), "the lateness is on record"


def test_the_last_outcome_says_how_the_latest_run_ended() -> None:
    state = task(HOURLY)
    assert state.last_outcome is None
    done = finish(run(state, NEXT), NEXT)
    assert (done.run_status, done.last_outcome) == ("pending", "completed")
    at = NEXT + timedelta(hours=1)
    running = run(done, at, run_id="r2")
    outcome = decide_finish(running, run_id="r2", attempt=1, ok=False, now=at, random_unit=0.0)
    assert after(running, outcome).last_outcome == "failed"
    cancelled = after(running, decide(running, CancelTask(), now=at))
    assert cancelled.last_outcome == "cancelled"
