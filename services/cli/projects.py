"""`taskstream projects create` and `taskstream migrate`: the database and its projects."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import asyncpg

from infra.migrations import migrate
from infra.project_store import ProjectExists, create_project
from infra.settings import Settings
from services.cli.data_dir import data_dir_flag, database, migrate_dsn
from services.cli.flags import described


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database(args, settings) as (_, dsn):
        applied = asyncio.run(migrate_dsn(dsn))
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
    with database(args, settings) as (_, dsn):
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


def add_commands(sub: Any) -> None:
    """Register `migrate` and `projects create`."""
    mig = sub.add_parser("migrate", help="apply database migrations")
    data_dir_flag(mig)
    mig.set_defaults(run=cmd_migrate)
    projects = sub.add_parser("projects", help="manage projects").add_subparsers(
        dest="projects_command", required=True
    )
    create = projects.add_parser("create", help="create a project and print its API key")
    create.add_argument("name")
    data_dir_flag(create)
    create.add_argument(
        "--json", action="store_true", help=described("print one JSON line", default="text")
    )
    create.set_defaults(run=cmd_projects_create)
