"""`taskstream`: run the service, migrate, and manage projects."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import msgspec
from aiohttp import web

from infra.db import create_pool
from infra.embedded_postgres import start_embedded_postgres
from infra.group_commit import GroupCommitter
from infra.migrations import migrate
from infra.project_store import (
    DEFAULT_PROJECT,
    ProjectExists,
    add_key,
    create_project,
    project_by_name,
)
from infra.settings import Settings, load_settings
from infra.view_store import RebuildRunning, rebuild_view
from projections.views import VIEWS
from services.gateway.app import build_app
from services.handlers import load_handler_modules
from services.metrics_http import start_metrics_server
from services.projector.projector import Projector
from services.relay.process import (
    kafka_for_dev,
    new_relay,
    parse_since,
    replay_since,
    required_bootstrap,
    tail,
)
from services.scheduler.dispatcher import Scheduler, SchedulerConfig
from services.task_service import TaskService
from services.webhook_pump import WebhookPump
from services.worker.main import broker_for, run_sender, serve_worker, webhook_sender, worker_id

log = logging.getLogger("taskstream")


def database_url(settings: Settings, data_dir: Path) -> tuple[str, Callable[[], None]]:
    """TASKSTREAM_DATABASE_URL, or an embedded server kept in `data_dir`/postgres."""
    if settings.database_url:
        return settings.database_url, lambda: None
    return start_embedded_postgres(data_dir / "postgres")


def write_credentials(data_dir: Path, project_id: str, api_key: str) -> Path:
    """Write credentials.json readable by its owner only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"project_id": project_id, "api_key": api_key}, out)
    os.chmod(path, 0o600)
    return path


