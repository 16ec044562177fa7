"""Log → webhook deliveries → broker.

`fan_out` follows the event log from its own checkpoint (infra/checkpointed_feed.py) and
writes one delivery row per (subscribed endpoint, event), in the same transaction as the
checkpoint: each event becomes its deliveries exactly once, however often this crashes.
`send_due` hands deliveries whose time has come to the workers (dramatiq `deliver_webhook`)
under a short claim; a lost message only delays a delivery until the claim lapses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from domain.task import TaskState, evolve
from domain.webhook_policy import (
    JOB_EVENTS,
    SUPPORTED_EVENTS,
    TASK_EVENTS,
    WORKER_EVENTS,
    job_payload,
    task_payload,
    wants,
)
from infra.checkpointed_feed import consume
from infra.event_store import RecordedEvent
from infra.json_codec import decode_event, encode
from infra.secret_store import Keyring
from services.webhooks.notify_secrets import ensure_notify_secrets

log = logging.getLogger(__name__)

CHECKPOINT = "webhooks"
TASK_ENDPOINT_PREFIX = "wht_"
SendDelivery = Callable[[str, int], Awaitable[None]]

# Per endpoint, one stream's deliveries go in log order: none is sent while an earlier one of
# its stream to that endpoint is still pending (in flight or waiting for a retry).
IN_LOG_ORDER = """NOT EXISTS (
    SELECT 1 FROM webhook_deliveries earlier
     WHERE earlier.endpoint_id = w.endpoint_id AND earlier.stream_id = w.stream_id
       AND earlier.status = 'pending' AND earlier.stream_version < w.stream_version)"""

_CLAIM_DUE = f"""
WITH due AS (
    SELECT delivery_id FROM webhook_deliveries w
     WHERE status = 'pending' AND next_attempt_at <= now()
       AND (claimed_until IS NULL OR claimed_until < now())
       AND {IN_LOG_ORDER}
     ORDER BY next_attempt_at
     LIMIT $1
     FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => $2)
  FROM due WHERE d.delivery_id = due.delivery_id
RETURNING d.delivery_id, d.attempts
"""

_NEXT_DUE = f"""
SELECT GREATEST(0, EXTRACT(EPOCH FROM min(next_attempt_at) - now()))::float8
  FROM webhook_deliveries w
 WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until < now())
   AND {IN_LOG_ORDER}
