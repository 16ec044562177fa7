"""Each project's secret for signing per-task notify_url deliveries (Standard Webhooks v1)."""

from __future__ import annotations

import secrets

import asyncpg

from domain.webhook_signing import new_secret
from infra.secret_store import Keyring, notify_owner

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


def _sealed_fresh_secret(keyring: Keyring, project_id: str) -> str:
    return keyring.seal_text(fresh_secret(), notify_owner(project_id))


async def ensure_notify_secrets(
    conn: asyncpg.Connection, keyring: Keyring, projects: list[str]
) -> None:
    """Give every listed project a notify secret if it has none (sealed, docs/secrets.md)."""
    await conn.executemany(_ENSURE, [(p, _sealed_fresh_secret(keyring, p)) for p in projects])


async def notify_secret(
    pool: asyncpg.Pool, keyring: Keyring, project_id: str, *, rotate: bool = False
) -> str:
    """The project's notify secret, created (or, with `rotate`, replaced) as needed."""
    async with pool.acquire() as conn:
        await conn.execute(
            _ROTATE if rotate else _ENSURE, project_id, _sealed_fresh_secret(keyring, project_id)
        )
        stored: str = await conn.fetchval(
            "SELECT secret FROM notify_secrets WHERE project_id = $1", project_id
        )
    return keyring.open_text(stored, notify_owner(project_id))
