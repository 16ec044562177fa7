"""The worker process: dramatiq actors that carry out runs.

One actor, `run_task(task_id, run_id, attempt)` on queue `runs`, async under dramatiq's AsyncIO
middleware. Its database pool, group committer and outbound HTTP client are built on dramatiq's
event-loop thread when the worker boots (LoopResources) and closed when it stops. The broker is
only a transport: what a run does and whether it already happened is decided from the log.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq

from domain.webhook_policy import DEFAULT_SCHEDULE
from infra.broker import enqueue, install_broker, make_broker
from infra.db import create_pool
from infra.egress_client import EgressClient
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from infra.secret_store import TaskSecretStore, load_keyring
from infra.settings import Settings
from infra.worker_runtime import LoopResources, run_worker
from services.fleet.registry import WorkerRegistry
from services.jobs.service import JobService
from services.runs.executor import RunExecutor
from services.tasks.service import TaskService
from services.webhooks.delivery import WebhookDeliverer

RUN_QUEUE = "runs"
RUN_ACTOR = "run_task"
WEBHOOK_QUEUE = "webhooks"
WEBHOOK_ACTOR = "deliver_webhook"


@dataclass
class WorkerResources:
    pool: asyncpg.Pool
    committer: GroupCommitter
    egress: EgressClient
    executor: RunExecutor
    registry: WorkerRegistry
    webhooks: WebhookDeliverer


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def broker_for(settings: Settings, data_dir: Path) -> tuple[dramatiq.Broker, Callable[[], None]]:
    """The configured broker, installed as dramatiq's global one."""
    broker, stop = make_broker(settings.broker_url, data_dir)
    install_broker(broker)
    return broker, stop


def webhook_schedule(settings: Settings) -> tuple[float, ...]:
    """The retry schedule for failed deliveries, in seconds after each attempt."""
    if not settings.webhook_retry_schedule:
        return DEFAULT_SCHEDULE
    return tuple(float(x) for x in settings.webhook_retry_schedule.split(",") if x.strip())


def webhook_sender(broker: dramatiq.Broker) -> Callable[[str, int], Any]:
    """What the webhook pump calls to hand a delivery attempt to the workers."""

    async def send(delivery_id: str, attempts: int) -> None:
        await asyncio.to_thread(
            enqueue, broker, WEBHOOK_QUEUE, WEBHOOK_ACTOR, delivery_id=delivery_id,
            attempts=attempts,
        )  # fmt: skip

    return send


def run_sender(
    broker: dramatiq.Broker,
) -> Callable[[Sequence[tuple[str, str, int]]], Awaitable[None]]:
    """What the scheduler calls to hand a batch of (task id, run id, attempt) to the workers."""

    def send_all(runs: Sequence[tuple[str, str, int]]) -> None:
        for task_id, run_id, attempt in runs:
            enqueue(broker, RUN_QUEUE, RUN_ACTOR, task_id=task_id, run_id=run_id, attempt=attempt)

    async def send(runs: Sequence[tuple[str, str, int]]) -> None:
        # One thread hop per batch: the broker client is blocking.
        await asyncio.to_thread(send_all, runs)

    return send


def declare_worker(
    broker: dramatiq.Broker, settings: Settings, dsn: str, *, allow_commands: bool
) -> LoopResources[WorkerResources]:
    """Add the resources middleware and the run actor to `broker`."""
    ident = worker_id()

    async def build() -> WorkerResources:
        # Runs hold a connection only for their short appends, never across the action, so
        # a small pool serves many threads; threads + 2 each exhausted max_connections (100)
        # with two worker processes in the burst benchmark.
        pool = await create_pool(dsn, size=settings.db_pool_size)
        committer = GroupCommitter(pool, max_batch=settings.group_commit_max, flushers=2)
        egress = EgressClient(
            settings.egress_allow_cidrs, max_response_bytes=settings.egress_max_response_bytes
        )
        await egress.__aenter__()
        keyring = load_keyring(settings)
        tasks = TaskService(
            pool,
            committer,
            secrets=TaskSecretStore(pool, keyring),
            allow_commands=allow_commands,
            egress_allow=parse_allow_list(settings.egress_allow_cidrs),
        )
        # Follows the core tasks of job executions: a node's outcome advances its DAG here.
        JobService(
            tasks, allow_commands=allow_commands, send_runs=run_sender(broker),
            dispatch_lease_seconds=settings.dispatch_lease_seconds,
        )  # fmt: skip
        executor = RunExecutor(
            pool,
            tasks,
            egress,
            worker_id=ident,
            lease_seconds=settings.lease_seconds,
            allow_commands=allow_commands,
        )
        # One pooled connection listens for cancels and deletes of the runs in progress.
        await executor.listen()
        registry = WorkerRegistry(pool, ident, socket.gethostname(), "0.1.0")
        await registry.start()
        deliverer = WebhookDeliverer(
            pool, egress, keyring=keyring, schedule=webhook_schedule(settings)
        )
        return WorkerResources(pool, committer, egress, executor, registry, deliverer)

    async def close(resources: WorkerResources) -> None:
        await resources.executor.close()
        await resources.registry.stop()
        await resources.egress.close()
        await resources.committer.close()
        await resources.pool.close()

    loop_resources: LoopResources[WorkerResources] = LoopResources(build, close)
    broker.add_middleware(loop_resources)

    async def run_task(task_id: str, run_id: str, attempt: int) -> None:
        await loop_resources.resources().executor.execute(task_id, run_id, attempt)

    dramatiq.actor(
        run_task, broker=broker, actor_name=RUN_ACTOR, queue_name=RUN_QUEUE, max_retries=0
    )

    async def deliver_webhook(delivery_id: str, attempts: int) -> None:
        await loop_resources.resources().webhooks.deliver(delivery_id, attempts)

    dramatiq.actor(
        deliver_webhook,
        broker=broker,
        actor_name=WEBHOOK_ACTOR,
        queue_name=WEBHOOK_QUEUE,
        max_retries=0,
    )
    return loop_resources


def serve_worker(
    broker: dramatiq.Broker,
    settings: Settings,
    dsn: str,
    stop: threading.Event,
    *,
    allow_commands: bool,
) -> None:
    """Declare the actor and run the worker until `stop` is set."""
    declare_worker(broker, settings, dsn, allow_commands=allow_commands)
    run_worker(
        broker,
        queues={RUN_QUEUE, WEBHOOK_QUEUE},
        threads=settings.worker_threads,
        stop=stop,
        worker_timeout_ms=settings.worker_poll_ms,
    )
