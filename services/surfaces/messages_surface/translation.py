"""Seed 001's messages ⇄ the core's one-shot HTTP callbacks.

A message id is the task's dedupe key (`message:<id>`), claimed in the caller's project inside
the append transaction, so two concurrent creates of one id can never both succeed.
"""

from __future__ import annotations

from datetime import timedelta

from domain.actions import HttpAction
from domain.retry_policy import RetryPolicy
from domain.task import TaskState
from infra.json_codec import encode
from services.surfaces.kit.one_shot_callback import Callback
from services.surfaces.messages_surface.schemas import MessageIn, ScheduledJob

# Marks the tasks created through /messages: GET /messages lists only these.
TAG = "messages"
# A claim outlives the due time by this much; a holder that is no longer waiting (it ran, or
# was deleted elsewhere) is released by the next create of its id, so this is only a backstop.
KEY_HELD_AFTER_DUE = timedelta(days=7)

# Core field → this surface's field, for error messages.
FIELD_NAMES = {
    "name": "id",
    "schedule.expr": "scheduleTo",
    "action.url": "webhookUrl",
    "action.body": "payload",
}


def message_key(message_id: str) -> str:
    """The dedupe key that holds a message id within a project."""
    return f"message:{message_id}"


def callback_from(message: MessageIn) -> Callback:
    """The webhook call a message asks for: its payload as JSON, attempted once (no retries)."""
    return Callback(
        name=message.id,
        url=message.webhookUrl,
        at=message.scheduleTo,
        method="POST",
        headers={"Content-Type": "application/json"},
        body=encode(message.payload).decode(),
        retry=RetryPolicy(max_retries=0),
        tags=(TAG,),
        dedupe_key=message_key(message.id),
    )


def is_waiting(state: TaskState) -> bool:
    """Still to be sent: not started, not paused, cancelled or deleted."""
    return state.lifecycle == "active" and state.run_status == "pending"


def job_out(state: TaskState) -> ScheduledJob:
    """A waiting message as GET /messages lists it."""
    action = state.definition.action
    return ScheduledJob(
        messageId=state.definition.name,
        nextRun=state.next_run_at,
        webhookUrl=action.url if isinstance(action, HttpAction) else "",
    )
