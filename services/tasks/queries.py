"""Reads of the task view and task logs, always within one project."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from domain.task import TaskState
from domain.task_runs import Run, runs_of
from infra.json_codec import decode_event, decode_state
from projections.task_view import SORTABLE


class TaskFilter(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    tag: str | None = None
    created_by: str | None = None
    schedule_kind: str | None = None
    lifecycle: str | None = None
    sort: str = "created_at"
    descending: bool = True
    limit: int = 20
    offset: int = 0


class LogLine(msgspec.Struct, frozen=True):
    timestamp: datetime
    level: str
    message: str


async def list_tasks(
    pool: asyncpg.Pool, project_id: str, f: TaskFilter
) -> tuple[list[TaskState], int]:
    """One page of a project's tasks and the total that match."""
    where = ["project_id = $1", "lifecycle <> 'deleted'"]
    args: list[object] = [project_id]
    for column, value in (
        ("status", f.status),
        ("created_by", f.created_by),
        ("schedule_kind", f.schedule_kind),
        ("lifecycle", f.lifecycle),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if f.tag is not None:
        args.append(f.tag)
        where.append(f"${len(args)} = ANY(tags)")
    clause = " AND ".join(where)
    order = f"{SORTABLE[f.sort]} {'DESC' if f.descending else 'ASC'} NULLS LAST, task_id"
    async with pool.acquire() as conn:
        total = await conn.fetchval(f"SELECT count(*) FROM task_view WHERE {clause}", *args)
        rows = await conn.fetch(
            f"SELECT state::text FROM task_view WHERE {clause} ORDER BY {order} "
            f"LIMIT {int(f.limit)} OFFSET {int(f.offset)}",
            *args,
        )
    return [decode_state(r[0]) for r in rows], int(total)


async def task_logs(
    pool: asyncpg.Pool,
    project_id: str,
    task_id: str,
    *,
    level: str | None,
    limit: int,
    offset: int,
) -> tuple[list[LogLine], int]:
    """A task's log lines in time order, optionally of one level."""
    where = "project_id = $1 AND task_id = $2" + (" AND level = $3" if level else "")
    args: list[object] = [project_id, task_id] + ([level] if level else [])
    async with pool.acquire() as conn:
        total = await conn.fetchval(f"SELECT count(*) FROM task_logs WHERE {where}", *args)
        rows = await conn.fetch(
            f"SELECT logged_at, level, message FROM task_logs WHERE {where} "
            f"ORDER BY logged_at, id LIMIT {int(limit)} OFFSET {int(offset)}",
            *args,
        )
    return [LogLine(r["logged_at"], r["level"], r["message"]) for r in rows], int(total)


_RUN_EVENTS = ["task.dispatched", "task.started", "task.completed", "task.failed"]


async def task_runs(pool: asyncpg.Pool, project_id: str, task_id: str) -> list[Run]:
    """The task's runs, folded from its stream in the log (the truth), in dispatch order."""
    rows = await pool.fetch(
        "SELECT data::text FROM events WHERE stream_id = $1 AND project_id = $2"
        " AND type = ANY($3::text[]) ORDER BY version",
        f"task-{task_id}",
        project_id,
        _RUN_EVENTS,
    )
    return runs_of(decode_event(r[0]) for r in rows)


async def event_listeners(pool: asyncpg.Pool, project_id: str, event_name: str) -> list[str]:
    """Ids of the project's active `event` tasks whose schedule names `event_name`, oldest first."""
    rows = await pool.fetch(
        "SELECT task_id FROM task_view WHERE project_id = $1 AND lifecycle = 'active'"
        " AND schedule_kind = 'event' AND schedule_expr = $2 ORDER BY created_at, task_id",
        project_id,
        event_name,
    )
    return [r["task_id"] for r in rows]


async def dedupe_holder(pool: asyncpg.Pool, project_id: str, key: str) -> str | None:
    """The id of the task that last claimed dedupe `key` in the project (expired or not)."""
    value = await pool.fetchval(
        "SELECT task_id FROM dedupe_keys WHERE project_id = $1 AND dedupe_key = $2",
        project_id,
        key,
    )
    return None if value is None else str(value)
