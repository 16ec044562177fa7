"""`taskstream projections rebuild`: rebuild an asynchronous view from the log."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from infra.db import create_pool
from infra.migrations import migrate
from infra.settings import Settings
from infra.view_store import RebuildRunning, rebuild_view
from projections.views import VIEWS
from services.cli.data_dir import data_dir_flag, database
from services.cli.progress import progress_bar


async def _rebuild(dsn: str, settings: Settings, name: str) -> int:
    pool = await create_pool(dsn, size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        total = await pool.fetchval("SELECT count(*) FROM events")
        with progress_bar(f"rebuilding {name}", total) as bar:
            return await rebuild_view(
                pool,
                VIEWS[name],
                batch=settings.projector_batch,
                on_progress=lambda done: bar(done, None),
            )
    finally:
        await pool.close()


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild one view from the whole log into a fresh table and swap it in."""
    with database(args, settings) as (_, dsn):
        started = time.monotonic()
        try:
            events = asyncio.run(_rebuild(dsn, settings, args.name))
        except RebuildRunning as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        seconds = time.monotonic() - started
    print(f"rebuilt {args.name} from {events} events in {seconds:.1f} s")
    return 0


def add_commands(sub: Any) -> None:
    """Register `projections rebuild`."""
    views = sub.add_parser("projections", help="manage the asynchronous views").add_subparsers(
        dest="projections_command", required=True
    )
    rebuild = views.add_parser("rebuild", help="rebuild a view from the log and swap it in")
    rebuild.add_argument("name", choices=sorted(VIEWS))
    data_dir_flag(rebuild)
    rebuild.set_defaults(run=cmd_projections_rebuild)
