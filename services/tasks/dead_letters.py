"""Dead letters: tasks whose last run failed for good, and retrying them in bulk.

A bulk retry is one RetryTask per task, each its own append: a crash part-way leaves the tasks
done so far retried (they are no longer dead letters) and the rest untouched, so asking again
with the same filter finishes the job and retries nothing twice.
"""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec

from domain.commands import RetryTask
from domain.errors import DomainError
from services.tasks.queries import Keyset, TaskRow, TaskSearch, task_page
from services.tasks.service import Actor, TaskService

MAX_BULK = 1000
RETRY_CONCURRENCY = 8


class BulkRetry(msgspec.Struct, frozen=True, kw_only=True):
    """What a bulk retry matched, retried, and refused (by task id, with the reason)."""

    matched: int
    retried: list[str]
    refused: dict[str, str]


def dead_letter_search(search: TaskSearch) -> TaskSearch:
    return msgspec.structs.replace(search, status="failed")


async def dead_letters(
    pool: asyncpg.Pool,
    project_id: str,
    search: TaskSearch,
    *,
    after: Keyset | None = None,
    limit: int = 50,
) -> tuple[list[TaskRow], Keyset | None]:
    """One page of the project's dead letters, most recently failed first."""
    return await task_page(
        pool, project_id, dead_letter_search(search), order="updated", after=after, limit=limit
    )


async def _matching(
    pool: asyncpg.Pool, project_id: str, ids: list[str] | None, search: TaskSearch | None
) -> tuple[list[str], dict[str, str]]:
    if ids is not None:
        rows = await pool.fetch(
            "SELECT task_id FROM task_view WHERE project_id = $1 AND task_id = ANY($2::text[])"
            " AND status = 'failed' AND lifecycle <> 'deleted'",
            project_id,
            ids,
        )
        found = {r["task_id"] for r in rows}
        wanted = list(dict.fromkeys(ids))
        refused = {t: "not a dead letter of this project" for t in wanted if t not in found}
        return [t for t in wanted if t in found], refused
    page, _ = await dead_letters(pool, project_id, search or TaskSearch(), limit=MAX_BULK)
    return [row.task_id for row in page], {}


async def retry_dead_letters(
    tasks: TaskService,
    project_id: str,
    *,
    ids: list[str] | None,
    search: TaskSearch | None,
    dry_run: bool,
    actor: Actor,
) -> BulkRetry:
    """Retry the dead letters named by `ids`, or (at most MAX_BULK) matching `search`."""
    matched, refused = await _matching(tasks.pool, project_id, ids, search)
    if dry_run:
        return BulkRetry(matched=len(matched), retried=[], refused=refused)
    slots = asyncio.Semaphore(RETRY_CONCURRENCY)

    async def retry(task_id: str) -> str | None:
        async with slots:
            try:
                await tasks.execute(project_id, task_id, RetryTask(), actor=actor)
            except DomainError as exc:
                return exc.message
            return None

    outcomes = await asyncio.gather(*(retry(t) for t in matched))
    for task_id, problem in zip(matched, outcomes, strict=True):
        if problem is not None:
            refused[task_id] = problem
    retried = [t for t, problem in zip(matched, outcomes, strict=True) if problem is None]
    return BulkRetry(matched=len(matched), retried=retried, refused=refused)
