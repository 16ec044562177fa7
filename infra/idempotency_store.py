"""The `idempotency_keys` table: the first request with a key reserves the id it will create."""

from __future__ import annotations

import asyncpg
import msgspec

from domain.idempotency import WINDOW


class Claim(msgspec.Struct, frozen=True):
    resource_id: str
    fingerprint: bytes
    first: bool  # True: this request made the claim; False: a repeat within the window


async def claim(
    pool: asyncpg.Pool, project_id: str, scope: str, key: str, fingerprint: bytes, resource_id: str
) -> Claim:
    """Reserve `resource_id` for (`project_id`, `scope`, `key`), or return the live reservation.

    A reservation older than the window is replaced, as if the key had never been used.
    """
    row = await pool.fetchrow(
        "INSERT INTO idempotency_keys (project_id, scope, idem_key, fingerprint, resource_id)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (project_id, scope, idem_key) DO UPDATE"
        " SET fingerprint = EXCLUDED.fingerprint, resource_id = EXCLUDED.resource_id,"
        "     created_at = now()"
        " WHERE idempotency_keys.created_at < now() - $6::interval"
        " RETURNING resource_id, fingerprint",
        project_id, scope, key, fingerprint, resource_id, WINDOW,
    )  # fmt: skip
    if row is not None:
        return Claim(row["resource_id"], bytes(row["fingerprint"]), first=True)
    row = await pool.fetchrow(
        "SELECT resource_id, fingerprint FROM idempotency_keys"
        " WHERE project_id = $1 AND scope = $2 AND idem_key = $3",
        project_id, scope, key,
    )  # fmt: skip
    assert row is not None  # a live row conflicted above and is never deleted inside the window
    return Claim(row["resource_id"], bytes(row["fingerprint"]), first=False)


async def sweep(pool: asyncpg.Pool, *, limit: int = 1000) -> int:
    """Delete up to `limit` reservations older than the window; returns how many went."""
    status = await pool.execute(
        "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY("
        " SELECT ctid FROM idempotency_keys WHERE created_at < now() - $1::interval LIMIT $2))",
        WINDOW,
        limit,
    )
    return int(status.split()[-1])
