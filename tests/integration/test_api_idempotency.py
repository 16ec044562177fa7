"""`Idempotency-Key` on POST /api/tasks, against the real gateway and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec
import pytest

from infra import idempotency_store
from infra.group_commit import GroupCommitter
from services.scheduler.dispatcher import RunMessage, Scheduler
from services.surfaces.api_surface import schemas as s
from services.tasks.idempotent_create import fingerprint
from services.tasks.service import TaskService
from tests.integration.api_harness import Api, running_api, session_secret_store
from tests.integration.test_api_tasks import http_task


@pytest.fixture
async def api(pool: asyncpg.Pool) -> Any:
    async with running_api(pool) as running:
        yield running


async def _create(
    api: Api, key: str, body: dict[str, Any] | None = None, *, project_key: str | None = None
) -> tuple[int, Any, Any]:
    return await api.call(
        "POST",
        "/api/tasks",
        json=body or http_task(),
        headers={"Idempotency-Key": key},
        key=project_key,
    )


async def _created_events(api: Api) -> int:
    return int(await api.pool.fetchval("SELECT count(*) FROM events WHERE type = 'task.created'"))


async def test_a_repeat_answers_with_the_first_task_and_appends_nothing(api: Api) -> None:
    status, first, r1 = await _create(api, "order-1")
    assert status == 201 and "Idempotent-Replayed" not in r1.headers
    events = await api.event_count()
    status, again, r2 = await _create(api, "order-1")
    assert status == 201 and r2.headers["Idempotent-Replayed"] == "true"
    assert again["data"]["id"] == first["data"]["id"]
    assert await api.event_count() == events
    status, other, _ = await _create(api, "order-2")
    assert status == 201 and other["data"]["id"] != first["data"]["id"]


async def test_a_different_body_under_the_same_key_is_a_422_naming_the_header(api: Api) -> None:
    await _create(api, "k")
    events = await api.event_count()
    status, body, _ = await _create(api, "k", http_task(name="another"))
    assert status == 422
    assert body["error"]["details"]["field"] == "Idempotency-Key"
    assert "different request body" in body["error"]["message"]
    assert await api.event_count() == events


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "naïve"])
async def test_a_malformed_key_is_a_422_and_creates_nothing(api: Api, key: str) -> None:
    status, body, _ = await _create(api, key)
    assert status == 422 and body["error"]["details"]["field"] == "Idempotency-Key"
    assert await _created_events(api) == 0


async def test_keys_are_per_project(api: Api) -> None:
    _, a, _ = await _create(api, "shared")
    status, b, _ = await _create(api, "shared", project_key=api.key_b)
    assert status == 201 and b["data"]["id"] != a["data"]["id"]
    status, _, _ = await api.call("GET", f"/api/tasks/{a['data']['id']}", key=api.key_b)
    assert status == 404


async def test_concurrent_repeats_make_one_task(api: Api) -> None:
    answers = await asyncio.gather(*(_create(api, "burst") for _ in range(12)))
    assert {status for status, _, _ in answers} == {201}
    assert len({body["data"]["id"] for _, body, _ in answers}) == 1
    assert await _created_events(api) == 1


async def test_after_24_hours_the_key_is_free_again(api: Api) -> None:
    _, first, _ = await _create(api, "daily")
    await api.pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    status, second, r = await _create(api, "daily", http_task(name="a new day"))
    assert status == 201 and "Idempotent-Replayed" not in r.headers
    assert second["data"]["id"] != first["data"]["id"]
    await api.pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    assert await idempotency_store.sweep(api.pool) == 1
    assert await api.pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_a_repeat_after_the_task_was_deleted_is_a_409(api: Api) -> None:
    _, first, _ = await _create(api, "gone")
    await api.call("DELETE", f"/api/tasks/{first['data']['id']}")
    status, body, _ = await _create(api, "gone")
    assert status == 409 and "was deleted" in body["error"]["message"]


async def test_a_died_request_is_completed_by_its_retry(api: Api) -> None:
    """The process died after reserving the id and before appending: the retry creates it."""
    body = http_task()
    digest = fingerprint(msgspec.convert(body, s.TaskCreate))
    reserved = "11111111-2222-4333-8444-555555555555"
    claim = await idempotency_store.claim(
        api.pool, api.project_a, "POST /api/tasks", "died", digest, reserved
    )
    assert claim.first and await _created_events(api) == 0
    status, answer, _ = await _create(api, "died", body)
    assert status == 201 and answer["data"]["id"] == claim.resource_id
    assert await _created_events(api) == 1


async def test_only_a_digest_of_the_body_is_stored(api: Api) -> None:
    secret = "Bearer sk_live_do_not_store"
    task = http_task(
        action={
            "kind": "http",
            "url": "https://example.com/h",
            "headers": {"Authorization": secret},
        }
    )
    await _create(api, "with-secret", task)
    row = await api.pool.fetchrow("SELECT * FROM idempotency_keys")
    assert secret not in str(dict(row)) and len(row["fingerprint"]) == 32


async def test_the_scheduler_sweeps_expired_reservations(api: Api) -> None:
    await _create(api, "old")
    await _create(api, "fresh")
    await api.pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
        " WHERE idem_key = 'old'"
    )
    committer = GroupCommitter(api.pool, max_batch=8, flushers=1)
    try:

        async def send(runs: list[RunMessage]) -> None:
            raise AssertionError("nothing is due")

        await Scheduler(
            api.pool, TaskService(api.pool, committer, secrets=session_secret_store(api.pool)), send
        ).tick()
    finally:
        await committer.close()
    left = await api.pool.fetch("SELECT idem_key FROM idempotency_keys")
    assert [r["idem_key"] for r in left] == ["fresh"]
