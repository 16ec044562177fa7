"""Each project's secret for signing per-task notify_url deliveries (Standard Webhooks v1)."""

from __future__ import annotations

import secrets

import asyncpg

from domain.webhook_signing import new_secret

_ENSURE = """
INSERT INTO notify_secrets (project_id, secret) VALUES ($1, $2)
ON CONFLICT (project_id) DO NOTHING
"""

_ROTATE = """
INSERT INTO notify_secrets (project_id, secret) VALUES ($1, $2)
ON CONFLICT (project_id) DO UPDATE SET secret = EXCLUDED.secret, rotated_at = now()
"""


def fresh_secret() -> str:
    """A new `whsec_…` secret."""
    return new_secret(secrets.token_bytes(32))


async def ensure_notify_secrets(conn: asyncpg.Connection, projects: list[str]) -> None:
    """Give every listed project a notify secret if it has none."""
    await conn.executemany(_ENSURE, [(p, fresh_secret()) for p in projects])


async def notify_secret(pool: asyncpg.Pool, project_id: str, *, rotate: bool = False) -> str:
    """The project's notify secret, created (or, with `rotate`, replaced) as needed."""
    async with pool.acquire() as conn:
        await conn.execute(_ROTATE if rotate else _ENSURE, project_id, fresh_secret())
        value: str = await conn.fetchval(
            "SELECT secret FROM notify_secrets WHERE project_id = $1", project_id
        )
    return value
