"""The job and execution views: one row per job / execution, the folded state plus the columns
lists filter and sort on. Written inline with each append (read-your-writes)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.job import JobState
from domain.job_execution import ExecutionState

JOB_UPSERT_SQL = """
INSERT INTO job_view (job_id, project_id, version, name, paused, deleted, next_fire_at,
                      created_at, updated_at, state)
SELECT r.job_id, r.project_id, r.version, r.name, r.paused, r.deleted, r.next_fire_at,
       r.created_at, r.updated_at, r.state
  FROM jsonb_to_recordset($1::jsonb) AS r(
       job_id text, project_id text, version bigint, name text, paused boolean, deleted boolean,
       next_fire_at timestamptz, created_at timestamptz, updated_at timestamptz, state jsonb)
ON CONFLICT (job_id) DO UPDATE SET
    version = EXCLUDED.version, name = EXCLUDED.name, paused = EXCLUDED.paused,
    deleted = EXCLUDED.deleted, next_fire_at = EXCLUDED.next_fire_at,
    updated_at = EXCLUDED.updated_at, state = EXCLUDED.state, claimed_until = NULL
WHERE job_view.version < EXCLUDED.version
"""

EXECUTION_UPSERT_SQL = """
INSERT INTO execution_view (execution_id, project_id, job_id, version, status, settled, trigger,
                            definition_version, created_at, started_at, finished_at, updated_at,
                            state)
SELECT r.execution_id, r.project_id, r.job_id, r.version, r.status, r.settled, r.trigger,
       r.definition_version, r.created_at, r.started_at, r.finished_at, r.updated_at, r.state
  FROM jsonb_to_recordset($1::jsonb) AS r(
       execution_id text, project_id text, job_id text, version bigint, status text,
       settled boolean, trigger text, definition_version int, created_at timestamptz,
       started_at timestamptz, finished_at timestamptz, updated_at timestamptz, state jsonb)
ON CONFLICT (execution_id) DO UPDATE SET
    version = EXCLUDED.version, status = EXCLUDED.status, settled = EXCLUDED.settled,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
    updated_at = EXCLUDED.updated_at, state = EXCLUDED.state
WHERE execution_view.version < EXCLUDED.version
"""


class JobViewRow(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    project_id: str
    version: int
    name: str
    paused: bool
    deleted: bool
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime
    state: msgspec.Raw


class ExecutionViewRow(msgspec.Struct, frozen=True, kw_only=True):
    execution_id: str
    project_id: str
    job_id: str
    version: int
    status: str
    settled: bool
    trigger: str
    definition_version: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    state: msgspec.Raw


def job_view_row(state: JobState, state_json: bytes) -> JobViewRow:
    return JobViewRow(
        job_id=state.job_id,
        project_id=state.project_id,
        version=state.version,
        name=state.definition.name,
        paused=state.paused,
        deleted=state.deleted,
        next_fire_at=state.next_fire_at,
        created_at=state.created_at,
        updated_at=state.updated_at,
        state=msgspec.Raw(state_json),
    )


def execution_view_row(state: ExecutionState, state_json: bytes) -> ExecutionViewRow:
    return ExecutionViewRow(
        execution_id=state.execution_id,
        project_id=state.project_id,
        job_id=state.job_id,
        version=state.version,
        status=state.status,
        settled=state.settled,
        trigger=state.trigger,
        definition_version=state.definition_version,
        created_at=state.created_at,
        started_at=state.started_at,
        finished_at=state.finished_at,
        updated_at=state.updated_at,
        state=msgspec.Raw(state_json),
    )
