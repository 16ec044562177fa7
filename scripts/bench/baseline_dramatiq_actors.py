"""The dramatiq side of the burst baseline: the async callback actor, and one consumer process.

    BENCH_DRAMATIQ_REDIS_URL=redis://... python -m scripts.bench.baseline_dramatiq_actors \
        --threads 64 --worker-timeout 100

The consumer is a `dramatiq.Worker` on a `RedisBroker` with the `AsyncIO` middleware, as the
`dramatiq` CLI would build it, run directly so that it can print `READY` once its threads run
and its callback tally on SIGTERM/SIGINT. The knobs and why are in `baseline_dramatiq`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

import dramatiq
import uvloop
from dramatiq import Actor, Worker
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO, Middleware

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.baseline_callback import READY, CallbackClient  # noqa: E402

QUEUE = "burst"
REDIS_ENV = "BENCH_DRAMATIQ_REDIS_URL"

# One per process, used from dramatiq's single event-loop thread.
client = CallbackClient()


async def burst_callback(url: str, i: int) -> None:
    """POST `{"i": i}` to `url`; a failure is counted by the client, not retried."""
    await client.post(url, i)


def callback_actor(broker: RedisBroker) -> Actor[[str, int], None]:
    """Declare the callback actor on `broker`, not on dramatiq's global broker: the harness
    process may hold another system's broker there."""
    declare = dramatiq.actor(
        broker=broker, actor_name="burst_callback", queue_name=QUEUE, max_retries=0
    )
    actor: Actor[[str, int], None] = declare(burst_callback)
    return actor


class CloseCallbackSession(Middleware):
    """Closes the HTTP session on dramatiq's event loop once the worker threads have stopped.

    Added before `AsyncIO`, so its `after_worker_shutdown` runs while the loop still runs.
    """

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Worker) -> None:
        get_event_loop_thread().run_coroutine(client.close())  # type: ignore[union-attr]


def consume(args: argparse.Namespace) -> None:
    """Run one dramatiq worker until SIGTERM/SIGINT; print the callback tally."""
    # dramatiq's loop thread calls asyncio.new_event_loop(): make that a uvloop loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # Blocked here, before any thread starts, so every thread inherits the mask and only the
    # main thread's sigwait below receives them.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    broker = RedisBroker(url=os.environ[REDIS_ENV])
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CloseCallbackSession(), before=AsyncIO)
    callback_actor(broker)
    worker = Worker(broker, worker_threads=args.threads, worker_timeout=args.worker_timeout)
    worker.start()
    print(READY, flush=True)
    signal.sigwait(stop_signals)
    worker.stop()
    broker.close()
    print(client.summary(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--worker-timeout", type=int, default=100, help="idle poll, ms")
    consume(parser.parse_args())


if __name__ == "__main__":
    main()
