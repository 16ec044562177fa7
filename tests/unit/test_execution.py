"""Execution decisions as pure functions: dispatch, start, finish, retries, leases, policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain import events as ev
from domain.actions import HttpAction
from domain.commands import CreateTask
from domain.execution import (
    EGRESS_REFUSED,
    StaleDelivery,
    decide_dispatch,
    decide_finish,
    decide_lease_expired,
    decide_start,
    dependency_verdict,
)
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task import TaskState, decide, fold, public_status
from domain.task_definition import TaskDefinition

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def task(schedule: Schedule, **overrides: object) -> TaskState:
    base = {
        "name": "t",
        "action": HttpAction(url="https://example.com/x"),
        "schedule": schedule,
        "retry": RetryPolicy(max_retries=2, backoff="fixed", base_seconds=5, cap_seconds=60),
    }
    definition = TaskDefinition(**{**base, **overrides})  # type: ignore[arg-type]
    created = decide(None, CreateTask(task_id="t", project_id="p", definition=definition), now=T0)
    state = fold(created)
    assert state is not None
    return state


def after(state: TaskState, events: list[ev.TaskEvent]) -> TaskState:
    new = fold(events, state)
    assert new is not None
    return new


def once_at(t: datetime) -> Schedule:
    return Schedule(kind="once", expr=t.isoformat())


def every_minute() -> Schedule:
    return Schedule(kind="cron", expr="* * * * *")


def run(state: TaskState, at: datetime, run_id: str = "r1") -> TaskState:
    state = after(state, decide_dispatch(state, now=at, run_id=run_id, lease_seconds=30))
    return after(
        state,
        decide_start(state, run_id=state.run_id or "", attempt=state.attempt, worker_id="w",
                     now=at, lease_seconds=30),
    )  # fmt: skip


def test_one_shot_is_dispatched_once_when_due() -> None:
    state = task(once_at(T0 + timedelta(seconds=10)))
    assert decide_dispatch(state, now=T0, run_id="r1", lease_seconds=30) == []
    (dispatched,) = decide_dispatch(
        state, now=T0 + timedelta(seconds=10), run_id="r1", lease_seconds=30
    )
    assert isinstance(dispatched, ev.TaskDispatched)
    assert (dispatched.attempt, dispatched.next_run_at) == (1, None)
    state = after(state, [dispatched])
    assert public_status(state) == "dispatched"
    assert decide_dispatch(state, now=T0 + timedelta(hours=1), run_id="r2", lease_seconds=30) == []


def test_start_and_finish_are_fenced_by_run_and_attempt() -> None:
    state = task(once_at(T0))
    state = after(state, decide_dispatch(state, now=T0, run_id="r1", lease_seconds=30))
    with pytest.raises(StaleDelivery):
        decide_start(state, run_id="other", attempt=1, worker_id="w", now=T0, lease_seconds=30)
    with pytest.raises(StaleDelivery):
        decide_start(state, run_id="r1", attempt=2, worker_id="w", now=T0, lease_seconds=30)
    state = after(
        state, decide_start(state, run_id="r1", attempt=1, worker_id="w", now=T0, lease_seconds=30)
    )
    with pytest.raises(StaleDelivery):  # a duplicate delivery of the same message
        decide_start(state, run_id="r1", attempt=1, worker_id="w2", now=T0, lease_seconds=30)
    done = after(
        state,
        decide_finish(
            state, run_id="r1", attempt=1, ok=True, now=T0, random_unit=0.5, result={"s": 200}
        ),
    )
    assert public_status(done) == "completed" and done.result == {"s": 200}
    with pytest.raises(StaleDelivery):
        decide_finish(done, run_id="r1", attempt=1, ok=True, now=T0, random_unit=0.5)


def test_failures_retry_per_policy_then_fail_for_good() -> None:
    state = run(task(once_at(T0)), T0)
    for attempt, at in ((1, T0), (2, T0 + timedelta(seconds=5)), (3, T0 + timedelta(seconds=10))):
        assert state.attempt == attempt
        events = decide_finish(
            state, run_id="r1", attempt=attempt, ok=False, now=at, random_unit=0.5, error="HTTP 500"
        )
        state = after(state, events)
        if attempt < 3:
            failed, retrying = events
            assert isinstance(failed, ev.TaskFailed) and not failed.final
            assert isinstance(retrying, ev.TaskRetrying)
            assert (
                retrying.next_attempt_at == at + timedelta(seconds=5)
                and retrying.attempt == attempt + 1
            )
            assert public_status(state) == "retrying"
            assert decide_dispatch(state, now=at, run_id="x", lease_seconds=30) == []
            state = run(state, retrying.next_attempt_at, run_id="ignored")
            assert state.run_id == "r1", "attempts of one run keep its id (the idempotency key)"
        else:
            (failed,) = events
            assert isinstance(failed, ev.TaskFailed) and failed.final
    assert public_status(state) == "failed" and state.error == "HTTP 500" and state.retry_count == 2


def test_a_destination_refused_at_call_time_fails_for_good_without_retries() -> None:
    state = run(task(once_at(T0)), T0)
    (failed,) = decide_finish(
        state, run_id="r1", attempt=1, ok=False, now=T0, random_unit=0.5,
        error="address 127.0.0.1 is not a public destination", reason=EGRESS_REFUSED,
    )  # fmt: skip
    assert isinstance(failed, ev.TaskFailed) and failed.final
    assert failed.reason == "egress_refused"
    assert public_status(after(state, [failed])) == "failed"


def test_lost_lease_fails_the_run_as_worker_lost_and_retries() -> None:
    state = run(task(once_at(T0)), T0)
    assert decide_lease_expired(state, now=T0 + timedelta(seconds=29), random_unit=0) == []
    failed, retrying = decide_lease_expired(state, now=T0 + timedelta(seconds=31), random_unit=0)
    assert isinstance(failed, ev.TaskFailed) and failed.reason == "worker_lost"
    assert isinstance(retrying, ev.TaskRetrying) and retrying.attempt == 2


def test_misfire_run_once_runs_the_latest_and_records_the_rest() -> None:
    state = task(every_minute())
    assert state.next_run_at == T0
    now = T0 + timedelta(minutes=10, seconds=30)
    misfired, dispatched = decide_dispatch(state, now=now, run_id="r1", lease_seconds=30)
    assert isinstance(misfired, ev.TaskMisfired) and misfired.missed == 10
    assert misfired.first_missed_at == T0 and misfired.last_missed_at == T0 + timedelta(minutes=10)
    assert isinstance(dispatched, ev.TaskDispatched) and dispatched.due_at == T0 + timedelta(
        minutes=10
    )
    assert dispatched.next_run_at == T0 + timedelta(minutes=11)


def test_misfire_skip_runs_nothing_and_records_all() -> None:
    state = task(every_minute(), misfire_policy="skip")
    (misfired,) = decide_dispatch(
        state, now=T0 + timedelta(minutes=10, seconds=30), run_id="r", lease_seconds=30
    )
    assert isinstance(misfired, ev.TaskMisfired) and misfired.missed == 11
    assert after(state, [misfired]).next_run_at == T0 + timedelta(minutes=11)


def test_misfire_run_all_runs_back_to_back_up_to_the_cap() -> None:
    state = task(every_minute(), misfire_policy="run_all")
    now = T0 + timedelta(minutes=3, seconds=30)
    (dispatched,) = decide_dispatch(state, now=now, run_id="r", lease_seconds=30)
    assert isinstance(dispatched, ev.TaskDispatched) and dispatched.due_at == T0
    assert dispatched.next_run_at == T0 + timedelta(minutes=1), "the next missed one stays due"
    capped = task(every_minute(), misfire_policy="run_all", misfire_cap=2)
    misfired, dispatched = decide_dispatch(capped, now=now, run_id="r", lease_seconds=30)
    assert isinstance(misfired, ev.TaskMisfired) and misfired.missed == 1


def test_overlap_skip_records_the_skipped_occurrence() -> None:
    state = run(task(every_minute()), T0)
    now = T0 + timedelta(minutes=1, seconds=5)
    (skipped,) = decide_dispatch(state, now=now, run_id="r2", lease_seconds=30)
    assert isinstance(skipped, ev.TaskOccurrenceSkipped) and skipped.reason == "overlap"
    assert skipped.due_at == T0 + timedelta(minutes=1)
    assert after(state, [skipped]).next_run_at == T0 + timedelta(minutes=2)
    queued = run(task(every_minute(), overlap_policy="queue_one"), T0)
    assert decide_dispatch(queued, now=now, run_id="r2", lease_seconds=30) == []


def test_recurring_task_returns_to_pending_between_runs() -> None:
    state = run(task(every_minute()), T0)
    state = after(
        state, decide_finish(state, run_id="r1", attempt=1, ok=True, now=T0, random_unit=0)
    )
    assert public_status(state) == "pending" and state.next_run_at == T0 + timedelta(minutes=1)


def test_dependency_verdicts() -> None:
    state = task(once_at(T0), dependencies=("a", "b"))
    assert dependency_verdict(state, {"a": "completed", "b": "completed"}) == ("ready", None)
    assert dependency_verdict(state, {"a": "completed", "b": "running"}) == ("wait", None)
    assert dependency_verdict(state, {"a": "failed", "b": "running"}) == (
        "cancel",
        "dependency a failed",
    )
    assert dependency_verdict(state, {"a": "completed"}) == ("cancel", "dependency b was deleted")
    assert dependency_verdict(state, {"a": "cancelled", "b": "completed"})[0] == "cancel"
