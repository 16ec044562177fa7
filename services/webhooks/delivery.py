"""Delivering one webhook attempt: sign (Standard Webhooks v1), POST, record, plan the next.

Each attempt is claimed first (`attempts` moves from the number the message carries to the
next), so a duplicate or late broker message sends nothing. The `webhook-id` is the delivery's
id on every attempt; the timestamp and signature are fresh each time.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import asyncpg

from domain import webhook_signing
from domain.webhook_policy import DEFAULT_SCHEDULE, next_attempt
from infra.egress_client import EgressClient, EgressConnectionError, EgressTimeout
from infra.egress_guard import EgressRefused
from infra.secret_store import Keyring, SecretUnreadable, notify_owner, webhook_owner
from services.metrics.catalog import WEBHOOK_ATTEMPTS

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_SECONDS = 15.0

_CLAIM_ATTEMPT = """
UPDATE webhook_deliveries d SET attempts = d.attempts + 1
  FROM webhook_endpoints e
 WHERE d.delivery_id = $1 AND d.status = 'pending' AND d.attempts = $2
   AND e.endpoint_id = d.endpoint_id
RETURNING d.attempts, d.payload::text AS payload, e.endpoint_id, e.url, e.disabled_at,
          e.project_id, e.task_id,
          CASE WHEN e.task_id IS NULL THEN e.secret
               ELSE (SELECT n.secret FROM notify_secrets n WHERE n.project_id = e.project_id)
          END AS secret
"""


# The next delivery of this one's stream waited for it: wake the pump (LISTEN ts_due) now.
_WAKE_NEXT = """
SELECT pg_notify('ts_due', '') FROM webhook_deliveries d
 WHERE d.delivery_id = $1 AND d.stream_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM webhook_deliveries n
                WHERE n.endpoint_id = d.endpoint_id AND n.stream_id = d.stream_id
                  AND n.status = 'pending' AND n.stream_version > d.stream_version)
"""


class WebhookDeliverer:
    """Sends webhook attempts for one worker process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        egress: EgressClient,
        *,
        keyring: Keyring,
        schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
    ) -> None:
        self.pool = pool
        self.egress = egress
        self.keyring = keyring
        self.schedule = schedule

    async def deliver(self, delivery_id: str, attempts_seen: int) -> str:
        """Make the next attempt; returns 'succeeded', 'retry', 'failed', 'disabled' or 'stale'."""
        outcome = await self._attempt(delivery_id, attempts_seen)
        WEBHOOK_ATTEMPTS.labels(outcome).inc()
        return outcome

    async def _attempt(self, delivery_id: str, attempts_seen: int) -> str:
        claim = await self.pool.fetchrow(_CLAIM_ATTEMPT, delivery_id, attempts_seen)
        if claim is None:
            return "stale"
        attempt = claim["attempts"]
        if claim["disabled_at"] is not None:
            await self._close(delivery_id, attempt, "failed", None, "endpoint is disabled", 0.0)
            return "failed"
        try:
            secret = self._signing_secret(claim)
        except SecretUnreadable as exc:
            await self._close(delivery_id, attempt, "failed", None, f"signing secret: {exc}", 0.0)
            return "failed"
        body = claim["payload"].encode()
        headers = webhook_signing.headers(secret, delivery_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: str | None = None
        try:
            response = await self.egress.request(
                "POST",
                claim["url"],
                headers=headers,
                body=body,
                timeout=DELIVERY_TIMEOUT_SECONDS,
                tenant=claim["project_id"],
            )
            status = response.status
            retry_after = response.headers.get("retry-after")
        except (EgressTimeout, EgressConnectionError) as exc:
            error = str(exc)
        except EgressRefused as exc:
            error = exc.message
        elapsed = (time.perf_counter() - started) * 1000
        if status is not None and 200 <= status < 300:
            await self._close(delivery_id, attempt, "succeeded", status, None, elapsed)
            return "succeeded"
        if status == 410:
            # The receiver says this endpoint is gone for good: stop sending to it.
            await self.pool.execute(
                "UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2"
                " WHERE endpoint_id = $1",
                claim["endpoint_id"],
                "receiver answered 410 Gone",
            )
            await self._close(delivery_id, attempt, "failed", status, "410 Gone", elapsed)
            return "disabled"
        error = error or f"HTTP {status}"
        when = next_attempt(
            attempt,
            now=datetime.now(UTC),
            status_code=status,
            retry_after=retry_after,
            schedule=self.schedule,
        )
        if when is None:
            await self._close(delivery_id, attempt, "failed", status, error, elapsed)
            return "failed"
        async with self.pool.acquire() as conn, conn.transaction():
            await self._record(conn, delivery_id, attempt, status, error, elapsed)
            await conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = $2, claimed_until = NULL"
                " WHERE delivery_id = $1",
                delivery_id,
                when,
            )
        return "retry"

    def _signing_secret(self, claim: asyncpg.Record) -> str:
        """The endpoint's secret, or for a task's notify_url the project's notify secret."""
        if claim["task_id"] is None:
            owner = webhook_owner(claim["endpoint_id"])
        else:
            owner = notify_owner(claim["project_id"])
        return self.keyring.open_text(claim["secret"], owner)

    async def _close(
        self,
        delivery_id: str,
        attempt: int,
        outcome: str,
        status: int | None,
        error: str | None,
        elapsed: float,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._record(conn, delivery_id, attempt, status, error, elapsed)
            await conn.execute(
                "UPDATE webhook_deliveries SET status = $2, claimed_until = NULL"
                " WHERE delivery_id = $1",
                delivery_id,
                outcome,
            )
            await conn.execute(_WAKE_NEXT, delivery_id)

    @staticmethod
    async def _record(
        conn: asyncpg.Connection,
        delivery_id: str,
        attempt: int,
        status: int | None,
        error: str | None,
        elapsed: float,
    ) -> None:
        await conn.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            delivery_id,
            attempt,
            status,
            error,
            elapsed,
        )
