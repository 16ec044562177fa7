"""A task's schedule history read back from its own events, its next fire times, and header
redaction for anything that shows events or definitions. Pure.

The log is the only truth, so the "why did this fire time (not) run" list is a fold over the
stream rather than rows kept somewhere else (the runs are domain/task_runs.py's fold). Words: a
schedule decision's `kind`:
`fired` (an occurrence or a trigger was dispatched), `misfired` (occurrences missed while nothing
ran, and what the misfire policy did), `skipped_overlap` (an occurrence came due while the last
run was still going), `snoozed`, `paused`, `resumed`, `triggered` (run-now or an event).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

import msgspec

from domain import events as ev
from domain.schedule import Schedule, next_occurrence

DecisionKind = Literal[
    "fired", "misfired", "skipped_overlap", "snoozed", "paused", "resumed", "triggered"
]
REDACTED = "[redacted]"
MAX_FIRES = 100


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the scheduler (or a person) decided about a fire time, and when."""

    at: datetime
    kind: DecisionKind
    due_at: datetime | None = None
    detail: str = ""


def decisions_of(events: Iterable[ev.TaskEvent]) -> list[Decision]:
    """Every schedule decision in the stream, oldest first."""
    out: list[Decision] = []
    for e in events:
        decision = _decision(e)
        if decision is not None:
            out.append(decision)
    return out


def _decision(e: ev.TaskEvent) -> Decision | None:
    if isinstance(e, ev.TaskDispatched):
        if e.attempt > 1:
            return None  # a retry is an attempt, not a fire time
        return Decision(at=e.at, kind="fired", due_at=e.due_at, detail=f"run {e.run_id}")
    if isinstance(e, ev.TaskMisfired):
        detail = f"{e.missed} missed, policy {e.policy}"
        return Decision(at=e.at, kind="misfired", due_at=e.first_missed_at, detail=detail)
    if isinstance(e, ev.TaskOccurrenceSkipped):
        return Decision(at=e.at, kind="skipped_overlap", due_at=e.due_at, detail=e.reason)
    if isinstance(e, ev.TaskSnoozed):
        return Decision(at=e.at, kind="snoozed", due_at=e.next_run_at, detail=e.reason or "")
    if isinstance(e, ev.TaskPaused):
        return Decision(at=e.at, kind="paused")
    if isinstance(e, ev.TaskResumed):
        return Decision(at=e.at, kind="resumed", due_at=e.next_run_at)
    if isinstance(e, ev.TaskTriggered):
        detail = f"event {e.event}" if e.event else "run now"
        return Decision(at=e.at, kind="triggered", due_at=e.due_at, detail=detail)
    return None


def next_fires(schedule: Schedule, *, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire instants strictly after `after` (the schedule engine's DST rule)."""
    return list(_fires(schedule, after, min(count, MAX_FIRES)))


def _fires(schedule: Schedule, after: datetime, count: int) -> Iterator[datetime]:
    if schedule.kind == "event":
        return
    cursor = after
    for _ in range(count):
        instant = next_occurrence(schedule, cursor)
        if instant is None:
            return
        yield instant
        cursor = instant


def redact_headers(value: Any) -> Any:
    """`value` with the value of every `headers` mapping, at any depth, replaced by REDACTED.

    Header values carry credentials (Authorization, API keys); their names stay visible so a
    reader can still see what a call sends.
    """
    if isinstance(value, dict):
        return {
            k: (
                {name: REDACTED for name in v}
                if k == "headers" and isinstance(v, dict)
                else redact_headers(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_headers(v) for v in value]
    return value

