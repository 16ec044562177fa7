"""The scheduler's part in jobs: fire due cron times and reconcile what nobody advanced.

Any number of scheduler replicas may run this. Each claims due jobs and quiet open executions
with `FOR UPDATE SKIP LOCKED` and a short claim, so two replicas never decide the same thing at
once; and every decision is an expected-version append anyway, so a claim lapsing mid-way costs
a conflict, never a double run.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import msgspec

from domain.errors import DomainError
from services.jobs.service import JobService

log = logging.getLogger(__name__)

_CLAIM_DUE_JOBS = """
WITH due AS (
    SELECT job_id FROM job_view
     WHERE NOT deleted AND next_fire_at <= $3
       AND (claimed_until IS NULL OR claimed_until < now())
     ORDER BY next_fire_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE job_view j SET claimed_until = now() + make_interval(secs => $2)
  FROM due WHERE j.job_id = due.job_id
RETURNING j.job_id
"""

# Open executions untouched for a while: their worker may have died before advancing them.
_CLAIM_QUIET = """
WITH quiet AS (
    SELECT execution_id FROM execution_view
     WHERE NOT settled AND updated_at < now() - make_interval(secs => $3)
       AND (checked_until IS NULL OR checked_until < now())
     ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE execution_view e SET checked_until = now() + make_interval(secs => $2)
  FROM quiet WHERE e.execution_id = quiet.execution_id
RETURNING e.execution_id
"""

# Settled executions a job still counts as running (a crash between settling and freeing).
_UNFREED = """
SELECT e.execution_id
  FROM job_view j, jsonb_array_elements_text(j.state->'running') AS r(execution_id)
  JOIN execution_view e ON e.execution_id = r.execution_id
 WHERE NOT j.deleted AND e.settled AND e.updated_at < now() - make_interval(secs => $2)
 LIMIT $1
"""


class SweepConfig(msgspec.Struct, frozen=True, kw_only=True):
    batch: int = 100
    claim_seconds: float = 10.0
    # An open execution nobody advanced for this long is reconciled by the sweep.
    quiet_seconds: float = 2.0


class JobSweeper:
    def __init__(
        self, pool: asyncpg.Pool, jobs: JobService, *, config: SweepConfig = SweepConfig()
    ) -> None:
        self.pool = pool
        self.jobs = jobs
        self.config = config

    async def tick(self) -> None:
        c = self.config
        due = await self.pool.fetch(_CLAIM_DUE_JOBS, c.batch, c.claim_seconds, self.jobs.clock())
        await asyncio.gather(*(self._guarded(self.jobs.fire(r["job_id"])) for r in due))
        quiet = await self.pool.fetch(_CLAIM_QUIET, c.batch, c.claim_seconds, c.quiet_seconds)
        unfreed = await self.pool.fetch(_UNFREED, c.batch, c.quiet_seconds)
        ids = {r["execution_id"] for r in [*quiet, *unfreed]}
        await asyncio.gather(*(self._guarded(self.jobs.runner.poke(i)) for i in ids))

    async def _guarded(self, step: object) -> None:
        try:
            await step  # type: ignore[misc]
        except (DomainError, OSError, asyncpg.PostgresError) as exc:
            log.warning("job sweep step failed (retried next tick): %s", exc)
