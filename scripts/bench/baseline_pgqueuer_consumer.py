"""One PgQueuer consumer process of the burst benchmark (started by `baseline_pgqueuer`).

    BENCH_PGQUEUER_DSN=postgresql://... python -m scripts.bench.baseline_pgqueuer_consumer \
        --concurrency 64 --batch-size 32 --pool-size 4

Prints `READY` once its LISTEN connection answers a health probe, and its callback tally on
SIGTERM/SIGINT. The knobs and why they are set so are in `baseline_pgqueuer`'s docstring.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
import uvloop
from pgqueuer import PgQueuer
from pgqueuer.errors import FailingListenerError
from pgqueuer.models import Job

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from infra.json_codec import decode  # noqa: E402
from scripts.bench.baseline_callback import READY, Callback, CallbackClient  # noqa: E402

ENTRYPOINT = "burst_callback"
DSN_ENV = "BENCH_PGQUEUER_DSN"


async def wait_until_listening(pgq: PgQueuer, running: asyncio.Task[None], timeout: float) -> None:
    """Return once a NOTIFY round trip through the consumer's listener succeeds."""
    deadline = time.monotonic() + timeout
    while True:
        if running.done():
            running.result()  # raises what stopped it
            raise RuntimeError("PgQueuer stopped before it was listening")
        try:
            await pgq.qm.listener_healthy(timeout=timedelta(seconds=0.5))
            return
        except FailingListenerError:
            if time.monotonic() > deadline:
                raise


async def consume(args: argparse.Namespace) -> None:
    """Run one PgQueuer consumer until SIGTERM/SIGINT; print the callback tally."""
    pool = await asyncpg.create_pool(
        os.environ[DSN_ENV], min_size=args.pool_size, max_size=args.pool_size
    )
    client = CallbackClient()
    try:
        pgq = PgQueuer.from_asyncpg_pool(pool)

        @pgq.entrypoint(ENTRYPOINT)
        async def callback(job: Job) -> None:
            assert job.payload is not None
            target = decode(job.payload, Callback)
            await client.post(target.url, target.i)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, pgq.shutdown.set)
        running = asyncio.create_task(
            pgq.run(batch_size=args.batch_size, max_concurrent_tasks=args.concurrency)
        )
        await wait_until_listening(pgq, running, timeout=30.0)
        print(READY, flush=True)
        await running
    finally:
        await client.close()
        print(client.summary(), flush=True)
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=4)
    uvloop.run(consume(parser.parse_args()))


if __name__ == "__main__":
    main()
