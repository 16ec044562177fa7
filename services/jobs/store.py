"""Loading and appending jobs and executions: the log plus their inline views, one transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from domain.errors import NotFound
from domain.job import JobState
from domain.job import fold as fold_job
from domain.job_events import ExecutionEvent, JobEvent, type_of
from domain.job_execution import ExecutionState
from domain.job_execution import fold as fold_execution
from infra.event_store import AppendItem
from infra.group_commit import GroupCommitter, InlineWrite
from infra.json_codec import encode
from projections.job_views import (
    EXECUTION_UPSERT_SQL,
    JOB_UPSERT_SQL,
    execution_view_row,
    job_view_row,
)
from services.jobs.metrics import count_execution
from services.tasks.service import Actor, new_events

SCHEMA_VERSION = 1
_job_decoder = msgspec.json.Decoder(JobState)
_execution_decoder = msgspec.json.Decoder(ExecutionState)


def job_stream(job_id: str) -> str:
    return f"job-{job_id}"


def execution_stream(execution_id: str) -> str:
    return f"execution-{execution_id}"


def decode_job(raw: str | bytes) -> JobState:
    return _job_decoder.decode(raw)


def decode_execution(raw: str | bytes) -> ExecutionState:
    return _execution_decoder.decode(raw)


class JobStore:
    """Reads go to the views (tenant-checked where a caller names the id); writes to the log."""

    def __init__(self, pool: asyncpg.Pool, committer: GroupCommitter) -> None:
        self.pool = pool
        self.committer = committer

    async def job(self, project_id: str, job_id: str) -> JobState:
        """The job; NotFound for a deleted job or another project's."""
        state = await self.job_any(job_id)
        if state is None or state.project_id != project_id or state.deleted:
            raise NotFound(f"job {job_id} not found")
        return state

    async def job_any(self, job_id: str) -> JobState | None:
        raw = await self.pool.fetchval("SELECT state::text FROM job_view WHERE job_id = $1", job_id)
        return None if raw is None else decode_job(raw)

    async def execution(self, project_id: str, job_id: str, execution_id: str) -> ExecutionState:
        """One execution of a job; NotFound unless it belongs to that job and project."""
        state = await self.execution_any(execution_id)
        if state is None or state.project_id != project_id or state.job_id != job_id:
            raise NotFound(f"execution {execution_id} not found")
        return state

    async def execution_any(self, execution_id: str) -> ExecutionState | None:
        raw = await self.pool.fetchval(
            "SELECT state::text FROM execution_view WHERE execution_id = $1", execution_id
        )
        return None if raw is None else decode_execution(raw)

    async def append_job(
        self,
        state: JobState | None,
        job_id: str,
        project_id: str,
        events: Sequence[JobEvent],
        actor: Actor,
    ) -> JobState:
        """Append `events` decided against `state`; raises WrongExpectedVersion."""
        new = fold_job(events, state)
        assert new is not None
        view = InlineWrite(JOB_UPSERT_SQL, job_view_row(new, encode(new)))
        expected = -1 if state is None else state.version
        await self.committer.submit(
            _item(job_stream(job_id), project_id, expected, events, actor), [view]
        )
        return new

    async def append_execution(
        self,
        state: ExecutionState | None,
        execution_id: str,
        project_id: str,
        events: Sequence[ExecutionEvent],
        actor: Actor,
    ) -> ExecutionState:
        new = fold_execution(events, state)
        assert new is not None
        view = InlineWrite(EXECUTION_UPSERT_SQL, execution_view_row(new, encode(new)))
        expected = -1 if state is None else state.version
        item = _item(execution_stream(execution_id), project_id, expected, events, actor)
        await self.committer.submit(item, [view])
        count_execution(new, events)
        return new


def _item(
    stream_id: str,
    project_id: str,
    expected: int,
    events: Sequence[JobEvent | ExecutionEvent],
    actor: Actor,
) -> AppendItem:
    return AppendItem(
        stream_id=stream_id,
        project_id=project_id,
        expected=expected,
        events=new_events(events, type_of, actor, SCHEMA_VERSION),
    )
