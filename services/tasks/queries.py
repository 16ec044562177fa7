"""Reads of the task view and task logs, always within one project."""

from __future__ import annotations

import base64
from datetime import datetime

import asyncpg
import msgspec

from domain.task import TaskState
from domain.task_runs import RUN_EVENT_TYPES, Run, runs_of
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
    where, args = _conditions(
        project_id,
        {"status": f.status, "created_by": f.created_by, "schedule_kind": f.schedule_kind,
         "lifecycle": f.lifecycle},
        f.tag,
    )  # fmt: skip
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


def _conditions(
    project_id: str, equal: dict[str, str | None], tag: str | None
) -> tuple[list[str], list[object]]:
    """WHERE terms (and their arguments) for the project's live tasks: each set column of
    `equal` equal to its value, and `tag` among the tags."""
    where = ["project_id = $1", "lifecycle <> 'deleted'"]
    args: list[object] = [project_id]
    for column, value in equal.items():
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if tag is not None:
        args.append(tag)
        where.append(f"${len(args)} = ANY(tags)")
    return where, args


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


async def task_runs(pool: asyncpg.Pool, project_id: str, task_id: str) -> list[Run]:
    """The task's runs, folded from its stream in the log (the truth), in dispatch order."""
    rows = await pool.fetch(
        "SELECT data::text FROM events WHERE stream_id = $1 AND project_id = $2"
        " AND type = ANY($3::text[]) ORDER BY version",
        f"task-{task_id}",
        project_id,
        list(RUN_EVENT_TYPES),
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


class TaskSearch(msgspec.Struct, frozen=True, kw_only=True):
    """What a keyset page of tasks is filtered by; `text` matches names, case-insensitively."""

    status: str | None = None
    tag: str | None = None
    schedule_kind: str | None = None
    text: str | None = None


class TaskRow(msgspec.Struct, frozen=True, kw_only=True):
    """A task as a list shows it: view columns only, the folded state is not read."""

    task_id: str
    name: str
    status: str
    lifecycle: str
    priority: int
    tags: tuple[str, ...]
    schedule_kind: str
    schedule_expr: str
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    error: str | None
    retry_count: int


class Keyset(msgspec.Struct, frozen=True):
    """Where a page ends: the last row's sort instant and id."""

    at: datetime
    task_id: str


# Page orders by name: newest created first (task lists), most recently changed first (failures).
KEYSET_ORDERS = {"created": "created_at", "updated": "updated_at"}


async def task_page(
    pool: asyncpg.Pool,
    project_id: str,
    search: TaskSearch,
    *,
    order: str = "created",
    after: Keyset | None = None,
    limit: int = 50,
) -> tuple[list[TaskRow], Keyset | None]:
    """One keyset page of the project's tasks and the key of the next page (None: last page).

    Served by the (project_id, <order>, task_id) indexes: a page deep in a large project costs
    what the first page costs.
    """
    column = KEYSET_ORDERS[order]
    where, args = _conditions(
        project_id, {"status": search.status, "schedule_kind": search.schedule_kind}, search.tag
    )
    if search.text:
        # A case-insensitive substring; strpos over lower() costs half of what ILIKE does.
        args.append(search.text.lower())
        where.append(f"strpos(lower(name), ${len(args)}) > 0")
    if after is not None:
        args.extend([after.at, after.task_id])
        where.append(f"({column}, task_id) < (${len(args) - 1}, ${len(args)})")
    clause = " AND ".join(where)
    ordering = f"ORDER BY {column} DESC, task_id DESC LIMIT {int(limit) + 1}"
    if search.text and search.tag is None and order == "created":
        # A name search may read the whole project: find the ids on the covering keyset index
        # (task_view_project_keyset) first, then read only the rows of the page.
        clause = (
            f"task_id = ANY(ARRAY(SELECT task_id FROM task_view WHERE {clause} {ordering}))"
        )
    rows = await pool.fetch(
        f"SELECT {_ROW_COLUMNS} FROM task_view WHERE {clause} {ordering}", *args
    )
    page = [TaskRow(**dict(r)) for r in rows[:limit]]
    more = len(rows) > limit
    last = page[-1] if page and more else None
    key = None if last is None else Keyset(getattr(last, column), last.task_id)
    return page, key


_ROW_COLUMNS = (
    "task_id, name, status, lifecycle, priority, tags, schedule_kind, schedule_expr,"
    " next_run_at, created_at, updated_at, state->>'error' AS error,"
    " COALESCE((state->>'retry_count')::int, 0) AS retry_count"
)


def keyset_token(key: Keyset) -> str:
    """The opaque `cursor` a caller passes back for the next page."""
    raw = f"{key.at.isoformat()}|{key.task_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def keyset_from(token: str) -> Keyset:
    """The Keyset of a `cursor`; ValueError when it is not one this server gave out."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, task_id = raw.split("|", 1)
        instant = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this server gave out") from None
    if instant.utcoffset() is None or not task_id:
        raise ValueError("not a cursor this server gave out")
    return Keyset(instant, task_id)