"""


class WorkerWebhook(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    timestamp: Any
    worker: Any


class WebhookPump:
    """Turns log events into deliveries and hands due deliveries to the workers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        send: SendDelivery,
        *,
        keyring: Keyring,
        batch: int = 500,
        claim_seconds: float = 60,
    ) -> None:
        self.pool = pool
        self.keyring = keyring
        self.send = send
        self.batch = batch
        self.claim_seconds = claim_seconds

    async def tick(self) -> float | None:
        """Fan out new events, send what is due; seconds until the next delivery is due."""
        while await self.fan_out() >= self.batch:
            pass
        await self.send_due()
        value = await self.pool.fetchval(_NEXT_DUE)
        return None if value is None else float(value)

    async def fan_out(self) -> int:
        """Turn the next batch of log events into deliveries; returns how many events it read."""
        return await consume(self.pool, CHECKPOINT, self.batch, self._write_deliveries)

    async def _write_deliveries(
        self, conn: asyncpg.Connection, events: list[RecordedEvent]
    ) -> None:
        deliveries = await self._deliveries(conn, events)
        if deliveries:
            await conn.execute(
                """INSERT INTO webhook_deliveries (delivery_id, endpoint_id, project_id,
                          event_id, event_type, payload, stream_id, stream_version)
                   SELECT d.delivery_id, d.endpoint_id, d.project_id, d.event_id,
                          d.event_type, d.payload, d.stream_id, d.stream_version
                     FROM jsonb_to_recordset($1::jsonb) AS d(
                          delivery_id text, endpoint_id text, project_id text,
                          event_id uuid, event_type text, payload jsonb,
                          stream_id text, stream_version bigint)
                   ON CONFLICT (endpoint_id, event_id) DO NOTHING""",
                encode(deliveries).decode(),
            )

    async def _deliveries(
        self, conn: asyncpg.Connection, events: list[RecordedEvent]
    ) -> list[dict[str, Any]]:
        wanted = [e for e in events if e.type in SUPPORTED_EVENTS]
        if not wanted:
            return []
        projects = sorted({e.project_id for e in wanted})
        endpoints = await conn.fetch(
            "SELECT endpoint_id, project_id, events FROM webhook_endpoints"
            " WHERE disabled_at IS NULL AND task_id IS NULL"
            " AND (project_id = ANY($1::text[]) OR events && $2::text[])",
            projects,
            sorted(WORKER_EVENTS),
        )
        # A delivery belongs to its endpoint's project (worker events reach every project's).
        owners = {ep["endpoint_id"]: ep["project_id"] for ep in endpoints}
        targets = {
            event.event_id: [
                ep["endpoint_id"]
                for ep in endpoints
                if wants(tuple(ep["events"]), event.type)
                and (event.type in WORKER_EVENTS or ep["project_id"] == event.project_id)
            ]
            for event in wanted
        }
        # Fold a task only when something will be sent about it: an endpoint wants the event,
        # or the task has a notify_url now (one that was cleared meanwhile is not followed).
        notifying = await self._streams_with_notify_url(
            conn, sorted({e.stream_id for e in wanted if e.type in TASK_EVENTS})
        )
        states = await self._tasks_at(
            conn,
            [
                e
                for e in wanted
                if e.type in TASK_EVENTS and (targets[e.event_id] or e.stream_id in notifying)
            ],
        )
        jobs_of = await self._jobs_of(
            conn, [e.stream_id for e in wanted if e.type in JOB_EVENTS and targets[e.event_id]]
        )
        out: list[dict[str, Any]] = []
        notify: dict[str, dict[str, str]] = {}
        for event in wanted:
            sent_to = targets[event.event_id]
            state = states.get((event.stream_id, event.version))
            if state is not None and state.definition.notify_url:
                # The task's own endpoint follows the notify_url the task had at this event.
                endpoint_id = f"{TASK_ENDPOINT_PREFIX}{state.task_id}"
                notify[endpoint_id] = {
                    "endpoint_id": endpoint_id,
                    "task_id": state.task_id,
                    "project_id": event.project_id,
                    "url": state.definition.notify_url,
                }
                sent_to = [*sent_to, endpoint_id]
            if not sent_to:
                continue
            if event.type in JOB_EVENTS:
                job_id = jobs_of.get(event.stream_id, "")
                payload = encode(job_payload(event.type, event.recorded_at, event.stream_id,
                                             job_id, event.data.encode()))  # fmt: skip
            else:
                payload = self._payload(event, state)
            out.extend(
                {
                    "delivery_id": f"msg_{uuid.uuid4().hex}",
                    "endpoint_id": endpoint_id,
                    "project_id": owners.get(endpoint_id, event.project_id),
                    "event_id": str(event.event_id),
                    "event_type": event.type,
                    "payload": msgspec.Raw(payload),
                    # Worker events are not ordered against anything.
                    "stream_id": event.stream_id if state is not None else None,
                    "stream_version": event.version if state is not None else None,
                }
                for endpoint_id in sent_to
            )
        if notify:
            disabled = await self._upsert_task_endpoints(conn, list(notify.values()))
            out = [d for d in out if d["endpoint_id"] not in disabled]
        return out

    async def _upsert_task_endpoints(
        self, conn: asyncpg.Connection, rows: list[dict[str, str]]
    ) -> set[str]:
        """Create or re-point per-task endpoints; returns the ids that are disabled."""
        await ensure_notify_secrets(conn, self.keyring, sorted({r["project_id"] for r in rows}))
        # A changed URL re-enables an endpoint that a 410 had disabled: it is a new receiver.
        result = await conn.fetch(
            """INSERT INTO webhook_endpoints (endpoint_id, project_id, url, secret, task_id)
               SELECT r.endpoint_id, r.project_id, r.url, '', r.task_id
                 FROM jsonb_to_recordset($1::jsonb)
                      AS r(endpoint_id text, project_id text, url text, task_id text)
               ON CONFLICT (endpoint_id) DO UPDATE SET
                   url = EXCLUDED.url,
                   disabled_at = CASE WHEN webhook_endpoints.url = EXCLUDED.url
                                      THEN webhook_endpoints.disabled_at END,
                   disabled_reason = CASE WHEN webhook_endpoints.url = EXCLUDED.url
                                          THEN webhook_endpoints.disabled_reason END
               RETURNING endpoint_id, disabled_at""",
            encode(rows).decode(),
        )
        return {r["endpoint_id"] for r in result if r["disabled_at"] is not None}

    @staticmethod
    async def _streams_with_notify_url(conn: asyncpg.Connection, streams: list[str]) -> set[str]:
        if not streams:
            return set()
        rows = await conn.fetch(
            # A deleted task notifies no more (its queued deliveries were dropped at the delete).
            "SELECT task_id FROM task_view WHERE task_id = ANY($1::text[])"
            " AND lifecycle <> 'deleted' AND state->'definition'->>'notify_url' IS NOT NULL",
            [stream.removeprefix("task-") for stream in streams],
        )
        return {f"task-{r[0]}" for r in rows}

    @staticmethod
    async def _tasks_at(
        conn: asyncpg.Connection, events: list[RecordedEvent]
    ) -> dict[tuple[str, int], TaskState]:
        """Each task as `events` left it, not as it is now: one read and one fold per stream."""
        upto: dict[str, int] = {}
        for e in events:
            upto[e.stream_id] = max(upto.get(e.stream_id, 0), e.version)
        if not upto:
            return {}
        rows = await conn.fetch(
            """SELECT e.stream_id, e.version, e.data::text AS data
                 FROM events e JOIN unnest($1::text[], $2::bigint[]) AS w(stream_id, upto)
                   ON e.stream_id = w.stream_id AND e.version <= w.upto
                ORDER BY e.stream_id, e.version""",
            list(upto),
            list(upto.values()),
        )
        needed = {(e.stream_id, e.version) for e in events}
        states: dict[tuple[str, int], TaskState] = {}
        state: TaskState | None = None
        stream = None
        for row in rows:
            if row["stream_id"] != stream:
                stream, state = row["stream_id"], None
            state = evolve(state, decode_event(row["data"]))
            if (stream, row["version"]) in needed:
                states[(stream, row["version"])] = state
        return states

    @staticmethod
    async def _jobs_of(conn: asyncpg.Connection, streams: list[str]) -> dict[str, str]:
        """execution stream id → its job id."""
        if not streams:
            return {}
        rows = await conn.fetch(
            "SELECT execution_id, job_id FROM execution_view WHERE execution_id = ANY($1::text[])",
            [s.removeprefix("execution-") for s in set(streams)],
        )
        return {f"execution-{r['execution_id']}": r["job_id"] for r in rows}

    @staticmethod
    def _payload(event: RecordedEvent, state: TaskState | None) -> bytes:
        if state is None:
            return encode(
                WorkerWebhook(
                    event=event.type,
                    timestamp=event.recorded_at,
                    worker=msgspec.Raw(event.data.encode()),
                )
            )
        return encode(
            task_payload(event.type, event.recorded_at, state, event_id=str(event.event_id))
        )

    async def send_due(self) -> int:
        """Hand due deliveries to the workers; returns how many."""
        rows = await self.pool.fetch(_CLAIM_DUE, self.batch, self.claim_seconds)
        for row in rows:
            try:
                await self.send(row["delivery_id"], row["attempts"])
            except Exception as exc:  # the claim lapses and the delivery is sent again
                log.warning("could not send delivery %s: %s", row["delivery_id"], exc)
        return len(rows)
