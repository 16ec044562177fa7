"""Reads of the job and execution views, always within one project."""

from __future__ import annotations

import asyncpg

from domain.job import JobState
from domain.job_execution import ExecutionState
from services.jobs.store import decode_execution, decode_job


async def list_jobs(
    pool: asyncpg.Pool, project_id: str, *, limit: int, offset: int
) -> tuple[list[JobState], int]:
    """One page of a project's jobs, newest first, and how many there are."""
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            "SELECT count(*) FROM job_view WHERE project_id = $1 AND NOT deleted", project_id
        )
        rows = await conn.fetch(
            "SELECT state::text FROM job_view WHERE project_id = $1 AND NOT deleted"
            " ORDER BY created_at DESC, job_id LIMIT $2 OFFSET $3",
            project_id,
            limit,
            offset,
        )
    return [decode_job(r[0]) for r in rows], int(total)


async def history(
    pool: asyncpg.Pool, project_id: str, job_id: str, *, limit: int, offset: int
) -> tuple[list[ExecutionState], int]:
    """One page of a job's executions, newest first, and how many there are."""
    where = "project_id = $1 AND job_id = $2"
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM execution_view WHERE {where}", project_id, job_id
        )
        rows = await conn.fetch(
            f"SELECT state::text FROM execution_view WHERE {where}"
            " ORDER BY created_at DESC, execution_id DESC LIMIT $3 OFFSET $4",
            project_id,
            job_id,
            limit,
            offset,
        )
    return [decode_execution(r[0]) for r in rows], int(total)


async def latest_execution(
    pool: asyncpg.Pool, project_id: str, job_id: str
) -> ExecutionState | None:
    page, _ = await history(pool, project_id, job_id, limit=1, offset=0)
    return page[0] if page else None
