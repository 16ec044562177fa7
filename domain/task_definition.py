"""The part of a task its owner writes: what to run, when, and under which policies."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from domain.actions import Action
from domain.retry_policy import RetryPolicy
from domain.schedule import Schedule

MisfirePolicy = Literal["skip", "run_once", "run_all"]
OverlapPolicy = Literal["skip", "queue_one", "allow"]


class TaskDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a create or update may set; priority is canonical: 1 (lowest) to 10 (highest)."""

    name: str
    schedule: Schedule
    description: str | None = None
    tags: tuple[str, ...] = ()
    priority: int = 5
    created_by: str | None = None
    action: Action | None = None
    payload: Any = None
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: int = 3600
    dependencies: tuple[str, ...] = ()
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    checkpoint_enabled: bool = False
    misfire_policy: MisfirePolicy = "run_once"
    misfire_cap: int = 100
    overlap_policy: OverlapPolicy = "skip"
    notify_url: str | None = None
