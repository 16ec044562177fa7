"""A task's history from the log: its events (paged, header values redacted), attempts, decisions.

Every read names the caller's project, and the stream's project is checked in the same query,
so another project's task reads as missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from domain.errors import NotFound
from domain.events import TaskEvent
from domain.run_history import Decision, decisions_of, redact_headers
from domain.task_runs import Run, runs_of
from infra.json_codec import decode_event
from services.tasks.service import stream_of

# The history folds read at most this many of a task's newest events (a minute-cron task
# writes ~3 events a minute); older runs stay readable through GET /api/tasks/{id}/runs.
MAX_FOLDED_EVENTS = 20_000


class LoggedTaskEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a task's stream as a reader sees it: `data` with header values redacted."""

    version: int
    type: str
    recorded_at: datetime
    actor: str | None
    data: Any


async def task_events(
    pool: asyncpg.Pool,
    project_id: str,
    task_id: str,
    *,
    after_version: int = -1,
    before_version: int | None = None,
    limit: int = 50,
) -> list[LoggedTaskEvent]:
    """One page of the task's events: oldest first after `after_version`, or, given
    `before_version`, newest first before it."""
    if before_version is not None:
        cursor, where, order = before_version, "version < $3", "DESC"
    else:
        cursor, where, order = after_version, "version > $3", "ASC"
    rows = await pool.fetch(
        f"SELECT version, type, recorded_at, metadata->>'actor' AS actor, data::text AS data"
        f"  FROM events WHERE stream_id = $1 AND project_id = $2 AND {where}"
        f" ORDER BY version {order} LIMIT $4",
        stream_of(task_id),
        project_id,
        cursor,
        limit,
    )
    return [
        LoggedTaskEvent(
            version=r["version"],
            type=r["type"],
            recorded_at=r["recorded_at"],
            actor=r["actor"],
            data=redact_headers(msgspec.json.decode(r["data"])),
        )
        for r in rows
    ]


async def _stream(pool: asyncpg.Pool, project_id: str, task_id: str) -> list[TaskEvent]:
    rows = await pool.fetch(
        "SELECT data::text FROM (SELECT version, data FROM events"
        "  WHERE stream_id = $1 AND project_id = $2 ORDER BY version DESC LIMIT $3) e"
        " ORDER BY version",
        stream_of(task_id),
        project_id,
        MAX_FOLDED_EVENTS,
    )
    if not rows:
        raise NotFound(f"task {task_id} not found")
    return [decode_event(r[0]) for r in rows]


class TaskHistory(msgspec.Struct, frozen=True):
    runs: list[Run]
    decisions: list[Decision]


async def task_history(pool: asyncpg.Pool, project_id: str, task_id: str) -> TaskHistory:
    """Every run (attempt) and schedule decision of the task, oldest first, from one read."""
    events = await _stream(pool, project_id, task_id)
    return TaskHistory(runs_of(events), decisions_of(events))
