"""Bodies of the history endpoints under /api: runs, events, schedule, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from domain.run_history import Decision
from services.surfaces.kit.request_body import Body


class EventsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Versions start at 0. Oldest first from `after_version`, or newest first before
    `before_version` (`order=desc`); pass `meta.next_version` back for the next page."""

    after_version: int = -1
    before_version: int | None = None
    limit: int = 50
    order: Literal["asc", "desc"] = "asc"


class TaskEventOut(msgspec.Struct, kw_only=True):
    version: int
    type: str
    at: datetime
    actor: str | None
    data: Any


class EventsMeta(msgspec.Struct, kw_only=True):
    limit: int
    next_version: int | None


class EventsEnvelope(msgspec.Struct, kw_only=True):
    data: list[TaskEventOut]
    meta: EventsMeta


class ScheduleQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    count: int = 10
    decisions: int = 100


class ScheduleViewOut(msgspec.Struct, kw_only=True):
    kind: str
    expr: str
    timezone: str
    lifecycle: str
    next_run_at: datetime | None
    next_fires: list[datetime]
    decisions: list[Decision]


class ScheduleEnvelope(msgspec.Struct, kw_only=True):
    data: ScheduleViewOut


class DeadLettersQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tag: str | None = None
    schedule_kind: Literal["once", "cron", "rrule", "interval", "event"] | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


class DeadLetterOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    tags: list[str]
    schedule_kind: str
    failed_at: datetime
    error: str | None
    retry_count: int


class CursorMeta(msgspec.Struct, kw_only=True):
    limit: int
    next_cursor: str | None


class DeadLettersEnvelope(msgspec.Struct, kw_only=True):
    data: list[DeadLetterOut]
    meta: CursorMeta


class DeadLetterFilter(Body):
    tag: str | None = None
    schedule_kind: Literal["once", "cron", "rrule", "interval", "event"] | None = None
    q: str | None = None


class DeadLetterRetry(Body):
    """Exactly one of `ids` and `filter`; `dry_run` only counts."""

    ids: list[str] | None = None
    filter: DeadLetterFilter | None = None
    dry_run: bool = False


class BulkRetryOut(msgspec.Struct, kw_only=True):
    dry_run: bool
    matched: int
    retried: list[str]
    refused: dict[str, str]


class BulkRetryEnvelope(msgspec.Struct, kw_only=True):
    data: BulkRetryOut
