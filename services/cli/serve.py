"""`taskstream dev|gateway|scheduler|worker|relay|projector`: the long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import msgspec
from aiohttp import web

from infra.db import create_pool
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from infra.migrations import migrate
from infra.secret_store import TaskSecretStore, load_keyring
from infra.settings import Settings
from services.cli.data_dir import (
    data_dir_flag,
    database,
    database_url,
    ensure_default_project,
    ensure_ui_session_key,
    migrate_dsn,
    record_kafka,
    with_secrets_key,
)
from services.cli.flags import described
from services.gateway.app import build_app
from services.jobs.service import JobService
from services.jobs.sweep import JobSweeper
from services.metrics.http import start_metrics_server
from services.projector.projector import Projector
from services.relay.process import kafka_for_dev, new_relay, required_bootstrap
from services.runs.handlers import load_handler_modules
from services.scheduler.dispatcher import Scheduler, SchedulerConfig
from services.surfaces.kit.server_log import request_error_log
from services.tasks.service import TaskService
from services.webhooks.pump import WebhookPump
from services.worker.main import broker_for, run_sender, serve_worker, webhook_sender, worker_id


async def _serve(
    settings: Settings,
    dsn: str,
    data_dir: Path,
    *,
    host: str | None,
    port: int | None,
    broker: dramatiq.Broker | None,
    kafka: str | None = None,
    projector: bool = False,
) -> None:
    """Run the gateway (given a `port`), the scheduler (given a `broker`) and the Kafka relay
    (given a `kafka` bootstrap address) and the projector (given `projector`) until a signal."""
    pool = await create_pool(dsn, size=settings.db_pool_size)
    committer: GroupCommitter | None = None
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            new_key = await ensure_default_project(conn, data_dir) if port else None
        # Everything loaded so far lives for the whole process: keep the collector off it, and
        # collect young objects less often (a request allocates thousands): it trims tail latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 50)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        runner = None
        if port:
            runner = web.AppRunner(
                build_app(settings, pool), access_log=None, logger=request_error_log()
            )
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            print(
                f"taskstream serving on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)"
            )
            if new_key is not None:
                print(
                    f"project 'default' API key (shown once, also in {data_dir}/credentials.json):"
                )
                print(f"  {new_key}")
            else:
                print(f"credentials: {data_dir}/credentials.json")
        scheduling = None
        if broker is not None:
            committer = GroupCommitter(pool, max_batch=settings.group_commit_max, flushers=2)
            keyring = load_keyring(settings)
            tasks = TaskService(
                pool,
                committer,
                secrets=TaskSecretStore(pool, keyring),
                allow_commands=settings.allow_commands,
                egress_allow=parse_allow_list(settings.egress_allow_cidrs),
            )
            scheduler = Scheduler(
                pool,
                tasks,
                run_sender(broker),
                config=SchedulerConfig(dispatch_lease_seconds=settings.dispatch_lease_seconds),
                webhooks=WebhookPump(pool, webhook_sender(broker), keyring=keyring),
                jobs=JobSweeper(
                    pool,
                    JobService(
                        tasks,
                        allow_commands=settings.allow_commands,
                        send_runs=run_sender(broker),
                        dispatch_lease_seconds=settings.dispatch_lease_seconds,
                    ),
                ),
            )
            scheduling = asyncio.create_task(scheduler.run(stop))
            print(f"scheduler {scheduler.id} running")
        relaying = None
        if kafka is not None:
            relaying = asyncio.create_task(new_relay(settings, dsn, kafka).run(stop))
            print(f"relay to Kafka at {kafka} started")
        projecting = None
        if projector:
            projecting = asyncio.create_task(_projector(pool, settings).run(stop))
            print("projector running")
        sys.stdout.flush()
        await stop.wait()
        if scheduling is not None:
            await scheduling
        if relaying is not None:
            await relaying
        if projecting is not None:
            await projecting
        if runner is not None:
            await runner.cleanup()
    finally:
        if committer is not None:
            await committer.close()
        await pool.close()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where installed (it roughly halves aiohttp's per-request CPU), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Gateway, scheduler and worker in one process, on embedded servers unless configured."""
    if args.allow_commands:
        settings = msgspec.structs.replace(settings, allow_commands=True)
    load_handler_modules(args.handlers)
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    settings = with_secrets_key(settings, data_dir, create=True)
    settings = ensure_ui_session_key(settings, data_dir)
    dsn, stop_db = database_url(settings, data_dir)
    broker, stop_broker = broker_for(settings, data_dir)
    settings, kafka, stop_kafka = kafka_for_dev(settings)
    forget_kafka = record_kafka(data_dir, kafka)
    worker_stop = threading.Event()
    worker = threading.Thread(
        target=serve_worker,
        args=(broker, settings, dsn, worker_stop),
        kwargs={"allow_commands": settings.allow_commands},
        name="worker",
        daemon=True,
    )
    try:
        # Migrate before the worker boots: its first query must find the tables.
        asyncio.run(migrate_dsn(dsn))
        worker.start()
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(
                _serve(
                    settings,
                    dsn,
                    data_dir,
                    host=args.host or settings.host,
                    port=args.port or settings.port,
                    broker=broker,
                    kafka=kafka,
                    projector=True,
                )
            )
    finally:
        worker_stop.set()
        worker.join(timeout=60)
        forget_kafka()
        stop_kafka()
        stop_broker()
        stop_db()
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Only the gateway: the HTTP API and /metrics (run as many replicas as you like)."""
    host, port = args.host or settings.host, args.port or settings.port
    with database(args, settings) as (data_dir, dsn):
        settings = with_secrets_key(settings, data_dir)
        settings = ensure_ui_session_key(settings, data_dir)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(settings, dsn, data_dir, host=host, port=port, broker=None))
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Only the scheduler (run as many replicas as you like)."""
    with database(args, settings) as (data_dir, dsn):
        settings = with_secrets_key(settings, data_dir)
        start_metrics_server(settings, "scheduler", dsn=dsn)
        broker, stop_broker = broker_for(settings, data_dir)
        try:
            with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
                runner.run(_serve(settings, dsn, data_dir, host=None, port=None, broker=broker))
        finally:
            stop_broker()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Only a worker: runs the actions of dispatched runs."""
    load_handler_modules(args.handlers)
    with database(args, settings) as (data_dir, dsn):
        settings = with_secrets_key(settings, data_dir)
        start_metrics_server(settings, "worker")
        broker, stop_broker = broker_for(settings, data_dir)
        try:
            asyncio.run(migrate_dsn(dsn))
            print(f"worker {worker_id()} running")
            sys.stdout.flush()
            serve_worker(
                broker, settings, dsn, threading.Event(), allow_commands=args.allow_commands
            )
        finally:
            stop_broker()
    return 0


def _serve_one_role(args: argparse.Namespace, settings: Settings, role: str, **serve: Any) -> int:
    """Run one background role of `_serve` (`kafka=…`: the relay, `projector=True`) alone."""
    with database(args, settings) as (data_dir, dsn):
        start_metrics_server(settings, role)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(settings, dsn, data_dir, host=None, port=None, broker=None, **serve))
    return 0


def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    """Only the Kafka relay (run two for fail-over: one produces, the other stands by)."""
    return _serve_one_role(args, settings, "relay", kafka=required_bootstrap(settings))


def _projector(pool: asyncpg.Pool, settings: Settings) -> Projector:
    return Projector(
        pool, batch=settings.projector_batch, poll_seconds=settings.projector_poll_ms / 1000
    )


def cmd_projector(args: argparse.Namespace, settings: Settings) -> int:
    """Only the projector: keeps the asynchronous views (worker, metrics) caught up."""
    return _serve_one_role(args, settings, "projector", projector=True)


def execution_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help=described("import MODULE so its @handler functions run (repeatable)", default="none"),
    )
    p.add_argument(
        "--allow-commands",
        action="store_true",
        help=described(
            "allow `command` actions (subprocesses)", default="off", env="TASKSTREAM_ALLOW_COMMANDS"
        ),
    )


def listen_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host", help=described("address to listen on", default="127.0.0.1", env="TASKSTREAM_HOST")
    )
    p.add_argument(
        "--port", type=int, help=described("port to listen on", default=8080, env="TASKSTREAM_PORT")
    )


def add_commands(sub: Any) -> None:
    """Register the process commands."""
    dev = sub.add_parser("dev", help="run the service on this machine (embedded defaults)")
    listen_flags(dev)
    data_dir_flag(dev)
    execution_flags(dev)
    dev.set_defaults(run=cmd_dev)
    gateway = sub.add_parser("gateway", help="run a gateway replica (the HTTP API)")
    listen_flags(gateway)
    data_dir_flag(gateway)
    gateway.set_defaults(run=cmd_gateway)
    sched = sub.add_parser("scheduler", help="run a scheduler replica")
    data_dir_flag(sched)
    sched.set_defaults(run=cmd_scheduler)
    work = sub.add_parser("worker", help="run a worker process")
    data_dir_flag(work)
    execution_flags(work)
    work.set_defaults(run=cmd_worker)
    relay = sub.add_parser("relay", help="run the Kafka relay (log → Kafka)")
    data_dir_flag(relay)
    relay.set_defaults(run=cmd_relay)
    proj = sub.add_parser("projector", help="run the projector (asynchronous views)")
    data_dir_flag(proj)
    proj.set_defaults(run=cmd_projector)
