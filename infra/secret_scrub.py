"""`taskstream secrets scrub` and `rekey`: the one sanctioned rewrite of history, and rotation.

Scrub is for logs written before header values were sealed. For each task stream whose
`task.created` / `task.updated` events still carry header values, in one transaction that holds
the stream's append lock: every such event's action gets `***` values and a reference; the values
of the task's current action go to the secret store (none if the task was deleted: those are
simply gone); the task view's state is refolded from the rewritten events. Legacy plaintext
webhook and notify secrets are sealed too. Events keep their id, version and position, so
readers' checkpoints stay valid; copies already streamed to Kafka are outside the log's reach
(docs/event-store.md says what an operator does about them).
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import msgspec

from domain import events as ev
from domain.action_secrets import SecretChange, unsealed_values
from domain.actions import HttpAction
from domain.http_headers import redacted
from domain.task import fold
from infra.json_codec import decode_event, encode
from infra.secret_store import (
    Keyring,
    TaskSecretStore,
    is_sealed,
    new_ref,
    notify_owner,
    task_owner,
    webhook_owner,
)


class ScrubReport(msgspec.Struct, frozen=True, kw_only=True):
    streams: int = 0
    events_redacted: int = 0
    values_stored: int = 0
    webhook_secrets_sealed: int = 0
    notify_secrets_sealed: int = 0


class RekeyReport(msgspec.Struct, frozen=True, kw_only=True):
    task_secrets: int = 0
    webhook_secrets: int = 0
    notify_secrets: int = 0


# Streams with at least one definition event whose http action has values but no reference.
_UNSEALED_STREAMS = """
SELECT DISTINCT stream_id FROM events
 WHERE type IN ('task.created', 'task.updated')
   AND data->'definition'->'action'->>'kind' = 'http'
   AND data->'definition'->'action'->>'secret_ref' IS NULL
   AND EXISTS (SELECT 1 FROM jsonb_each_text(data->'definition'->'action'->'headers') h
                WHERE h.value <> '***')
"""


async def scrub(pool: asyncpg.Pool, keyring: Keyring) -> ScrubReport:
    """Move header values out of past events into the store; seal legacy column secrets."""
    store = TaskSecretStore(pool, keyring)
    streams = [r["stream_id"] for r in await pool.fetch(_UNSEALED_STREAMS)]
    redacted_events = stored = 0
    for stream_id in streams:
        async with pool.acquire() as conn, conn.transaction():
            events_done, values_done = await _scrub_stream(conn, store, stream_id)
        redacted_events += events_done
        stored += values_done
    webhooks, notifies = await _seal_columns(pool, keyring)
    return ScrubReport(
        streams=len(streams),
        events_redacted=redacted_events,
        values_stored=stored,
        webhook_secrets_sealed=webhooks,
        notify_secrets_sealed=notifies,
    )


async def _scrub_stream(
    conn: asyncpg.Connection, store: TaskSecretStore, stream_id: str
) -> tuple[int, int]:
    # The lock every append to this stream takes first (ts_append): no event lands meanwhile.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id)
    rows = await conn.fetch(
        "SELECT event_id, data::text AS data FROM events WHERE stream_id = $1 ORDER BY version",
        stream_id,
    )
    kept: list[ev.TaskEvent] = []
    values_by_ref: dict[str, dict[str, str]] = {}
    last: tuple[dict[str, str], str] | None = None
    rewritten = 0
    for row in rows:
        event = decode_event(row["data"])
        if isinstance(event, ev.TaskCreated | ev.TaskUpdated):
            action = event.definition.action
            values = unsealed_values(action)
            if values and isinstance(action, HttpAction):
                # An update that left the action alone repeats its values: one reference.
                ref = last[1] if last is not None and last[0] == values else new_ref()
                last = (values, ref)
                values_by_ref[ref] = values
                sealed = msgspec.structs.replace(
                    action, headers=redacted(action.headers), secret_ref=ref
                )
                definition = msgspec.structs.replace(event.definition, action=sealed)
                event = msgspec.structs.replace(event, definition=definition)
                await conn.execute(
                    "UPDATE events SET data = $2::jsonb WHERE event_id = $1",
                    row["event_id"],
                    encode(event).decode(),
                )
                rewritten += 1
        kept.append(event)
    state = fold(kept)
    if state is None:
        return rewritten, 0
    action = state.definition.action
    ref = action.secret_ref if isinstance(action, HttpAction) else None
    stored = 0
    if state.lifecycle != "deleted" and ref in values_by_ref:
        assert ref is not None
        change = SecretChange(ref=ref, values=values_by_ref[ref])
        write = store.write(state.project_id, state.task_id, change)
        await conn.execute(write.sql, encode([write.row]).decode())
        stored = 1
    await conn.execute(
        "UPDATE task_view SET state = $2::jsonb WHERE task_id = $1",
        state.task_id,
        encode(state).decode(),
    )
    return rewritten, stored


async def _seal_columns(pool: asyncpg.Pool, keyring: Keyring) -> tuple[int, int]:
    def legacy(secret: str) -> bool:
        return not is_sealed(secret)

    async with pool.acquire() as conn, conn.transaction():
        webhooks = await _reseal_column(
            conn, keyring, "webhook_endpoints", "endpoint_id", webhook_owner, legacy
        )
        notifies = await _reseal_column(
            conn, keyring, "notify_secrets", "project_id", notify_owner, legacy
        )
    return webhooks, notifies


async def rekey(pool: asyncpg.Pool, keyring: Keyring) -> RekeyReport:
    """Reseal every value not under the current key (the previous keys must still be set)."""
    async with pool.acquire() as conn, conn.transaction():
        tasks = 0
        for row in await conn.fetch(
            "SELECT ref, project_id, task_id, token FROM task_secrets FOR UPDATE"
        ):
            if not keyring.is_stale(row["token"]):
                continue
            owner = task_owner(row["project_id"], row["task_id"], row["ref"])
            await conn.execute(
                "UPDATE task_secrets SET token = $2 WHERE ref = $1",
                row["ref"],
                keyring.seal(keyring.open(row["token"], owner), owner),
            )
            tasks += 1
        stale = keyring.is_stale
        webhooks = await _reseal_column(
            conn, keyring, "webhook_endpoints", "endpoint_id", webhook_owner, stale
        )
        notifies = await _reseal_column(
            conn, keyring, "notify_secrets", "project_id", notify_owner, stale
        )
    return RekeyReport(task_secrets=tasks, webhook_secrets=webhooks, notify_secrets=notifies)


async def _reseal_column(
    conn: asyncpg.Connection,
    keyring: Keyring,
    table: str,
    key: str,
    owner_of: Callable[[str], str],
    needs: Callable[[str], bool],
) -> int:
    """Seal (again) each secret of `table` that `needs` picks; returns how many."""
    count = 0
    for row in await conn.fetch(f"SELECT {key} AS id, secret FROM {table} FOR UPDATE"):
        secret = row["secret"]
        if not secret or not needs(secret):
            continue
        owner = owner_of(row["id"])
        await conn.execute(
            f"UPDATE {table} SET secret = $2 WHERE {key} = $1",
            row["id"],
            keyring.seal_text(keyring.open_text(secret, owner), owner),
        )
        count += 1
    return count
