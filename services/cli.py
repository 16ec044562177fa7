"""`taskstream`: run the service, migrate, and manage projects."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
from aiohttp import web

from infra.db import create_pool
from infra.embedded_postgres import start_embedded_postgres
from infra.migrations import migrate
from infra.project_store import ProjectExists, add_key, create_project, project_by_name
from infra.settings import Settings, load_settings
from services.gateway.app import build_app

log = logging.getLogger("taskstream")

DEFAULT_PROJECT = "default"


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


async def _serve(settings: Settings, dsn: str, data_dir: Path, host: str, port: int) -> None:
    pool = await create_pool(dsn, size=settings.db_pool_size)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            new_key = await ensure_default_project(conn, data_dir)
        # Everything loaded so far lives for the whole process: keep the collector off it, and
        # collect young objects less often (a request allocates thousands): it trims tail latency.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 50)
        runner = web.AppRunner(build_app(settings, pool), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        print(
            f"taskstream serving on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)"
        )
        if new_key is not None:
            print(f"project 'default' API key (shown once, also in {data_dir}/credentials.json):")
            print(f"  {new_key}")
        else:
            print(f"credentials: {data_dir}/credentials.json")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()
    finally:
        await pool.close()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where installed (it roughly halves aiohttp's per-request CPU), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(
                _serve(
                    settings, dsn, data_dir, args.host or settings.host, args.port or settings.port
                )
            )
    finally:
        stop_db()
    return 0


async def _migrate(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    try:
        applied = asyncio.run(_migrate(dsn))
    finally:
        stop_db()
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
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    try:
        project_id, key = asyncio.run(_create_project(dsn, args.name))
    except ProjectExists as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_db()
    if args.json:
        print(json.dumps({"project_id": project_id, "api_key": key}))
    else:
        print(f"project {args.name!r} created")
        print(f"  project_id: {project_id}")
        print(f"  api_key:    {key}   (shown once; store it now)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taskstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run the service on this machine (embedded defaults)")
    dev.add_argument("--host")
    dev.add_argument("--port", type=int)
    dev.add_argument("--data-dir")
    dev.set_defaults(run=cmd_dev)
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
