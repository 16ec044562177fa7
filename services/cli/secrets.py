"""`taskstream secrets scrub|rekey|generate-key`: maintaining the secret store (docs/secrets.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from infra.db import create_pool
from infra.secret_scrub import rekey, scrub
from infra.secret_store import Keyring, generate_key, load_keyring
from infra.settings import Settings
from services.cli.data_dir import data_dir_flag, database, migrate_dsn, with_secrets_key


def _run(
    args: argparse.Namespace,
    settings: Settings,
    job: Callable[[asyncpg.Pool, Keyring], Awaitable[msgspec.Struct]],
) -> int:
    with database(args, settings) as (data_dir, dsn):
        keyring = load_keyring(with_secrets_key(settings, data_dir))

        async def go() -> msgspec.Struct:
            await migrate_dsn(dsn)
            pool = await create_pool(dsn, size=2)
            try:
                return await job(pool, keyring)
            finally:
                await pool.close()

        report = asyncio.run(go())
    print(json.dumps(msgspec.to_builtins(report)))
    return 0


def cmd_scrub(args: argparse.Namespace, settings: Settings) -> int:
    """Move header values out of past events into the store and redact them in place."""
    return _run(args, settings, scrub)


def cmd_rekey(args: argparse.Namespace, settings: Settings) -> int:
    """Reseal every stored secret under the current key (after a rotation)."""
    return _run(args, settings, rekey)


def cmd_generate_key(args: argparse.Namespace, settings: Settings) -> int:
    print(generate_key())
    return 0


def add_commands(sub: Any) -> None:
    """Register `secrets scrub`, `secrets rekey` and `secrets generate-key`."""
    group = sub.add_parser("secrets", help="the encrypted secret store").add_subparsers(
        dest="secrets_command", required=True
    )
    for name, run, text in (
        ("scrub", cmd_scrub, "move header values in past events to the store (rewrites the log)"),
        ("rekey", cmd_rekey, "reseal every secret under TASKSTREAM_SECRETS_KEY"),
    ):
        command = group.add_parser(name, help=text)
        data_dir_flag(command)
        command.set_defaults(run=run)
    group.add_parser("generate-key", help="print a new TASKSTREAM_SECRETS_KEY").set_defaults(
        run=cmd_generate_key
    )
