"""Plain dramatiq on Redis as a burst-benchmark baseline: delayed messages, `processes` workers.

`schedule` flushes the Redis db, then sends the n callbacks with
`actor.send_with_options(args=(url, i), delay=ms until due)` from `SENDERS` threads (dramatiq
has no batch enqueue: each send is one Lua call on Redis, so threads overlap the round trips;
the delay is computed per message, so every message's eta is the due time to the ms).
`start` runs `processes` copies of `baseline_dramatiq_actors`: each a `dramatiq.Worker` on a
`RedisBroker` with the `AsyncIO` middleware and an `async def` actor doing the POST.

Tuned for dramatiq's best, from its source (2.2):
- `worker_threads=concurrency` (64): an async actor holds its worker thread until the
  coroutine ends, so the thread count is the number of callbacks in flight per process.
  `queue_prefetch` stays at dramatiq's default, 2 x threads.
- `worker_timeout=100` ms instead of 1,000: an idle Redis consumer backs off up to this long
  between polls, and the delay-queue consumer moves due messages to the work queue only
  between polls, so the default adds up to a second of lateness at the start of the burst.
- The delay-queue prefetch stays at dramatiq's default (1,000 x threads): with the messages
  sent before the workers start, the first worker to boot holds them all and moves them to
  the work queue alone. Capping it (`dramatiq_delay_queue_prefetch=1000`, so both processes
  move messages) changed nothing beyond noise: 11.3 s against 12.1 s to drain 20,000 on the
  shared 2-core machine, one run each.
- `max_retries=0` (no retries; failures are counted).
- uvloop for dramatiq's event-loop thread (an event-loop policy set in the worker process).

What dramatiq does with a delayed message, and what this measures: a worker's delay-queue
consumer prefetches up to 1,000 x threads delayed messages into memory, and when each is due
re-enqueues it on the work queue (one Redis call) and acks it (another); then a work-queue
consumer fetches it and a thread runs it.

Self-check, this system alone (the harness's own code, one run):

    python scripts/bench/burst.py --systems dramatiq --n 2000 --runs 1 --lead 15
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import redis
from dramatiq.brokers.redis import RedisBroker

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.baseline_dramatiq_actors import REDIS_ENV, callback_actor  # noqa: E402
from scripts.bench.baseline_fleet import FleetBurst  # noqa: E402

SENDERS = 8
WORKER_TIMEOUT_MS = 100


class DramatiqBurst(FleetBurst):
    """The burst through dramatiq: see the module docstring for what is set and why."""

    name = "dramatiq"

    def flush(self) -> None:
        """Empty the dedicated Redis db: queues, delay queues, acks and heartbeats."""
        with redis.Redis.from_url(self.redis_url) as client:
            client.flushdb()

    async def schedule(self, n: int, due_at: datetime, receiver_url: str) -> None:
        """Send n delayed callback messages due at `due_at`, from `SENDERS` threads."""
        self.flush()
        broker = RedisBroker(url=self.redis_url)
        actor = callback_actor(broker)
        due_ms = due_at.timestamp() * 1000

        def send(numbers: range) -> None:
            for i in numbers:
                delay = max(0, round(due_ms - time.time() * 1000))
                actor.send_with_options(args=(f"{receiver_url}/hit/{i}", i), delay=delay)

        loop = asyncio.get_running_loop()
        try:
            with ThreadPoolExecutor(SENDERS) as pool:
                await asyncio.gather(
                    *(
                        loop.run_in_executor(pool, send, range(k, n, SENDERS))
                        for k in range(SENDERS)
                    )
                )
        finally:
            broker.close()

    async def start(self) -> None:
        """Start the worker processes; return once each runs its threads."""
        await self.fleet.start(
            "scripts.bench.baseline_dramatiq_actors",
            ["--threads", str(self.concurrency), "--worker-timeout", str(WORKER_TIMEOUT_MS)],
            self.processes,
            {REDIS_ENV: self.redis_url},
        )

    async def stop(self) -> None:
        """Stop the workers (printing their tally), then flush the Redis db."""
        await self.fleet.stop()
        self.flush()

