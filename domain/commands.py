"""Commands: what a caller asks of a task. Every API surface translates its requests into these."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from domain.actions import Action
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule
from domain.task_definition import MisfirePolicy, OverlapPolicy, TaskDefinition


class CreateTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    project_id: str
    definition: TaskDefinition


class TaskPatch(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A partial update: only fields that are set change."""

    name: str | UnsetType = UNSET
    description: str | UnsetType | None = UNSET
    tags: tuple[str, ...] | UnsetType = UNSET
    priority: int | UnsetType = UNSET
    action: Action | UnsetType | None = UNSET
    schedule: Schedule | UnsetType = UNSET
    payload: Any | UnsetType = UNSET
    retry: RetryPolicy | UnsetType = UNSET
    timeout_seconds: int | UnsetType = UNSET
    dependencies: tuple[str, ...] | UnsetType = UNSET
    dedupe_key: str | UnsetType | None = UNSET
    dedupe_window_seconds: int | UnsetType | None = UNSET
    concurrency_key: str | UnsetType | None = UNSET
    concurrency_limit: int | UnsetType = UNSET
    checkpoint_enabled: bool | UnsetType = UNSET
    misfire_policy: MisfirePolicy | UnsetType = UNSET
    overlap_policy: OverlapPolicy | UnsetType = UNSET
    notify_url: str | UnsetType | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields this patch sets, by name."""
        return {
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not UNSET
        }


class UpdateTask(msgspec.Struct, frozen=True, kw_only=True):
    patch: TaskPatch


class PauseTask(msgspec.Struct, frozen=True, kw_only=True):
    pass


class ResumeTask(msgspec.Struct, frozen=True, kw_only=True):
    pass


class CancelTask(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None = None


class DeleteTask(msgspec.Struct, frozen=True, kw_only=True):
    pass


class RetryTask(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for one more attempt of a task whose last run failed for good."""


class CheckpointTask(msgspec.Struct, frozen=True, kw_only=True):
    data: Any


class TriggerTask(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for one extra run now, leaving the schedule as it is.

    `event` names the event that fired it (None: a caller's run-now); `event_payload` is that
    event's body, kept in the log for subscribers.
    """

    event: str | None = None
    event_payload: Any = None


class SnoozeTask(msgspec.Struct, frozen=True, kw_only=True):
    """Move the next scheduled run later by `delay_seconds` (at most a week)."""

    delay_seconds: int
    reason: str | None = None


TaskCommand = (
    CreateTask
    | UpdateTask
    | PauseTask
    | ResumeTask
    | CancelTask
    | DeleteTask
    | RetryTask
    | CheckpointTask
    | TriggerTask
    | SnoozeTask
)
