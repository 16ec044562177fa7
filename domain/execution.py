"""Execution decisions: when a task is dispatched, started, finished or given up on. Pure.

Runs are fenced by `(run_id, attempt)` and the stream version: a broker delivery that is a
duplicate, or that arrives after its lease was declared lost, meets state that no longer
matches and is refused with StaleDelivery, so a run never starts or completes twice in the log.

Policies, each decision recorded as an event so the history says why every fire time did or
did not run:
- misfire (occurrences that came due while nothing dispatched them, e.g. during downtime):
  `run_once` (default) runs one and records `task.misfired` with the count of the others;
  `skip` runs none and records them; `run_all` runs them back to back, at most `misfire_cap`,
  recording any beyond the cap.
- overlap (an occurrence comes due while the previous run is still going): `skip` (default)
  records `task.occurrence_skipped` and moves to the next occurrence; `queue_one` keeps it due,
  so it runs as soon as the current run ends; `allow` is treated as `queue_one` until runs can
  overlap in one task's state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import events as ev
from domain.actions import HttpAction, http_status_of
from domain.errors import DomainError
from domain.retry_policy import MAX_CAP_SECONDS, retries_reason, retry_delay, should_retry
from domain.schedule import next_occurrence, occurrences_between
from domain.task import TaskState

IN_FLIGHT = ("dispatched", "running")
# Failures no retry can mend: the egress guard refused the destination at call time (it
# resolves to a forbidden address), so every further attempt would be refused the same way.
EGRESS_REFUSED = "egress_refused"
PERMANENT_REASONS = frozenset({EGRESS_REFUSED})


class StaleDelivery(DomainError):
    """A delivery for a run or attempt the task has moved past: drop it."""

    code = "stale_delivery"


def is_due(state: TaskState, now: datetime) -> bool:
    """Whether the scheduler should look at this task now."""
    return (
        state.lifecycle == "active" and state.next_run_at is not None and state.next_run_at <= now
    )


def decide_dispatch(
    state: TaskState, *, now: datetime, run_id: str, lease_seconds: float
) -> list[ev.TaskEvent]:
    """The events for handing a due task to a worker ([] when nothing is to be done now)."""
    if not is_due(state, now):
        return []
    assert state.next_run_at is not None
    due = state.next_run_at
    definition = state.definition
    schedule = definition.schedule
    lease_until = now + timedelta(seconds=lease_seconds)
    if state.run_status in IN_FLIGHT:
        if definition.overlap_policy != "skip" or state.run_status == "retrying":
            return []
        return [
            ev.TaskOccurrenceSkipped(
                at=now, due_at=due, reason="overlap", next_run_at=next_occurrence(schedule, now)
            )
        ]
    if state.run_status == "retrying":
        return [
            ev.TaskDispatched(
                at=now,
                run_id=state.run_id or run_id,
                attempt=state.attempt + 1,
                due_at=due,
                lease_until=lease_until,
                next_run_at=_after_run(state, now),
            )
        ]
    if schedule.kind in ("once", "event") or not _is_occurrence(state, due):
        # One-shots, manual triggers and snoozes fire exactly the instant they name.
        return [_dispatch(run_id, due, lease_until, _after_run(state, now), now)]
    return _dispatch_occurrence(state, due, now=now, run_id=run_id, lease_until=lease_until)


def _is_occurrence(state: TaskState, due: datetime) -> bool:
    # A recurring task's due instant is an occurrence unless a trigger or snooze moved it.
    return next_occurrence(state.definition.schedule, due - timedelta(microseconds=1)) == due


def _after_run(state: TaskState, now: datetime) -> datetime | None:
    schedule = state.definition.schedule
    if schedule.kind == "event":
        return None
    # A `once` whose time is still ahead (a run-now went first) keeps it; one that passed is done.
    return next_occurrence(schedule, now)


def _dispatch(
    run_id: str, due: datetime, lease_until: datetime, next_run_at: datetime | None, now: datetime
) -> ev.TaskDispatched:
    return ev.TaskDispatched(
        at=now,
        run_id=run_id,
        attempt=1,
        due_at=due,
        lease_until=lease_until,
        next_run_at=next_run_at,
    )


def _dispatch_occurrence(
    state: TaskState, due: datetime, *, now: datetime, run_id: str, lease_until: datetime
) -> list[ev.TaskEvent]:
    definition = state.definition
    schedule = definition.schedule
    cap = definition.misfire_cap
    # Occurrences after `due` that are also already due were missed.
    missed = occurrences_between(schedule, due, now, limit=cap + 2)
    policy = definition.misfire_policy
    if not missed:
        return [_dispatch(run_id, due, lease_until, next_occurrence(schedule, now), now)]
    if policy == "run_all":
        if len(missed) <= cap:
            # Run `due` now; the next missed occurrence stays due and runs right after.
            return [_dispatch(run_id, due, lease_until, missed[0], now)]
        dropped = _count_between(state, missed[cap - 1] if cap else due, now)
        keep_next = missed[0] if cap else next_occurrence(schedule, now)
        return [
            ev.TaskMisfired(
                at=now,
                missed=dropped,
                policy="run_all",
                first_missed_at=missed[cap] if cap < len(missed) else missed[-1],
                last_missed_at=missed[-1],
                next_run_at=keep_next,
            ),
            _dispatch(run_id, due, lease_until, keep_next, now),
        ]
    count = _count_between(state, due, now)
    next_run_at = next_occurrence(schedule, now)
    if policy == "skip":
        return [
            ev.TaskMisfired(
                at=now,
                missed=count + 1,
                policy="skip",
                first_missed_at=due,
                last_missed_at=missed[-1],
                next_run_at=next_run_at,
            )
        ]
    # run_once: the latest missed occurrence runs; the ones before it are recorded.
    return [
        ev.TaskMisfired(
            at=now,
            missed=count,
            policy="run_once",
            first_missed_at=due,
            last_missed_at=missed[-1],
            next_run_at=next_run_at,
        ),
        _dispatch(run_id, missed[-1], lease_until, next_run_at, now),
    ]


def _count_between(state: TaskState, after: datetime, until: datetime) -> int:
    """Occurrences in (after, until], counted without materialising a huge list."""
    return len(occurrences_between(state.definition.schedule, after, until, limit=1_000_000))


def decide_start(
    state: TaskState,
    *,
    run_id: str,
    attempt: int,
    worker_id: str,
    now: datetime,
    lease_seconds: float,
) -> list[ev.TaskEvent]:
    """A worker picked up a dispatched run; StaleDelivery unless it is the current delivery."""
    if state.run_status != "dispatched" or (state.run_id, state.attempt) != (run_id, attempt):
        raise StaleDelivery(
            f"run {run_id} attempt {attempt} is not waiting to start "
            f"(task is {state.run_status}, run {state.run_id} attempt {state.attempt})"
        )
    return [
        ev.TaskStarted(
            at=now,
            run_id=run_id,
            attempt=attempt,
            worker_id=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
        )
    ]


def decide_finish(
    state: TaskState,
    *,
    run_id: str,
    attempt: int,
    ok: bool,
    now: datetime,
    random_unit: float,
    result: object = None,
    error: str = "",
    reason: str = "error",
    duration_ms: float = 0.0,
    retry_after: float | None = None,
) -> list[ev.TaskEvent]:
    """The outcome of a running attempt: completed, or failed with a retry per the policy.

    `retry_after` is the wait a 429/503 answer asked for (Retry-After); it replaces the
    policy's backoff for the next attempt, bounded by MAX_CAP_SECONDS.
    """
    if state.run_status != "running" or (state.run_id, state.attempt) != (run_id, attempt):
        raise StaleDelivery(f"run {run_id} attempt {attempt} is not running")
    if ok:
        return [
            ev.TaskCompleted(
                at=now, run_id=run_id, attempt=attempt, result=result, duration_ms=duration_ms
            )
        ]
    is_http = isinstance(state.definition.action, HttpAction)
    http_status = http_status_of(result) if is_http else None
    return _failure(state, now=now, error=error, reason=reason, duration_ms=duration_ms,
                    random_unit=random_unit, retry_after=retry_after,
                    http_status=http_status)  # fmt: skip


def decide_lease_expired(
    state: TaskState, *, now: datetime, random_unit: float
) -> list[ev.TaskEvent]:
    """A run whose lease ran out without news: its worker is presumed lost."""
    if state.run_status not in IN_FLIGHT or state.lease_until is None or state.lease_until > now:
        return []
    return _failure(
        state, now=now, error="worker lost: lease expired", reason="worker_lost",
        duration_ms=0.0, random_unit=random_unit,
    )  # fmt: skip


def _failure(
    state: TaskState,
    *,
    now: datetime,
    error: str,
    reason: str,
    duration_ms: float,
    random_unit: float,
    retry_after: float | None = None,
    http_status: int | None = None,
) -> list[ev.TaskEvent]:
    policy = state.definition.retry
    run_id = state.run_id or ""
    retries_used = max(state.attempt - 1, 0)
    retry = (
        state.lifecycle == "active"
        and reason not in PERMANENT_REASONS
        and retries_reason(policy, reason)
        and should_retry(policy, retries_used)
    )
    events: list[ev.TaskEvent] = [
        ev.TaskFailed(
            at=now,
            run_id=run_id,
            attempt=state.attempt,
            error=error[:2000],
            reason=reason,
            duration_ms=duration_ms,
            final=not retry,
            http_status=http_status,
        )
    ]
    if retry:
        delay = retry_delay(policy, retries_used + 1, random_unit)
        if retry_after is not None:
            delay = min(max(retry_after, 0.0), MAX_CAP_SECONDS)
        events.append(
            ev.TaskRetrying(
                at=now,
                run_id=run_id,
                attempt=state.attempt + 1,
                next_attempt_at=now + timedelta(seconds=delay),
                reason=reason,
            )
        )
    return events


def dependency_verdict(state: TaskState, statuses: dict[str, str]) -> tuple[str, str | None]:
    """("ready" | "wait" | "cancel", reason) given each dependency's status (absent: deleted)."""
    waiting = False
    for dependency in state.definition.dependencies:
        status = statuses.get(dependency)
        if status is None:
            return "cancel", f"dependency {dependency} was deleted"
        if status in ("failed", "cancelled"):
            return "cancel", f"dependency {dependency} {status}"
        if status != "completed":
            waiting = True
    return ("wait", None) if waiting else ("ready", None)
