"""Reads of a project's webhook endpoints and delivery log, and redelivering one message.

Every query names the caller's project: another project's endpoint or delivery reads as missing.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

ENDPOINT_COLUMNS = "endpoint_id, url, events, description, created_at, disabled_at, disabled_reason"


class EndpointRow(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of one delivery; `status` is the delivery's (pending, succeeded, failed)."""

    delivery_id: str
    event_id: str
    event_type: str
    status: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


def endpoint_row(record: asyncpg.Record) -> EndpointRow:
    return EndpointRow(**{**dict(record), "events": list(record["events"])})


async def list_endpoints(
    pool: asyncpg.Pool, project_id: str, *, limit: int, offset: int = 0
) -> tuple[list[EndpointRow], int]:
    """The project's own endpoints (not the per-task notify_url ones), oldest first."""
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE project_id = $1 AND task_id IS NULL",
            project_id,
        )
        rows = await conn.fetch(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"
            " WHERE project_id = $1 AND task_id IS NULL"
            " ORDER BY created_at, endpoint_id LIMIT $2 OFFSET $3",
            project_id,
            limit,
            offset,
        )
    return [endpoint_row(r) for r in rows], int(total)


async def owns_endpoint(pool: asyncpg.Pool, project_id: str, endpoint_id: str) -> bool:
    owner = await pool.fetchval(
        "SELECT project_id FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
    )
    return owner == project_id


async def delivery_attempts(
    pool: asyncpg.Pool, endpoint_id: str, *, limit: int, offset: int = 0
) -> tuple[list[AttemptRow], int]:
    """Attempts to one endpoint, newest first (check `owns_endpoint` first)."""
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d USING (delivery_id)"
            " WHERE d.endpoint_id = $1",
            endpoint_id,
        )
        rows = await conn.fetch(
            "SELECT d.delivery_id, d.event_id::text AS event_id, d.event_type, d.status,"
            " a.attempt, a.attempted_at, a.status_code, a.error, a.duration_ms"
            " FROM webhook_attempts a JOIN webhook_deliveries d USING (delivery_id)"
            " WHERE d.endpoint_id = $1 ORDER BY a.attempted_at DESC, a.attempt DESC"
            " LIMIT $2 OFFSET $3",
            endpoint_id,
            limit,
            offset,
        )
    return [AttemptRow(**dict(r)) for r in rows], int(total)


class Redelivery(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str
    status: str
    attempts: int
    next_attempt_at: datetime


async def redeliver(
    pool: asyncpg.Pool, project_id: str, endpoint_id: str, delivery_id: str
) -> Redelivery | None:
    """Queue one more attempt of a delivery now; None when it is not the project's.

    The message keeps its id and payload (receivers drop repeats by `webhook-id`); its
    attempts count goes on, so the retry schedule treats it as one extra try. A pump or worker
    dying after this only delays it: the row is pending and due, and the pump's claim sends it.
    """
    row = await pool.fetchrow(
        "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(),"
        " claimed_until = NULL"
        "  FROM webhook_endpoints e"
        " WHERE d.delivery_id = $1 AND d.endpoint_id = $2 AND e.endpoint_id = d.endpoint_id"
        "   AND e.project_id = $3"
        " RETURNING d.delivery_id, d.status, d.attempts, d.next_attempt_at",
        delivery_id,
        endpoint_id,
        project_id,
    )
    if row is None:
        return None
    await pool.execute("SELECT pg_notify('ts_due', '')")  # wake a scheduler's pump now
    return Redelivery(**dict(row))