async def ensure_default_project(conn: asyncpg.Connection, data_dir: Path) -> str | None:
    """Create project `default` and credentials.json on first start; returns a new key, once."""
    path = data_dir / "credentials.json"
    project_id = await project_by_name(conn, DEFAULT_PROJECT)
    if project_id is not None and path.exists():
        return None
    if project_id is None:
        creds = await create_project(conn, DEFAULT_PROJECT)
        project_id, key = creds.project_id, creds.api_key
    else:
        key = await add_key(conn, project_id, label="credentials.json")
    write_credentials(data_dir, project_id, key)
    return key


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
            runner = web.AppRunner(build_app(settings, pool), access_log=None)
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
            scheduler = Scheduler(
                pool,
                TaskService(pool, committer, allow_commands=settings.allow_commands),
                run_sender(broker),
                config=SchedulerConfig(dispatch_lease_seconds=settings.dispatch_lease_seconds),
                webhooks=WebhookPump(pool, webhook_sender(broker)),
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


@contextlib.contextmanager
def _database(args: argparse.Namespace, settings: Settings) -> Iterator[tuple[Path, str]]:
    """The data directory and a database DSN (embedded server started, and stopped after)."""
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    try:
        yield data_dir, dsn
    finally:
        stop_db()


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Gateway, scheduler and worker in one process, on embedded servers unless configured."""
    if args.allow_commands:
        settings = msgspec.structs.replace(settings, allow_commands=True)
    load_handler_modules(args.handlers)
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    broker, stop_broker = broker_for(settings, data_dir)
    settings, kafka, stop_kafka = kafka_for_dev(settings)
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
        asyncio.run(_migrate(dsn))
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
        stop_kafka()
        stop_broker()
        stop_db()
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    """Only the gateway: the HTTP API and /metrics (run as many replicas as you like)."""
    host, port = args.host or settings.host, args.port or settings.port
    with _database(args, settings) as (data_dir, dsn):
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(settings, dsn, data_dir, host=host, port=port, broker=None))
    return 0


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    """Only the scheduler (run as many replicas as you like)."""
    with _database(args, settings) as (data_dir, dsn):
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
    with _database(args, settings) as (data_dir, dsn):
        start_metrics_server(settings, "worker")
        broker, stop_broker = broker_for(settings, data_dir)
        try:
            asyncio.run(_migrate(dsn))
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
    with _database(args, settings) as (data_dir, dsn):
        start_metrics_server(settings, role)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_serve(settings, dsn, data_dir, host=None, port=None, broker=None, **serve))
    return 0


def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    """Only the Kafka relay (run two for fail-over: one produces, the other stands by)."""
    return _serve_one_role(args, settings, "relay", kafka=required_bootstrap(settings))


def cmd_events_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Publish the log again from `--since` to its head (subscribers dedupe by id)."""
    kafka = required_bootstrap(settings)
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with _database(args, settings) as (_, dsn):
        count = asyncio.run(replay_since(settings, dsn, kafka, since))
    print(f"republished {count} events")
    return 0


def cmd_events_tail(args: argparse.Namespace, settings: Settings) -> int:
    """Print every event from Kafka once, as JSON lines (a subscriber example)."""
    asyncio.run(tail(required_bootstrap(settings), args.group))
    return 0


async def _migrate(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def _projector(pool: asyncpg.Pool, settings: Settings) -> Projector:
    return Projector(
        pool, batch=settings.projector_batch, poll_seconds=settings.projector_poll_ms / 1000
    )


def cmd_projector(args: argparse.Namespace, settings: Settings) -> int:
    """Only the projector: keeps the asynchronous views (worker, metrics) caught up."""
    return _serve_one_role(args, settings, "projector", projector=True)


async def _rebuild(dsn: str, settings: Settings, name: str) -> int:
    pool = await create_pool(dsn, size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        return await rebuild_view(pool, VIEWS[name], batch=settings.projector_batch)
    finally:
        await pool.close()


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild one view from the whole log into a fresh table and swap it in."""
    with _database(args, settings) as (_, dsn):
        started = time.monotonic()
        try:
            events = asyncio.run(_rebuild(dsn, settings, args.name))
        except RebuildRunning as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        seconds = time.monotonic() - started
    print(f"rebuilt {args.name} from {events} events in {seconds:.1f} s")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with _database(args, settings) as (_, dsn):
        applied = asyncio.run(_migrate(dsn))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


async def _create_project(dsn: str, name: str) -> tuple[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        creds = await create_project(conn, name)
        return creds.project_id, creds.api_key
    finally:
        await conn.close()


def cmd_projects_create(args: argparse.Namespace, settings: Settings) -> int:
    with _database(args, settings) as (_, dsn):
        try:
            project_id, key = asyncio.run(_create_project(dsn, args.name))
        except ProjectExists as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"project_id": project_id, "api_key": key}))
    else:
        print(f"project {args.name!r} created")
        print(f"  project_id: {project_id}")
        print(f"  api_key:    {key}   (shown once; store it now)")
    return 0


def _execution_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE so its @handler functions can run (repeatable)",
    )
    p.add_argument(
        "--allow-commands", action="store_true", help="allow `command` actions (subprocesses)"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taskstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run the service on this machine (embedded defaults)")
    dev.add_argument("--host")
    dev.add_argument("--port", type=int)
    dev.add_argument("--data-dir")
    _execution_flags(dev)
    dev.set_defaults(run=cmd_dev)
    gateway = sub.add_parser("gateway", help="run a gateway replica (the HTTP API)")
    gateway.add_argument("--host")
    gateway.add_argument("--port", type=int)
    gateway.add_argument("--data-dir")
    gateway.set_defaults(run=cmd_gateway)
    sched = sub.add_parser("scheduler", help="run a scheduler replica")
    sched.add_argument("--data-dir")
    sched.set_defaults(run=cmd_scheduler)
    work = sub.add_parser("worker", help="run a worker process")
    work.add_argument("--data-dir")
    _execution_flags(work)
    work.set_defaults(run=cmd_worker)
    relay = sub.add_parser("relay", help="run the Kafka relay (log → Kafka)")
    relay.add_argument("--data-dir")
    relay.set_defaults(run=cmd_relay)
    events = sub.add_parser("events", help="the event stream in Kafka").add_subparsers(
        dest="events_command", required=True
    )
    replay = events.add_parser("replay", help="publish the log again from a time on")
    replay.add_argument("--since", required=True, help="ISO 8601 time (UTC unless it says)")
    replay.add_argument("--data-dir")
    replay.set_defaults(run=cmd_events_replay)
    tail_cmd = events.add_parser("tail", help="print every event once (consumer group)")
    tail_cmd.add_argument("--group", default="taskstream-tail", help="consumer group id")
    tail_cmd.set_defaults(run=cmd_events_tail)
    proj = sub.add_parser("projector", help="run the projector (asynchronous views)")
    proj.add_argument("--data-dir")
    proj.set_defaults(run=cmd_projector)
    views = sub.add_parser("projections", help="manage the asynchronous views").add_subparsers(
        dest="projections_command", required=True
    )
    rebuild = views.add_parser("rebuild", help="rebuild a view from the log and swap it in")
    rebuild.add_argument("name", choices=sorted(VIEWS))
    rebuild.add_argument("--data-dir")
    rebuild.set_defaults(run=cmd_projections_rebuild)
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("--data-dir")
    mig.set_defaults(run=cmd_migrate)
    projects = sub.add_parser("projects", help="manage projects").add_subparsers(
        dest="projects_command", required=True
    )
    create = projects.add_parser("create", help="create a project and print its API key")
    create.add_argument("name")
    create.add_argument("--data-dir")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=cmd_projects_create)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `taskstream` command."""
    try:
        settings = load_settings()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    return int(args.run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
