"""PgQueuer as a burst-benchmark baseline: deferred jobs in PostgreSQL, `processes` consumers.

`schedule` installs PgQueuer's schema with its own `Queries.install()` (default `durable`
tables, as taskstream's log is) plus its recommended autovacuum settings (`pgq autovac`,
`Queries.optimize_autovacuum()`: the queue table churns), and enqueues the n
callbacks with `execute_after` = due - now, in batches of `ENQUEUE_BATCH` rows (PgQueuer's list
form of `enqueue`: one `INSERT ... SELECT FROM UNNEST` per batch). `execute_after` is relative
to the server's `now()` at each batch, so a job's due time is off by at most that batch's
client-to-server delay (a few ms). `start` runs `processes` copies of
`baseline_pgqueuer_consumer`, each a `PgQueuer.from_asyncpg_pool(...).run(...)`.

Tuned for PgQueuer's best, from its source (1.6):
- `max_concurrent_tasks=concurrency` (64): the benchmark's per-process cap, enforced by
  PgQueuer's dequeue query. The entrypoint has no `concurrency_limit` (that one is fleet-wide
  and adds a counting CTE to every dequeue).
- `batch_size=concurrency // 2` (32): the largest PgQueuer allows under that cap (it requires
  `max_concurrent_tasks >= 2 * batch_size`). Fewer dequeue round trips, and completions are
  logged in batches of the same size.
- `AsyncpgPoolDriver` with 4 connections rather than one `AsyncpgDriver` connection: the
  single-connection driver serialises dequeue, completion logging and heartbeats behind one
  lock; with a pool they overlap (the listener holds one connection of its own).
- uvloop, as PgQueuer's own CLI runs; `dequeue_timeout` left at 30 s: with deferred work
  PgQueuer sleeps exactly until the next `execute_after` (and wakes on NOTIFY), so the idle
  timeout never delays a due job.

Self-check, this system alone on a scratch database (the harness's own code, one run):

    python scripts/bench/burst.py --systems pgqueuer --n 2000 --runs 1 --lead 15
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from pgqueuer import AsyncpgDriver, Queries

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from infra.json_codec import encode  # noqa: E402
from scripts.bench.baseline_callback import Callback  # noqa: E402
from scripts.bench.baseline_fleet import FleetBurst  # noqa: E402
from scripts.bench.baseline_pgqueuer_consumer import DSN_ENV, ENTRYPOINT  # noqa: E402

ENQUEUE_BATCH = 2000


class PgQueuerBurst(FleetBurst):
    """The burst through PgQueuer: see the module docstring for what is set and why."""

    name = "pgqueuer"

    @asynccontextmanager
    async def queries(self, *, install: bool = False) -> AsyncIterator[Queries]:
        """PgQueuer's queries on one connection; with `install`, its schema first installed
        unless it is there (`schedule` and `start` may come in either order, and PgQueuer's
        consumers refuse to run without it)."""
        conn = await asyncpg.connect(self.dsn)
        try:
            queries = Queries(AsyncpgDriver(conn))
            if install and not await self.installed(queries):
                await queries.install()
                await queries.optimize_autovacuum()
            yield queries
        finally:
            await conn.close()

    @staticmethod
    async def installed(queries: Queries) -> bool:
        """Whether PgQueuer's queue table exists."""
        return await queries.has_table(queries.qbe.settings.queue_table)

    async def schedule(self, n: int, due_at: datetime, receiver_url: str) -> None:
        """Install PgQueuer's schema if needed and enqueue n callbacks due at `due_at`."""
        async with self.queries(install=True) as queries:
            for start in range(0, n, ENQUEUE_BATCH):
                numbers = range(start, min(n, start + ENQUEUE_BATCH))
                delay = due_at - datetime.now(UTC)
                await queries.enqueue(
                    [ENTRYPOINT] * len(numbers),
                    [encode(Callback(f"{receiver_url}/hit/{i}", i)) for i in numbers],
                    [0] * len(numbers),
                    [delay] * len(numbers),
                )

    async def start(self) -> None:
        """Install PgQueuer's schema if needed, start the consumers; return once each listens."""
        if self.concurrency < 2:
            raise ValueError("PgQueuer needs concurrency >= 2 (a batch is at most half of it)")
        async with self.queries(install=True):
            pass
        await self.fleet.start(
            "scripts.bench.baseline_pgqueuer_consumer",
            ["--concurrency", str(self.concurrency), "--batch-size", str(self.concurrency // 2)],
            self.processes,
            {DSN_ENV: self.dsn},
        )

    async def stop(self) -> None:
        """Stop the consumers (printing their tally), then drop PgQueuer's schema."""
        await self.fleet.stop()
        async with self.queries() as queries:
            if await self.installed(queries):
                await queries.uninstall()

