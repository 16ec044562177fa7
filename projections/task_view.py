"""The task view: one row per task, the folded state plus the columns lists filter and sort on."""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.task import TaskState, public_status

# One statement per batch: rows arrive as a JSON array (at most one row per task).
UPSERT_SQL = """
INSERT INTO task_view (task_id, project_id, version, status, lifecycle, name, priority, tags,
                       created_by, schedule_kind, schedule_expr, next_run_at, dedupe_key,
                       concurrency_key, created_at, updated_at, state, lease_until)
SELECT r.task_id, r.project_id, r.version, r.status, r.lifecycle, r.name, r.priority, r.tags,
       r.created_by, r.schedule_kind, r.schedule_expr, r.next_run_at, r.dedupe_key,
       r.concurrency_key, r.created_at, r.updated_at, r.state, r.lease_until
  FROM jsonb_to_recordset($1::jsonb) AS r(
       task_id text, project_id text, version bigint, status text, lifecycle text, name text,
       priority int, tags text[], created_by text, schedule_kind text, schedule_expr text,
       next_run_at timestamptz, dedupe_key text, concurrency_key text, created_at timestamptz,
       updated_at timestamptz, state jsonb, lease_until timestamptz)
ON CONFLICT (task_id) DO UPDATE SET
    version = EXCLUDED.version, status = EXCLUDED.status, lifecycle = EXCLUDED.lifecycle,
    name = EXCLUDED.name, priority = EXCLUDED.priority, tags = EXCLUDED.tags,
    created_by = EXCLUDED.created_by, schedule_kind = EXCLUDED.schedule_kind,
    schedule_expr = EXCLUDED.schedule_expr, next_run_at = EXCLUDED.next_run_at,
    dedupe_key = EXCLUDED.dedupe_key, concurrency_key = EXCLUDED.concurrency_key,
    updated_at = EXCLUDED.updated_at, state = EXCLUDED.state,
    -- A heartbeat may have pushed the lease past the one in the event: never shorten it.
    lease_until = CASE WHEN EXCLUDED.lease_until IS NULL THEN NULL
                       ELSE GREATEST(task_view.lease_until, EXCLUDED.lease_until) END,
    claimed_until = NULL, claimed_by = NULL
WHERE task_view.version < EXCLUDED.version
"""


class TaskViewRow(msgspec.Struct, frozen=True, kw_only=True):
    """One task_view row; `state` is the folded TaskState, embedded as JSON."""

    task_id: str
    project_id: str
    version: int
    status: str
    lifecycle: str
    name: str
    priority: int
    tags: tuple[str, ...]
    created_by: str | None
    schedule_kind: str
    schedule_expr: str
    next_run_at: datetime | None
    dedupe_key: str | None
    concurrency_key: str | None
    created_at: datetime
    updated_at: datetime
    state: msgspec.Raw
    lease_until: datetime | None


# Columns a list may sort on, by the name callers use.
SORTABLE = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "priority": "priority",
    "name": "name",
    "status": "status",
    "scheduled_at": "next_run_at",
    "next_run_at": "next_run_at",
}


def task_view_row(state: TaskState, state_json: bytes) -> TaskViewRow:
    """The view row for `state` (whose JSON encoding is `state_json`)."""
    d = state.definition
    return TaskViewRow(
        task_id=state.task_id,
        project_id=state.project_id,
        version=state.version,
        status=public_status(state),
        lifecycle=state.lifecycle,
        name=d.name,
        priority=d.priority,
        tags=d.tags,
        created_by=d.created_by,
        schedule_kind=d.schedule.kind,
        schedule_expr=d.schedule.expr,
        next_run_at=state.next_run_at,
        dedupe_key=d.dedupe_key,
        concurrency_key=d.concurrency_key,
        created_at=state.created_at,
        updated_at=state.updated_at,
        state=msgspec.Raw(state_json),
        lease_until=state.lease_until,
    )
