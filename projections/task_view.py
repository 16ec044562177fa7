"""The task view: one row per task, the folded state plus the columns lists filter and sort on."""

from __future__ import annotations

from typing import Any

from domain.task import TaskState, public_status

UPSERT_SQL = """
INSERT INTO task_view (task_id, project_id, version, status, lifecycle, name, priority, tags,
                       created_by, schedule_kind, schedule_expr, next_run_at, dedupe_key,
                       concurrency_key, created_at, updated_at, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb)
ON CONFLICT (task_id) DO UPDATE SET
    version = EXCLUDED.version, status = EXCLUDED.status, lifecycle = EXCLUDED.lifecycle,
    name = EXCLUDED.name, priority = EXCLUDED.priority, tags = EXCLUDED.tags,
    created_by = EXCLUDED.created_by, schedule_kind = EXCLUDED.schedule_kind,
    schedule_expr = EXCLUDED.schedule_expr, next_run_at = EXCLUDED.next_run_at,
    dedupe_key = EXCLUDED.dedupe_key, concurrency_key = EXCLUDED.concurrency_key,
    updated_at = EXCLUDED.updated_at, state = EXCLUDED.state
WHERE task_view.version < EXCLUDED.version
"""

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


def task_view_args(state: TaskState, state_json: str) -> tuple[Any, ...]:
    """The UPSERT_SQL arguments for `state` (whose JSON encoding is `state_json`)."""
    d = state.definition
    return (
        state.task_id,
        state.project_id,
        state.version,
        public_status(state),
        state.lifecycle,
        d.name,
        d.priority,
        list(d.tags),
        d.created_by,
        d.schedule.kind,
        d.schedule.expr,
        state.next_run_at,
        d.dedupe_key,
        d.concurrency_key,
        state.created_at,
        state.updated_at,
        state_json,
    )
