"""Seed 002's task fields ⇄ the core's TaskDefinition, TaskPatch and TaskState."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET

from domain.actions import Action, CommandAction
from domain.commands import TaskPatch
from domain.errors import ValidationError
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task import TaskState, public_status
from domain.task_definition import TaskDefinition
from services.surfaces.api_surface.schemas import (
    RetryPolicyIn,
    ScheduleIn,
    ScheduleOut,
    TaskCreate,
    TaskOut,
    TaskUpdate,
)


def _action(command: Any, action: Any) -> Action | None:
    if command is not UNSET and command is not None and action is not UNSET and action is not None:
        raise ValidationError("give either command or action, not both", field="command")
    if command is not UNSET and command is not None:
        return CommandAction(command=command)
    return None if action is UNSET else action


def _schedule(scheduled_at: datetime | None, schedule: ScheduleIn | None) -> Schedule | None:
    if scheduled_at is not None and schedule is not None:
        raise ValidationError(
            "give either scheduled_at or schedule, not both", field="scheduled_at"
        )
    if scheduled_at is not None:
        if scheduled_at.tzinfo is None:
            raise ValidationError(
                "scheduled_at needs a UTC offset, e.g. 2026-01-01T09:00:00Z", field="scheduled_at"
            )
        return Schedule(kind="once", expr=scheduled_at.isoformat())
    if schedule is not None:
        return Schedule(
            kind=schedule.kind,
            expr=schedule.expr,
            timezone=schedule.timezone,
            start_at=schedule.start_at,
            end_at=schedule.end_at,
        )
    return None


def _retry(max_retries: int, policy: RetryPolicyIn | None) -> RetryPolicy:
    if policy is None:
        return RetryPolicy(max_retries=max_retries)
    return RetryPolicy(
        max_retries=max_retries if policy.max_retries is None else policy.max_retries,
        backoff=policy.backoff,
        base_seconds=policy.base_seconds,
        cap_seconds=policy.cap_seconds,
    )


def definition_from(body: TaskCreate, *, now: datetime) -> TaskDefinition:
    """The core definition for a create request."""
    action = _action(body.command, body.action)
    if action is None:
        raise ValidationError("a task needs an action (or a command)", field="action")
    schedule = _schedule(body.scheduled_at, body.schedule) or Schedule(
        kind="once", expr=now.isoformat()
    )
    return TaskDefinition(
        name=body.name,
        description=body.description,
        action=action,
        schedule=schedule,
        priority=body.priority,
        retry=_retry(body.max_retries, body.retry_policy),
        timeout_seconds=body.timeout_seconds,
        tags=tuple(body.tags),
        dependencies=tuple(body.dependencies),
        checkpoint_enabled=body.checkpoint_enabled,
        payload=body.payload,
        dedupe_key=body.dedupe_key,
        dedupe_window_seconds=body.dedupe_window_seconds,
        concurrency_key=body.concurrency_key,
        concurrency_limit=body.concurrency_limit,
        created_by=body.created_by,
        misfire_policy=body.misfire_policy,
        overlap_policy=body.overlap_policy,
        notify_url=body.notify_url,
    )


_SAME_NAME = (
    "name description priority timeout_seconds payload dedupe_key dedupe_window_seconds "
    "concurrency_key concurrency_limit checkpoint_enabled misfire_policy overlap_policy notify_url"
).split()


def patch_from(body: TaskUpdate, current: TaskDefinition) -> TaskPatch:
    """The core patch for a partial update; unset fields stay as they are."""
    fields: dict[str, Any] = {
        k: getattr(body, k) for k in _SAME_NAME if getattr(body, k) is not UNSET
    }
    if body.tags is not UNSET:
        fields["tags"] = tuple(body.tags)
    if body.dependencies is not UNSET:
        fields["dependencies"] = tuple(body.dependencies)
    if body.command is not UNSET or body.action is not UNSET:
        fields["action"] = _action(body.command, body.action)
    scheduled_at = None if body.scheduled_at is UNSET else body.scheduled_at
    schedule = None if body.schedule is UNSET else body.schedule
    if (new_schedule := _schedule(scheduled_at, schedule)) is not None:
        fields["schedule"] = new_schedule
    if body.max_retries is not UNSET or body.retry_policy is not UNSET:
        max_retries = current.retry.max_retries if body.max_retries is UNSET else body.max_retries
        policy = None if body.retry_policy is UNSET else body.retry_policy
        fields["retry"] = (
            _retry(max_retries, policy)
            if policy is not None
            else msgspec.structs.replace(current.retry, max_retries=max_retries)
        )
    return TaskPatch(**fields)


def scheduled_at(state: TaskState) -> datetime | None:
    """When the task is (or was) due: the next run, or a one-shot's own time."""
    if state.next_run_at is not None:
        return state.next_run_at
    if state.definition.schedule.kind == "once":
        return datetime.fromisoformat(state.definition.schedule.expr)
    return None


def task_out(state: TaskState) -> TaskOut:
    """Seed 002's task object for `state`."""
    d = state.definition
    s = d.schedule
    return TaskOut(
        id=state.task_id,
        name=d.name,
        description=d.description,
        command=d.action.command if isinstance(d.action, CommandAction) else None,
        action=d.action,
        status=public_status(state),
        priority=d.priority,
        retry_count=state.retry_count,
        max_retries=d.retry.max_retries,
        created_at=state.created_at,
        updated_at=state.updated_at,
        scheduled_at=scheduled_at(state),
        started_at=state.started_at,
        completed_at=state.completed_at,
        timeout_seconds=d.timeout_seconds,
        tags=list(d.tags),
        dependencies=list(d.dependencies),
        worker_id=state.worker_id,
        result=state.result,
        error=state.error,
        checkpoint_data=state.checkpoint_data,
        checkpoint_enabled=d.checkpoint_enabled,
        schedule=ScheduleOut(
            kind=s.kind, expr=s.expr, timezone=s.timezone, start_at=s.start_at, end_at=s.end_at
        ),
        payload=d.payload,
        dedupe_key=d.dedupe_key,
        dedupe_window_seconds=d.dedupe_window_seconds,
        concurrency_key=d.concurrency_key,
        concurrency_limit=d.concurrency_limit,
        created_by=d.created_by,
        misfire_policy=d.misfire_policy,
        overlap_policy=d.overlap_policy,
        notify_url=d.notify_url,
        version=state.version,
    )
