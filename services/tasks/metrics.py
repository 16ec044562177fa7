"""Turning task events that were just appended into Prometheus counts.

Called from the one place every task event is appended (TaskService), so a count can neither be
missed by a new code path nor made twice: an event counts in the process that appended it, once
its transaction committed. Conflicts and dedupe matches append nothing and count nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from domain.events import (
    TaskCompleted,
    TaskCreated,
    TaskDispatched,
    TaskEvent,
    TaskFailed,
    TaskRetrying,
    TaskStarted,
)
from domain.task import TaskState
from services.metrics.catalog import (
    TASK_START_LATENESS,
    TASKS_COMPLETED,
    TASKS_CREATED,
    TASKS_DISPATCHED,
    TASKS_FAILED,
    TASKS_RETRIED,
    TASKS_STARTED,
)

_COUNTERS: dict[type, Counter] = {
    TaskCreated: TASKS_CREATED,
    TaskDispatched: TASKS_DISPATCHED,
    TaskStarted: TASKS_STARTED,
    TaskCompleted: TASKS_COMPLETED,
    TaskRetrying: TASKS_RETRIED,
}


def count_appended(before: TaskState | None, events: Sequence[TaskEvent]) -> None:
    """Count `events`, appended to a task that was `before`; a start also records its lateness."""
    for event in events:
        if isinstance(event, TaskFailed):
            TASKS_FAILED.labels(final="true" if event.final else "false").inc()
            continue
        counter = _COUNTERS.get(type(event))
        if counter is not None:
            counter.inc()
        if isinstance(event, TaskStarted) and before is not None and before.due_at is not None:
            # Clock skew between a worker and the scheduler can make this slightly negative.
            TASK_START_LATENESS.observe(max(0.0, (event.at - before.due_at).total_seconds()))
