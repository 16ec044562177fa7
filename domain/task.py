"""The Task aggregate: `decide(state, command, now)` gives events; `evolve` folds them.

Both are pure. A task's stream holds its definition changes and every run; the state folded from
it is what every view and every API surface reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from domain import events as ev
from domain.actions import validate_action, validate_url
from domain.commands import (
    CancelTask,
    CheckpointTask,
    CreateTask,
    DeleteTask,
    PauseTask,
    ResumeTask,
    RetryTask,
    SnoozeTask,
    TaskCommand,
    TriggerTask,
    UpdateTask,
)
from domain.errors import InvalidState, NotFound, ValidationError
from domain.retry_policy import validate_retry_policy
from domain.schedule import first_occurrence, next_occurrence, validate_schedule
from domain.task_definition import TaskDefinition

Lifecycle = Literal["active", "paused", "cancelled", "deleted"]
RunStatus = Literal[
    "pending", "dispatched", "running", "completed", "failed", "retrying", "cancelled"
]
# Run states a cancel or delete interrupts: the run ends as `cancelled` and nothing it reports
# afterwards is recorded.
INTERRUPTIBLE = ("dispatched", "running", "retrying")
RunOutcome = Literal["completed", "failed", "cancelled"]

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 50
MAX_TAG = 100
MAX_DEPENDENCIES = 100
MAX_TIMEOUT_SECONDS = 7 * 86400
MAX_DEDUPE_WINDOW = 30 * 86400
MAX_SNOOZE_SECONDS = 7 * 86400
MAX_SNOOZE_REASON = 1000


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    """A task as its events leave it; `version` is the stream version of the last event."""

    task_id: str
    project_id: str
    definition: TaskDefinition
    version: int
    created_at: datetime
    updated_at: datetime
    lifecycle: Lifecycle = "active"
    run_status: RunStatus = "pending"
    next_run_at: datetime | None = None
    run_id: str | None = None
    attempt: int = 0
    retry_count: int = 0
    worker_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: Any = None
    error: str | None = None
    checkpoint_data: Any = None
    runs_completed: int = 0
    runs_failed: int = 0
    lease_until: datetime | None = None
    due_at: datetime | None = None
    # Where a snooze moved the next run; kept through a pause so a resume honours it.
    snoozed_until: datetime | None = None
    # How the latest run ended (a failed attempt counts), so a finished task reads as finished.
    last_outcome: RunOutcome | None = None


def public_status(state: TaskState) -> str:
    """One status word in the canonical vocabulary (`cancelled`, `paused`, or the run status)."""
    if state.lifecycle in ("cancelled", "paused"):
        return state.lifecycle
    return state.run_status


def validate_definition(
    definition: TaskDefinition, *, now: datetime, allow_commands: bool
) -> TaskDefinition:
    """Check every field; return the definition with its schedule normalised."""
    name = definition.name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError(f"name must be 1-{MAX_NAME} characters", field="name")
    if definition.description is not None and len(definition.description) > MAX_DESCRIPTION:
        raise ValidationError(
            f"description exceeds {MAX_DESCRIPTION} characters", field="description"
        )
    if len(definition.tags) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags", field="tags")
    for tag in definition.tags:
        if not tag or len(tag) > MAX_TAG:
            raise ValidationError(f"each tag must be 1-{MAX_TAG} characters", field="tags")
    if not 1 <= definition.priority <= 10:
        raise ValidationError("priority must be between 1 and 10", field="priority")
    if not 1 <= definition.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationError(
            f"timeout_seconds must be between 1 and {MAX_TIMEOUT_SECONDS}", field="timeout_seconds"
        )
    if len(definition.dependencies) > MAX_DEPENDENCIES:
        raise ValidationError(f"at most {MAX_DEPENDENCIES} dependencies", field="dependencies")
    if any(not d for d in definition.dependencies):
        raise ValidationError("dependency ids must not be empty", field="dependencies")
    if definition.dedupe_window_seconds is not None:
        if definition.dedupe_key is None:
            raise ValidationError(
                "dedupe_window_seconds needs a dedupe_key", field="dedupe_window_seconds"
            )
        if not 1 <= definition.dedupe_window_seconds <= MAX_DEDUPE_WINDOW:
            raise ValidationError(
                f"dedupe_window_seconds must be between 1 and {MAX_DEDUPE_WINDOW}",
                field="dedupe_window_seconds",
            )
    for key_field in ("dedupe_key", "concurrency_key"):
        value = getattr(definition, key_field)
        if value is not None and not 1 <= len(value) <= 200:
            raise ValidationError(f"{key_field} must be 1-200 characters", field=key_field)
    if not 1 <= definition.concurrency_limit <= 1000:
        raise ValidationError(
            "concurrency_limit must be between 1 and 1000", field="concurrency_limit"
        )
    if not 0 <= definition.misfire_cap <= 1000:
        raise ValidationError("misfire_cap must be between 0 and 1000", field="misfire_cap")
    if definition.action is not None:
        validate_action(definition.action, allow_commands=allow_commands)
    if definition.notify_url is not None:
        validate_url(definition.notify_url, "notify_url")
    validate_retry_policy(definition.retry)
    schedule = validate_schedule(definition.schedule, now=now)
    return msgspec.structs.replace(definition, name=name, schedule=schedule)


def decide(
    state: TaskState | None, command: TaskCommand, *, now: datetime, allow_commands: bool = False
) -> list[ev.TaskEvent]:
    """The events `command` produces against `state`; [] when it changes nothing."""
    if isinstance(command, CreateTask):
        if state is not None:
            raise InvalidState(f"task {command.task_id} already exists")
        definition = validate_definition(command.definition, now=now, allow_commands=allow_commands)
        _refuse_self_dependency(command.task_id, definition)
        return [
            ev.TaskCreated(
                at=now,
                task_id=command.task_id,
                project_id=command.project_id,
                definition=definition,
                next_run_at=first_occurrence(definition.schedule, now=now),
            )
        ]
    if state is None or state.lifecycle == "deleted":
        raise NotFound("task not found")
    if isinstance(command, DeleteTask):
        return [ev.TaskDeleted(at=now, run_id=_interrupted_run(state))]
    if isinstance(command, UpdateTask):
        return _decide_update(state, command, now=now, allow_commands=allow_commands)
    if isinstance(command, CheckpointTask):
        if not state.definition.checkpoint_enabled:
            raise InvalidState("checkpointing is not enabled for this task (checkpoint_enabled)")
        _refuse_if_cancelled(state, "checkpoint")
        return [ev.TaskCheckpointed(at=now, data=command.data, run_id=state.run_id)]
    if isinstance(command, PauseTask):
        _refuse_if_cancelled(state, "pause")
        return [] if state.lifecycle == "paused" else [ev.TaskPaused(at=now)]
    if isinstance(command, ResumeTask):
        _refuse_if_cancelled(state, "resume")
        if state.lifecycle == "active":
            return []
        return [ev.TaskResumed(at=now, next_run_at=_next_run_on_resume(state, now))]
    if isinstance(command, CancelTask):
        if state.lifecycle == "cancelled":
            return []
        if _finished(state):
            raise InvalidState(f"task has already {state.run_status}; nothing to cancel")
        return [ev.TaskCancelled(at=now, reason=command.reason, run_id=_interrupted_run(state))]
    if isinstance(command, RetryTask):
        _refuse_if_cancelled(state, "retry")
        if state.run_status != "failed":
            raise InvalidState(
                f"only a failed task can be retried; this one is {public_status(state)}"
            )
        return [
            ev.TaskRetrying(
                at=now,
                run_id=state.run_id or "",
                attempt=state.attempt + 1,
                next_attempt_at=now,
                reason="manual",
                manual=True,
            )
        ]
    if isinstance(command, TriggerTask):
        return _decide_trigger(state, command, now=now)
    if isinstance(command, SnoozeTask):
        return _decide_snooze(state, command, now=now)
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _refuse_self_dependency(task_id: str, definition: TaskDefinition) -> None:
    if task_id in definition.dependencies:
        raise ValidationError("a task cannot depend on itself", field="dependencies")


def _refuse_if_cancelled(state: TaskState, verb: str) -> None:
    if state.lifecycle == "cancelled":
        raise InvalidState(f"cannot {verb} a cancelled task")


def _refuse_unless_active(state: TaskState, verb: str) -> None:
    if state.lifecycle != "active":
        raise InvalidState(f"cannot {verb} a {state.lifecycle} task")


def _interrupted_run(state: TaskState) -> str | None:
    """The run a cancel or delete stops now, if one is under way."""
    return state.run_id if state.run_status in INTERRUPTIBLE else None


def _finished(state: TaskState) -> bool:
    return state.run_status in ("completed", "failed") and state.next_run_at is None


def _decide_update(
    state: TaskState, command: UpdateTask, *, now: datetime, allow_commands: bool
) -> list[ev.TaskEvent]:
    _refuse_if_cancelled(state, "update")
    changes = command.patch.changes()
    changed = tuple(k for k, v in changes.items() if getattr(state.definition, k) != v)
    if not changed:
        return []
    merged = msgspec.structs.replace(state.definition, **{k: changes[k] for k in changed})
    definition = validate_definition(merged, now=now, allow_commands=allow_commands)
    _refuse_self_dependency(state.task_id, definition)
    next_run_at = state.next_run_at
    if (
        "schedule" in changed
        and state.lifecycle == "active"
        and state.run_status
        not in (
            "dispatched",
            "running",
        )
    ):
        next_run_at = first_occurrence(definition.schedule, now=now)
    return [ev.TaskUpdated(at=now, definition=definition, changed=changed, next_run_at=next_run_at)]


def _decide_trigger(state: TaskState, command: TriggerTask, *, now: datetime) -> list[ev.TaskEvent]:
    # Only an active task that is between runs can take an extra one: the run state holds one
    # run at a time, and a paused task's due time is recomputed on resume.
    _refuse_unless_active(state, "run")
    if state.run_status in ("dispatched", "running", "retrying"):
        raise InvalidState(f"a run is already {state.run_status}; try again when it has finished")
    if state.next_run_at is not None and state.next_run_at <= now:
        return []  # already due: the run about to start is the immediate one
    return [
        ev.TaskTriggered(
            at=now, due_at=now, event=command.event, event_payload=command.event_payload
        )
    ]


def _decide_snooze(state: TaskState, command: SnoozeTask, *, now: datetime) -> list[ev.TaskEvent]:
    delay = command.delay_seconds
    if isinstance(delay, bool) or not 1 <= delay <= MAX_SNOOZE_SECONDS:
        raise ValidationError(
            f"delay_seconds must be between 1 and {MAX_SNOOZE_SECONDS} (one week), got {delay!r}",
            field="delay_seconds",
        )
    if command.reason is not None and len(command.reason) > MAX_SNOOZE_REASON:
        raise ValidationError(f"reason exceeds {MAX_SNOOZE_REASON} characters", field="reason")
    _refuse_unless_active(state, "snooze")
    if state.next_run_at is None:
        raise InvalidState("the task has no scheduled run to snooze")
    return [
        ev.TaskSnoozed(
            at=now,
            next_run_at=state.next_run_at + timedelta(seconds=delay),
            reason=command.reason,
        )
    ]


def _next_run_on_resume(state: TaskState, now: datetime) -> datetime | None:
    schedule = state.definition.schedule
    snoozed = state.snoozed_until
    if schedule.kind == "once":
        # A one-shot whose time (or snoozed time) passed while paused is due now, not lost.
        if _finished(state) or state.runs_completed:
            return None
        return snoozed if snoozed is not None else first_occurrence(schedule, now=now)
    if state.run_status == "retrying" and state.next_run_at is not None:
        return max(state.next_run_at, now)
    if snoozed is not None and snoozed > now:
        return snoozed
    # Occurrences that came due while paused (a snoozed one included) are not made up.
    return next_occurrence(schedule, now - timedelta(microseconds=1))


def evolve(state: TaskState | None, event: ev.TaskEvent) -> TaskState:
    """The state after `event`."""
    if isinstance(event, ev.TaskCreated):
        return TaskState(
            task_id=event.task_id,
            project_id=event.project_id,
            definition=event.definition,
            version=0,
            created_at=event.at,
            updated_at=event.at,
            next_run_at=event.next_run_at,
        )
    if state is None:
        raise ValueError(f"{ev.event_type(event)} before task.created")
    s = msgspec.structs.replace(state, version=state.version + 1, updated_at=event.at)
    replace = msgspec.structs.replace
    if isinstance(event, ev.TaskUpdated):
        # A new schedule replaces the occurrence a snooze had moved.
        snoozed = None if "schedule" in event.changed else s.snoozed_until
        return replace(
            s, definition=event.definition, next_run_at=event.next_run_at, snoozed_until=snoozed
        )
    if isinstance(event, ev.TaskPaused):
        return replace(s, lifecycle="paused")
    if isinstance(event, ev.TaskResumed):
        return replace(s, lifecycle="active", next_run_at=event.next_run_at)
    if isinstance(event, ev.TaskCancelled):
        return _interrupt(replace(s, lifecycle="cancelled", next_run_at=None), event)
    if isinstance(event, ev.TaskDeleted):
        return _interrupt(replace(s, lifecycle="deleted", next_run_at=None), event)
    if isinstance(event, ev.TaskCheckpointed):
        return replace(s, checkpoint_data=event.data)
    if isinstance(event, ev.TaskTriggered):
        return replace(s, next_run_at=event.due_at)
    if isinstance(event, ev.TaskSnoozed):
        return replace(s, next_run_at=event.next_run_at, snoozed_until=event.next_run_at)
    if isinstance(event, ev.TaskMisfired | ev.TaskOccurrenceSkipped):
        return replace(s, next_run_at=event.next_run_at)
    if isinstance(event, ev.TaskDispatched):
        return replace(
            s,
            run_status="dispatched",
            run_id=event.run_id,
            attempt=event.attempt,
            next_run_at=event.next_run_at,
            worker_id=None,
            error=None,
            lease_until=event.lease_until,
            due_at=event.due_at,
            snoozed_until=None,
        )
    if isinstance(event, ev.TaskStarted):
        return replace(
            s,
            run_status="running",
            worker_id=event.worker_id,
            started_at=event.at,
            completed_at=None,
            lease_until=event.lease_until,
        )
    if isinstance(event, ev.TaskCompleted):
        return replace(
            s,
            run_status="pending" if s.next_run_at is not None else "completed",
            result=event.result,
            completed_at=event.at,
            lease_until=None,
            runs_completed=s.runs_completed + 1,
            last_outcome="completed",
        )
    if isinstance(event, ev.TaskFailed):
        waiting = s.next_run_at is not None and event.final
        return replace(
            s,
            run_status="pending" if waiting else "failed",
            error=event.error,
            completed_at=event.at,
            lease_until=None,
            runs_failed=s.runs_failed + (1 if event.final else 0),
            last_outcome="failed",
        )
    if isinstance(event, ev.TaskRetrying):
        return replace(
            s,
            # A manual retry waits for dispatch like a new task; a policy retry waits out a backoff.
            run_status="pending" if event.manual else "retrying",
            retry_count=s.retry_count + 1,
            next_run_at=event.next_attempt_at,
        )
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


def _interrupt(state: TaskState, event: ev.TaskCancelled | ev.TaskDeleted) -> TaskState:
    """End the run a cancel or delete stopped: it is `cancelled`, and its lease is void."""
    if event.run_id is None or state.run_status not in INTERRUPTIBLE:
        return state
    return msgspec.structs.replace(
        state, run_status="cancelled", lease_until=None, completed_at=event.at,
        last_outcome="cancelled",
    )  # fmt: skip


def fold(events: Iterable[ev.TaskEvent], state: TaskState | None = None) -> TaskState | None:
    """Replay `events` onto `state`."""
    for event in events:
        state = evolve(state, event)
    return state
