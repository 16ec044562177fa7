"""Seed 004's task fields ⇄ the core's TaskDefinition, TaskPatch and TaskState.

The two differences that need care: priority runs 1-9 with 1 highest here (the core's runs 1-10
with 10 highest), and a run's action lives in `payload.action` in the core's form; a payload
without one makes a run that only announces itself (docs/surfaces.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from domain.actions import Action
from domain.commands import TaskPatch
from domain.errors import DomainError, ValidationError
from domain.http_headers import redacted
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task import TaskState
from domain.task_definition import TaskDefinition
from services.surfaces.agent_tasks_surface.schemas import (
    AgentStatus,
    AgentTaskCreate,
    AgentTaskOut,
    AgentTaskUpdate,
)

_STATUS: dict[str, AgentStatus] = {"active": "active", "paused": "paused", "cancelled": "canceled"}
LIFECYCLE_OF: dict[AgentStatus, str] = {word: core for core, word in _STATUS.items()}
# The core spells it `cancelled`; this document `canceled`, in answers and in messages alike.
_CORE_WORD, _OUR_WORD = "cancelled", "canceled"


def _ours(word: str) -> str:
    return _OUR_WORD if word == _CORE_WORD else word


def in_our_words(message: str) -> str:
    """A message of the core's (a 409's reason) in this document's spelling."""
    return message.replace(_CORE_WORD, _OUR_WORD)


# The core names fields by its own paths; this surface's callers wrote these.
_FIELD_NAMES = {
    "name": "title",
    "schedule.expr": "schedule_expr",
    "schedule.timezone": "timezone",
    "schedule.kind": "schedule_kind",
    "retry_policy.max_retries": "max_retries",
    "retry_policy.backoff": "backoff_strategy",
    "action": "payload.action",
}


def core_priority(priority: int) -> int:
    """This surface's 1 (highest) .. 9 (lowest) as the core's 1 (lowest) .. 10 (highest)."""
    return 10 - priority


def agent_priority(priority: int) -> int:
    """The core's priority in this surface's direction; the core's 10 shows as 1, like its 9."""
    return min(9, max(1, 10 - priority))


def renamed(exc: DomainError) -> DomainError:
    """`exc` naming the field as this surface's callers know it."""
    for core, ours in _FIELD_NAMES.items():
        if exc.field is not None and (exc.field == core or exc.field.startswith(core + ".")):
            field = ours + exc.field[len(core) :]
            message = exc.message
            if message.startswith(exc.field):
                message = field + message[len(exc.field) :]
            return type(exc)(message, field=field)
    return exc


def action_of(payload: dict[str, Any]) -> Action | None:
    """The run's action, from `payload.action` in the core's form (None: no action)."""
    raw = payload.get("action")
    if raw is None:
        return None
    try:
        action: Action = msgspec.convert(raw, Action)
    except msgspec.ValidationError as exc:
        raise ValidationError(
            f"payload.action: {exc} (expected kind http, handler or command)",
            field="payload.action",
        ) from None
    return action


