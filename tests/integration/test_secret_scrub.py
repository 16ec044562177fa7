"""`taskstream secrets scrub` over a log written before sealing, and `rekey` after rotation."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec

from domain import events as ev
from domain.action_secrets import SecretChange
from domain.actions import HttpAction
from domain.events import SCHEMA_VERSION, event_type
from domain.schedule import Schedule
from domain.task import TaskState, fold
from domain.task_definition import TaskDefinition
from infra.event_store import EventStore, NewEvent
from infra.json_codec import decode_state, encode
from infra.secret_scrub import rekey, scrub
from infra.secret_store import (
    Keyring,
    TaskSecretStore,
    generate_key,
    is_sealed,
    notify_owner,
    parse_key,
    webhook_owner,
)
from projections.task_view import UPSERT_SQL, task_view_row

AT = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "Bearer LEGACY-secret-1"


def _definition(headers: dict[str, str], name: str = "legacy") -> TaskDefinition:
    return TaskDefinition(
        name=name,
        schedule=Schedule(kind="once", expr="2027-01-01T00:00:00+00:00"),
        action=HttpAction(url="https://example.com/hook", headers=headers),
    )


async def _legacy_task(pool: asyncpg.Pool, task_id: str, events: list[ev.TaskEvent]) -> TaskState:
    """Append events the way the code before sealing did: header values in the data."""
    await EventStore(pool).append(
        f"task-{task_id}",
        -1,
        [
            NewEvent(type=event_type(e), data=msgspec.Raw(encode(e)), schema=SCHEMA_VERSION)
            for e in events
        ],
        project_id="p1",
    )
    state = fold(events)
    assert state is not None
    await pool.execute(UPSERT_SQL, encode([task_view_row(state, encode(state))]).decode())
    return state


async def _everything_stored(pool: asyncpg.Pool) -> str:
    rows = await pool.fetch("SELECT data::text FROM events")
    views = await pool.fetch("SELECT state::text FROM task_view")
    return "\n".join([r[0] for r in rows] + [v[0] for v in views])


async def test_scrub_moves_values_to_the_store_and_redacts_events_in_place(
    pool: asyncpg.Pool,
) -> None:
    ring = Keyring(parse_key(generate_key()))
    live = _definition({"Authorization": SECRET, "X-Trace": "t-1"})
    renamed = msgspec.structs.replace(live, name="renamed")
    replaced = msgspec.structs.replace(
        live, action=HttpAction(url="https://example.com/hook", headers={"Authorization": "NEW-2"})
    )
    await _legacy_task(
        pool,
        "live",
        [
            ev.TaskCreated(at=AT, task_id="live", project_id="p1", definition=live, next_run_at=AT),
            ev.TaskUpdated(at=AT, definition=renamed, changed=("name",), next_run_at=AT),
            ev.TaskUpdated(at=AT, definition=replaced, changed=("action",), next_run_at=AT),
        ],
    )
    gone = _definition({"Authorization": "Bearer GONE-3"})
    await _legacy_task(
        pool,
        "gone",
        [
            ev.TaskCreated(at=AT, task_id="gone", project_id="p1", definition=gone, next_run_at=AT),
            ev.TaskDeleted(at=AT),
        ],
    )
    await pool.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, project_id, url, secret)"
        " VALUES ('ep1', 'p1', 'https://example.com/w', 'whsec_legacyA')"
    )
    await pool.execute("INSERT INTO notify_secrets (project_id, secret) VALUES ('p1', 'whsec_B')")
    positions = await pool.fetch("SELECT event_id, position, version FROM events ORDER BY 2")
    assert SECRET in await _everything_stored(pool)

    report = await scrub(pool, ring)

    assert (report.streams, report.events_redacted, report.values_stored) == (2, 4, 1)
    assert (report.webhook_secrets_sealed, report.notify_secrets_sealed) == (1, 1)
    stored = await _everything_stored(pool)
    for value in (SECRET, "t-1", "NEW-2", "GONE-3"):
        assert value not in stored
    assert (
        await pool.fetch("SELECT event_id, position, version FROM events ORDER BY 2") == positions
    )
    state = decode_state(
        await pool.fetchval("SELECT state::text FROM task_view WHERE task_id = 'live'")
    )
    action = state.definition.action
    assert isinstance(action, HttpAction) and action.headers == {"Authorization": "***"}
    assert action.secret_ref is not None
    store = TaskSecretStore(pool, ring)
    assert await store.values("p1", "live", action.secret_ref) == {"Authorization": "NEW-2"}
    assert await pool.fetchval("SELECT count(*) FROM task_secrets WHERE task_id = 'gone'") == 0
    # The first two events held the same values: one reference, no longer stored (replaced).
    refs = await pool.fetch(
        "SELECT data->'definition'->'action'->>'secret_ref' FROM events"
        " WHERE stream_id = 'task-live' ORDER BY version"
    )
    assert refs[0][0] == refs[1][0] != refs[2][0] == action.secret_ref
    webhook = await pool.fetchval("SELECT secret FROM webhook_endpoints WHERE endpoint_id = 'ep1'")
    assert is_sealed(webhook) and ring.open_text(webhook, webhook_owner("ep1")) == "whsec_legacyA"
    notify = await pool.fetchval("SELECT secret FROM notify_secrets WHERE project_id = 'p1'")
    assert ring.open_text(notify, notify_owner("p1")) == "whsec_B"

    again = await scrub(pool, ring)
    assert (again.streams, again.events_redacted, again.webhook_secrets_sealed) == (0, 0, 0)


async def test_rekey_moves_every_sealed_value_to_the_current_key(pool: asyncpg.Pool) -> None:
    old_key, new_key = generate_key(), generate_key()
    old = Keyring(parse_key(old_key))
    store = TaskSecretStore(pool, old)

    write = store.write("p1", "t1", SecretChange(ref="sec_x", values={"A": "value-A"}))
    await pool.execute(write.sql, encode([write.row]).decode())
    await pool.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, project_id, url, secret) VALUES"
        " ('ep1', 'p1', 'https://example.com/w', $1)",
        old.seal_text("whsec_E", webhook_owner("ep1")),
    )
    rotated = Keyring(parse_key(new_key), [parse_key(old_key)])
    report = await rekey(pool, rotated)
    assert (report.task_secrets, report.webhook_secrets) == (1, 1)
    new_only = Keyring(parse_key(new_key))
    assert await TaskSecretStore(pool, new_only).values("p1", "t1", "sec_x") == {"A": "value-A"}
    sealed = await pool.fetchval("SELECT secret FROM webhook_endpoints")
    assert new_only.open_text(sealed, webhook_owner("ep1")) == "whsec_E"
    assert (await rekey(pool, rotated)).task_secrets == 0
