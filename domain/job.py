"""The Job aggregate (stream `job-<id>`): definition versions, pause, schedule fires, admission.

The job is the authority on how many of its executions run at once: an execution starts only
after its `job.triggered` (admitted) or `job.execution_admitted` is in the job's stream, and the
stream's expected-version check serialises those decisions across gateways and schedulers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from domain import job_events as ev
from domain.errors import InvalidState, NotFound, ValidationError
from domain.job_definition import (
    JobDefinition,
    JobRetryPolicy,
    JobTask,
    MisfirePolicy,
    OverlapPolicy,
    dependents_of,
    validate_job_definition,
)
from domain.schedule import Schedule, next_occurrence, occurrences_between

# Fixed, so that the same key (or fire time) names the same execution in every process.
_EXECUTION_NAMESPACE = uuid.UUID("6f1d3c52-7c0b-4b8e-9a57-2f5d8e0c1a11")
MAX_QUEUED = 100


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    project_id: str
    definition: JobDefinition
    definition_version: int
    version: int
    created_at: datetime
    updated_at: datetime
    paused: bool = False
    deleted: bool = False
    next_fire_at: datetime | None = None
    running: tuple[str, ...] = ()  # admitted executions that have not ended
    queued: tuple[str, ...] = ()  # triggered executions waiting for a place, oldest first


class JobPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    tasks: tuple[JobTask, ...] | UnsetType = UNSET
    schedule: str | UnsetType | None = UNSET
    timezone: str | UnsetType = UNSET
    retry_policy: JobRetryPolicy | UnsetType = UNSET
    max_active_runs: int | UnsetType = UNSET
    overlap_policy: OverlapPolicy | UnsetType = UNSET
    misfire_policy: MisfirePolicy | UnsetType = UNSET

    def changes(self) -> dict[str, Any]:
        return {n: v for n in self.__struct_fields__ if (v := getattr(self, n)) is not UNSET}


class CreateJob(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    project_id: str
    definition: JobDefinition


class UpdateJob(msgspec.Struct, frozen=True, kw_only=True):
    patch: JobPatch


class AddTask(msgspec.Struct, frozen=True, kw_only=True):
    task: JobTask


class ReplaceTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    task: JobTask


class RemoveTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str


class PauseJob(msgspec.Struct, frozen=True):
    pass


class ResumeJob(msgspec.Struct, frozen=True):
    pass


class DeleteJob(msgspec.Struct, frozen=True):
    pass


class TriggerJob(msgspec.Struct, frozen=True, kw_only=True):
    """Record an execution (already created in its own stream) and admit or queue it."""

    execution_id: str
    trigger: str = "manual"  # manual | schedule | retry
    scheduled_for: datetime | None = None


class EndExecution(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str


JobCommand = (
    CreateJob
    | UpdateJob
    | AddTask
    | ReplaceTask
    | RemoveTask
    | PauseJob
    | ResumeJob
    | DeleteJob
    | TriggerJob
    | EndExecution
)


def execution_id_for_key(project_id: str, job_id: str, key: str) -> str:
    """The execution an Idempotency-Key names: the same key always gives the same id."""
    return str(uuid.uuid5(_EXECUTION_NAMESPACE, f"key:{project_id}:{job_id}:{key}"))


def execution_id_for_fire(job_id: str, scheduled_for: datetime) -> str:
    """The execution of one fire time: a fire retried after a crash finds its execution."""
    return str(uuid.uuid5(_EXECUTION_NAMESPACE, f"fire:{job_id}:{_iso(scheduled_for)}"))


def cron_schedule(definition: JobDefinition) -> Schedule | None:
    if definition.schedule is None:
        return None
    return Schedule(kind="cron", expr=definition.schedule, timezone=definition.timezone)


def next_fire(definition: JobDefinition, after: datetime) -> datetime | None:
    schedule = cron_schedule(definition)
    return None if schedule is None else next_occurrence(schedule, after)


def decide(
    state: JobState | None, command: JobCommand, *, now: datetime, allow_commands: bool = False
) -> list[ev.JobEvent]:
    """The events `command` produces against `state`; [] when it changes nothing."""
    if isinstance(command, CreateJob):
        if state is not None:
            raise InvalidState(f"job {command.job_id} already exists")
        definition = validate_job_definition(command.definition, allow_commands=allow_commands)
        return [
            ev.JobCreated(
                at=now,
                job_id=command.job_id,
                project_id=command.project_id,
                definition=definition,
                next_fire_at=next_fire(definition, now),
            )
        ]
    if state is None or state.deleted:
        raise NotFound("job not found")
    if isinstance(command, DeleteJob):
        return [ev.JobDeleted(at=now)]
    if isinstance(command, UpdateJob):
        return _redefine(state, command.patch.changes(), now, allow_commands)
    if isinstance(command, AddTask):
        if state.definition.task(command.task.id.strip()) is not None:
            raise InvalidState(f"task {command.task.id} already exists in this job")
        tasks = (*state.definition.tasks, command.task)
        return _redefine(state, {"tasks": tasks}, now, allow_commands)
    if isinstance(command, ReplaceTask):
        if state.definition.task(command.task_id) is None:
            raise NotFound(f"task {command.task_id} not found in this job")
        if command.task.id != command.task_id:
            raise ValidationError("a task's id cannot change; delete and add it", field="id")
        tasks = tuple(
            command.task if t.id == command.task_id else t for t in state.definition.tasks
        )
        return _redefine(state, {"tasks": tasks}, now, allow_commands)
    if isinstance(command, RemoveTask):
        if state.definition.task(command.task_id) is None:
            raise NotFound(f"task {command.task_id} not found in this job")
        dependents = dependents_of(state.definition.tasks, command.task_id)
        if dependents:
            raise InvalidState(
                f"task {command.task_id} is a dependency of {', '.join(dependents)};"
                " remove it from their dependencies first",
                field="dependencies",
            )
        tasks = tuple(t for t in state.definition.tasks if t.id != command.task_id)
        return _redefine(state, {"tasks": tasks}, now, allow_commands)
    if isinstance(command, PauseJob):
        return [] if state.paused else [ev.JobPaused(at=now)]
    if isinstance(command, ResumeJob):
        if not state.paused:
            return []
        # Fire times that passed while paused were each recorded as skipped (reason paused);
        # the next one is the first after now, whatever the misfire policy.
        return [
            ev.JobResumed(at=now, next_fire_at=next_fire(state.definition, now)),
            *_admit_waiting(msgspec.structs.replace(state, paused=False), now),
        ]
    if isinstance(command, TriggerJob):
        if command.execution_id in state.running or command.execution_id in state.queued:
            return []
        # A retried execution is one the user brought back on purpose: it takes its place
        # again even beyond maxActiveRuns or while paused (running executions may finish).
        admitted = command.trigger == "retry" or (
            not state.paused and len(state.running) < state.definition.max_active_runs
        )
        return [
            ev.JobTriggered(
                at=now,
                execution_id=command.execution_id,
                trigger=command.trigger,
                admitted=admitted,
                scheduled_for=command.scheduled_for,
                next_fire_at=state.next_fire_at,
            )
        ]
    if isinstance(command, EndExecution):
        if command.execution_id not in state.running and command.execution_id not in state.queued:
            return []
        ended = ev.JobExecutionEnded(at=now, execution_id=command.execution_id)
        return [ended, *_admit_waiting(evolve(state, ended), now)]
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _redefine(
    state: JobState, changes: dict[str, Any], now: datetime, allow_commands: bool
) -> list[ev.JobEvent]:
    changed = tuple(k for k, v in changes.items() if getattr(state.definition, k) != v)
    if not changed:
        return []
    merged = msgspec.structs.replace(state.definition, **{k: changes[k] for k in changed})
    definition = validate_job_definition(merged, allow_commands=allow_commands)
    next_fire_at = state.next_fire_at
    if {"schedule", "timezone"} & set(changed):
        next_fire_at = next_fire(definition, now)
    events: list[ev.JobEvent] = [
        ev.JobUpdated(at=now, definition=definition, changed=changed, next_fire_at=next_fire_at)
    ]
    if "max_active_runs" in changed:
        events += _admit_waiting(evolve(state, events[0]), now)
    return events


def _admit_waiting(state: JobState, now: datetime) -> list[ev.JobEvent]:
    """Admit queued executions while places are free (not while paused)."""
    if state.paused:
        return []
    free = state.definition.max_active_runs - len(state.running)
    return [
        ev.JobExecutionAdmitted(at=now, execution_id=execution_id)
        for execution_id in state.queued[: max(free, 0)]
    ]


class Fire(msgspec.Struct, frozen=True, kw_only=True):
    """A due fire time decided: the events, and the execution to create first (None: skipped)."""

    events: list[ev.JobEvent]
    execution_id: str | None
    scheduled_for: datetime


def decide_fire(state: JobState, *, now: datetime) -> Fire | None:
    """What the due fire time does, under pause, misfire and overlap policies; None if not due.

    The caller creates the execution (if any) before appending the events, so a crash in
    between only leaves an execution the next attempt at the same fire time finds again.
    """
    due = state.next_fire_at
    schedule = cron_schedule(state.definition)
    if state.deleted or due is None or due > now or schedule is None:
        return None
    definition = state.definition
    later = occurrences_between(schedule, due, now, limit=1_000_000)
    next_fire_at = next_occurrence(schedule, now)
    scheduled_for, missed = due, 0
    if later:
        # Downtime (or a stalled scheduler) let several fire times pass.
        if definition.misfire_policy == "skip":
            return _skip(state, due, "misfire", now, next_fire_at, missed=len(later) + 1)
        scheduled_for, missed = later[-1], len(later)
    if state.paused:
        return _skip(state, scheduled_for, "paused", now, next_fire_at, missed=missed)
    full = len(state.running) >= definition.max_active_runs
    if full and definition.overlap_policy == "skip":
        return _skip(state, scheduled_for, "max_active_runs", now, next_fire_at, missed=missed)
    limit = 1 if definition.overlap_policy == "queue_one" else MAX_QUEUED
    if full and len(state.queued) >= limit:
        return _skip(state, scheduled_for, "queue_full", now, next_fire_at, missed=missed)
    execution_id = execution_id_for_fire(state.job_id, scheduled_for)
    triggered = ev.JobTriggered(
        at=now,
        execution_id=execution_id,
        trigger="schedule",
        admitted=not full,
        scheduled_for=scheduled_for,
        missed=missed,
        next_fire_at=next_fire_at,
    )
    return Fire(events=[triggered], execution_id=execution_id, scheduled_for=scheduled_for)


def _skip(
    state: JobState,
    scheduled_for: datetime,
    reason: str,
    now: datetime,
    next_fire_at: datetime | None,
    *,
    missed: int,
) -> Fire:
    event = ev.JobFireSkipped(
        at=now, scheduled_for=scheduled_for, reason=reason, missed=missed, next_fire_at=next_fire_at
    )
    return Fire(events=[event], execution_id=None, scheduled_for=scheduled_for)


def evolve(state: JobState | None, event: ev.JobEvent) -> JobState:
    if isinstance(event, ev.JobCreated):
        return JobState(
            job_id=event.job_id,
            project_id=event.project_id,
            definition=event.definition,
            definition_version=1,
            version=0,
            created_at=event.at,
            updated_at=event.at,
            next_fire_at=event.next_fire_at,
        )
    if state is None:
        raise ValueError(f"{ev.type_of(event)} before job.created")
    s = msgspec.structs.replace(state, version=state.version + 1, updated_at=event.at)
    replace = msgspec.structs.replace
    if isinstance(event, ev.JobUpdated):
        return replace(
            s,
            definition=event.definition,
            definition_version=s.definition_version + 1,
            next_fire_at=event.next_fire_at,
        )
    if isinstance(event, ev.JobPaused):
        return replace(s, paused=True)
    if isinstance(event, ev.JobResumed):
        return replace(s, paused=False, next_fire_at=event.next_fire_at)
    if isinstance(event, ev.JobDeleted):
        return replace(s, deleted=True, next_fire_at=None)
    if isinstance(event, ev.JobTriggered):
        s = replace(s, next_fire_at=event.next_fire_at)
        if event.admitted:
            return replace(s, running=_with(s.running, event.execution_id))
        return replace(s, queued=_with(s.queued, event.execution_id))
    if isinstance(event, ev.JobFireSkipped):
        return replace(s, next_fire_at=event.next_fire_at)
    if isinstance(event, ev.JobExecutionAdmitted):
        return replace(
            s,
            running=_with(s.running, event.execution_id),
            queued=tuple(e for e in s.queued if e != event.execution_id),
        )
    if isinstance(event, ev.JobExecutionEnded):
        return replace(
            s,
            running=tuple(e for e in s.running if e != event.execution_id),
            queued=tuple(e for e in s.queued if e != event.execution_id),
        )
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


def fold(events: Iterable[ev.JobEvent], state: JobState | None = None) -> JobState | None:
    for event in events:
        state = evolve(state, event)
    return state


def _with(ids: tuple[str, ...], execution_id: str) -> tuple[str, ...]:
    return ids if execution_id in ids else (*ids, execution_id)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