def stored_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the task keeps it: `payload.action.headers` values are `***`.

    The action itself carries the values to the secret store; the payload is echoed in every
    answer and kept in the log, so its copy of them must go (docs/secrets.md).
    """
    action = payload.get("action")
    if not isinstance(action, dict) or not isinstance(action.get("headers"), dict):
        return payload
    return {**payload, "action": {**action, "headers": redacted(action["headers"])}}


def schedule_of(kind: str, expr: str | None, timezone: str, *, task_id: str) -> Schedule:
    """The core schedule; an `event` task without an expression listens for its own id."""
    if expr is None:
        if kind != "event":
            raise ValidationError(
                f"schedule_expr is required for schedule_kind {kind!r}", field="schedule_expr"
            )
        expr = task_id
    return Schedule(kind=kind, expr=expr, timezone=timezone)  # type: ignore[arg-type]


def definition_from(body: AgentTaskCreate, *, task_id: str) -> TaskDefinition:
    """The core definition for a create request."""
    return TaskDefinition(
        name=body.title,
        description=body.description,
        schedule=schedule_of(
            body.schedule_kind, body.schedule_expr, body.timezone, task_id=task_id
        ),
        payload=stored_payload(body.payload),
        action=action_of(body.payload),
        created_by=str(body.created_by),
        priority=core_priority(body.priority),
        retry=RetryPolicy(max_retries=body.max_retries, backoff=body.backoff_strategy),
        dedupe_key=body.dedupe_key,
        dedupe_window_seconds=body.dedupe_window_seconds,
        concurrency_key=body.concurrency_key,
    )


_SAME_NAME = ("description", "dedupe_key", "dedupe_window_seconds", "concurrency_key")


def patch_from(body: AgentTaskUpdate, current: TaskState) -> TaskPatch:
    """The core patch for a partial update; fields not given stay as they are."""
    d = current.definition
    fields: dict[str, Any] = {
        k: getattr(body, k) for k in _SAME_NAME if getattr(body, k) is not UNSET
    }
    if body.title is not UNSET:
        fields["name"] = body.title
    if body.payload is not UNSET:
        fields["payload"] = stored_payload(body.payload)
        fields["action"] = action_of(body.payload)
    if body.created_by is not UNSET:
        fields["created_by"] = str(body.created_by)
    if body.priority is not UNSET:
        fields["priority"] = core_priority(body.priority)
    if body.max_retries is not UNSET or body.backoff_strategy is not UNSET:
        fields["retry"] = msgspec.structs.replace(
            d.retry,
            max_retries=d.retry.max_retries if body.max_retries is UNSET else body.max_retries,
            backoff=d.retry.backoff if body.backoff_strategy is UNSET else body.backoff_strategy,
        )
    if any(v is not UNSET for v in (body.schedule_kind, body.schedule_expr, body.timezone)):
        fields["schedule"] = _schedule_patch(body, current)
    return TaskPatch(**fields)


def _schedule_patch(body: AgentTaskUpdate, current: TaskState) -> Schedule:
    old = current.definition.schedule
    kind = old.kind if body.schedule_kind is UNSET else body.schedule_kind
    # A new kind needs its own expression: the old one means something else now.
    expr = old.expr if kind == old.kind else None
    if body.schedule_expr is not UNSET:
        expr = body.schedule_expr
    timezone = old.timezone if body.timezone is UNSET else body.timezone
    new = schedule_of(kind, expr, timezone, task_id=current.task_id)
    return msgspec.structs.replace(new, start_at=old.start_at, end_at=old.end_at)


def task_out(state: TaskState) -> AgentTaskOut:
    """Seed 004's task object for `state`."""
    d = state.definition
    return AgentTaskOut(
        id=state.task_id,
        title=d.name,
        description=d.description,
        schedule_kind=d.schedule.kind,
        schedule_expr=d.schedule.expr,
        timezone=d.schedule.timezone,
        payload=d.payload,
        created_by=d.created_by,
        priority=agent_priority(d.priority),
        max_retries=d.retry.max_retries,
        backoff_strategy=d.retry.backoff,
        dedupe_key=d.dedupe_key,
        dedupe_window_seconds=d.dedupe_window_seconds,
        concurrency_key=d.concurrency_key,
        status=_STATUS[state.lifecycle],
        run_status=_ours(state.run_status),  # type: ignore[arg-type]
        last_outcome=None if state.last_outcome is None else _ours(state.last_outcome),  # type: ignore[arg-type]
        next_run_at=state.next_run_at,
        last_started_at=state.started_at,
        last_completed_at=state.completed_at,
        last_result=state.result,
        last_error=state.error,
        runs_completed=state.runs_completed,
        runs_failed=state.runs_failed,
        created_at=state.created_at,
        updated_at=state.updated_at,
    )
