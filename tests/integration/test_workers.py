"""The worker registry and seed 002's worker endpoints, over real PostgreSQL and a real gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from openapi_spec_validator import validate

from domain import events as ev
from infra.egress_guard import parse_allow_list
from infra.group_commit import GroupCommitter
from services.fleet.registry import WorkerRegistry, sweep_offline
from services.scheduler.dispatcher import RunMessage, Scheduler, SchedulerConfig
from services.surfaces.kit.context import CONTEXT
from services.tasks.service import Actor, TaskService
from tests.integration.api_harness import Api, running_api, session_secret_store
from tests.integration.projector_harness import project_everything

SEED_WORKER_FIELDS = {
    "id", "hostname", "status", "tasks_completed", "tasks_failed", "current_tasks",
    "last_heartbeat", "registered_at", "version", "tags",
}  # fmt: skip


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def worker_events(pool: asyncpg.Pool, worker_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT version, type, project_id, data::text AS data, metadata::text AS metadata"
        " FROM events WHERE stream_id = $1 ORDER BY version",
        f"worker-{worker_id}",
    )


async def add_worker(
    pool: asyncpg.Pool,
    worker_id: str,
    *,
    registered_minutes_ago: float = 60,
    heartbeat_seconds_ago: float = 0,
    offline: bool = False,
    usage: tuple[float, float, float] = (0.45, 0.32, 0.15),
) -> None:
    await pool.execute(
        """INSERT INTO workers (worker_id, hostname, version, tags, registered_at, last_heartbeat,
                                offline_at, cpu_usage, memory_usage, disk_usage)
           VALUES ($1, $1 || '-host', '1.0.0', '{general}',
                   now() - make_interval(mins => $2), now() - make_interval(secs => $3),
                   CASE WHEN $4 THEN now() END, $5, $6, $7)""",
        worker_id, registered_minutes_ago, heartbeat_seconds_ago, offline, *usage,
    )  # fmt: skip


# The registry --------------------------------------------------------------------------------


async def test_start_stop_and_restart_record_events_and_the_row(pool: asyncpg.Pool) -> None:
    registry = WorkerRegistry(pool, "w-reg", "pod-1", "0.1.0", tags=("general", "gpu"))
    await registry.start()
    try:
        row = await pool.fetchrow("SELECT * FROM workers WHERE worker_id = 'w-reg'")
        assert row["hostname"] == "pod-1" and row["version"] == "0.1.0"
        assert row["tags"] == ["general", "gpu"] and row["offline_at"] is None
        assert all(0 <= row[c] <= 1 for c in ("cpu_usage", "memory_usage", "disk_usage"))
        (registered,) = await worker_events(pool, "w-reg")
        assert registered["type"] == "worker.registered" and registered["project_id"] == "_system"
        data = json.loads(registered["data"])
        assert set(data) == {"worker_id", "hostname", "version", "at"}
        assert data["worker_id"] == "w-reg" and data["hostname"] == "pod-1"
        assert json.loads(registered["metadata"])["actor"] == "worker:w-reg"
    finally:
        await registry.stop()
    row = await pool.fetchrow("SELECT * FROM workers WHERE worker_id = 'w-reg'")
    assert row["offline_at"] is not None
    events = await worker_events(pool, "w-reg")
    assert [e["type"] for e in events] == ["worker.registered", "worker.offline"]
    assert json.loads(events[1]["data"])["reason"] == "stopped"

    await registry.stop()  # a second sign-off records nothing
    assert len(await worker_events(pool, "w-reg")) == 2

    again = WorkerRegistry(pool, "w-reg", "pod-1", "0.1.1")
    await again.start()
    await again.stop()
    events = await worker_events(pool, "w-reg")
    assert [(e["version"], e["type"]) for e in events] == [
        (0, "worker.registered"),
        (1, "worker.offline"),
        (2, "worker.registered"),
        (3, "worker.offline"),
    ]
    assert json.loads(events[2]["data"])["version"] == "0.1.1"


async def test_heartbeat_updates_last_heartbeat_and_resources(pool: asyncpg.Pool) -> None:
    registry = WorkerRegistry(pool, "w-beat", "pod-1", "0.1.0", heartbeat_seconds=0.2)
    await registry.start()
    try:
        # Age the row and spoil the resources; only a heartbeat can put them right.
        old = await pool.fetchval(
            "UPDATE workers SET last_heartbeat = now() - interval '1 hour', cpu_usage = -1,"
            " memory_usage = -1, disk_usage = -1 WHERE worker_id = 'w-beat'"
            " RETURNING last_heartbeat"
        )

        async def beaten() -> bool:
            row = await pool.fetchrow("SELECT * FROM workers WHERE worker_id = 'w-beat'")
            return bool(row["last_heartbeat"] > old and row["memory_usage"] >= 0)

        await eventually(beaten)
        row = await pool.fetchrow("SELECT * FROM workers WHERE worker_id = 'w-beat'")
        assert all(0 <= row[c] <= 1 for c in ("cpu_usage", "memory_usage", "disk_usage"))
        assert row["last_heartbeat"] > datetime.now(UTC) - timedelta(seconds=30)
        # Heartbeats are not events.
        assert [e["type"] for e in await worker_events(pool, "w-beat")] == ["worker.registered"]
    finally:
        await registry.stop()


async def test_concurrent_sweeps_mark_each_stale_worker_offline_once(pool: asyncpg.Pool) -> None:
    stale = [f"w-stale-{i}" for i in range(5)]
    for worker_id in stale:
        await add_worker(pool, worker_id, heartbeat_seconds_ago=120)
    await add_worker(pool, "w-fresh", heartbeat_seconds_ago=1)
    await add_worker(pool, "w-gone", heartbeat_seconds_ago=600, offline=True)

    results = await asyncio.gather(*(sweep_offline(pool, after_seconds=30) for _ in range(6)))
    swept = [worker_id for result in results for worker_id in result]
    assert sorted(swept) == stale, results  # each stale worker claimed by exactly one sweep
    counts = await pool.fetch(
        "SELECT stream_id, count(*) AS n FROM events WHERE type = 'worker.offline'"
        " GROUP BY stream_id ORDER BY stream_id"
    )
    assert [(r["stream_id"], r["n"]) for r in counts] == [(f"worker-{w}", 1) for w in stale]
    reasons = await pool.fetch("SELECT DISTINCT data->>'reason' FROM events")
    assert [r[0] for r in reasons] == ["heartbeat_timeout"]
    offline = await pool.fetch(
        "SELECT worker_id FROM workers WHERE offline_at IS NOT NULL ORDER BY worker_id"
    )
    assert [r[0] for r in offline] == sorted([*stale, "w-gone"])
    assert await sweep_offline(pool, after_seconds=30) == []


async def test_stop_racing_a_sweep_records_one_offline(pool: asyncpg.Pool) -> None:
    registry = WorkerRegistry(pool, "w-race", "pod-1", "0.1.0", heartbeat_seconds=3600)
    await registry.start()
    await pool.execute(
        "UPDATE workers SET last_heartbeat = now() - interval '1 hour' WHERE worker_id = 'w-race'"
    )
    await asyncio.gather(registry.stop(), sweep_offline(pool, after_seconds=30))
    types = [e["type"] for e in await worker_events(pool, "w-race")]
    assert types == ["worker.registered", "worker.offline"]


async def test_heartbeat_of_a_worker_swept_offline_registers_it_again(pool: asyncpg.Pool) -> None:
    registry = WorkerRegistry(pool, "w-pause", "pod-1", "0.1.0", heartbeat_seconds=3600)
    await registry.start()
    try:
        await pool.execute(
            "UPDATE workers SET last_heartbeat = now() - interval '1 hour'"
            " WHERE worker_id = 'w-pause'"
        )
        assert await sweep_offline(pool, after_seconds=30) == ["w-pause"]
        await registry.heartbeat()  # it was only paused
        assert await pool.fetchval(
            "SELECT offline_at IS NULL FROM workers WHERE worker_id = 'w-pause'"
        )
        types = [e["type"] for e in await worker_events(pool, "w-pause")]
        assert types == ["worker.registered", "worker.offline", "worker.registered"]
        await registry.heartbeat()  # an ordinary heartbeat records nothing
        assert len(await worker_events(pool, "w-pause")) == 3
    finally:
        await registry.stop()


async def test_scheduler_tick_sweeps_silent_workers(pool: asyncpg.Pool) -> None:
    await add_worker(pool, "w-silent", heartbeat_seconds_ago=5)
    await add_worker(pool, "w-alive", heartbeat_seconds_ago=0)
    committer = GroupCommitter(pool, max_batch=8, flushers=1)
    try:

        async def send(runs: list[RunMessage]) -> None:
            raise AssertionError("nothing is due")

        scheduler = Scheduler(
            pool,
            TaskService(
                pool,
                committer,
                secrets=session_secret_store(pool),
                egress_allow=parse_allow_list("127.0.0.0/8"),
            ),
            send,
            config=SchedulerConfig(worker_offline_seconds=2.0),
            scheduler_id="s-1",
        )
        await scheduler.tick()
    finally:
        await committer.close()
    status = await pool.fetch("SELECT worker_id, offline_at IS NOT NULL AS off FROM workers")
    assert {r["worker_id"]: r["off"] for r in status} == {"w-silent": True, "w-alive": False}
    (event,) = await worker_events(pool, "w-silent")
    assert json.loads(event["metadata"])["actor"] == "scheduler:s-1"


# The API -------------------------------------------------------------------------------------


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as a:
        yield a


async def run_task(
    api: Api,
    key: str,
    project: str,
    runs: list[tuple[str, str]],
    name: str = "job",
    priority: int = 5,
) -> str:
    """A task of `project`, then each (worker, outcome) run recorded as that worker would."""
    status, body, _ = await api.call(
        "POST",
        "/api/tasks",
        key=key,
        json={
            "name": name,
            "priority": priority,
            "action": {"kind": "http", "url": "https://example.com/hook"},
        },
    )
    assert status == 201, body
    task_id = str(body["data"]["id"])
    service = api.app[CONTEXT].tasks
    for attempt, (worker, outcome) in enumerate(runs, start=1):
        state = await service.get(project, task_id)
        now = datetime.now(UTC)
        run = f"r{attempt}"
        events: list[Any] = [
            ev.TaskDispatched(at=now, run_id=run, attempt=attempt, due_at=now, lease_until=now),
            ev.TaskStarted(at=now, run_id=run, attempt=attempt, worker_id=worker, lease_until=now),
        ]
        if outcome == "completed":
            events.append(ev.TaskCompleted(at=now, run_id=run, attempt=attempt))
        elif outcome == "failed":
            events.append(ev.TaskFailed(at=now, run_id=run, attempt=attempt, error="boom"))
        elif outcome == "retrying":
            events += [
                ev.TaskFailed(at=now, run_id=run, attempt=attempt, error="flaky", final=False),
                ev.TaskRetrying(at=now, run_id=run, attempt=attempt + 1, next_attempt_at=now),
            ]
        await service.record(state, events, actor=Actor("worker", worker))
    return task_id


@pytest.fixture
async def fleet(api: Api) -> dict[str, str]:
    """Five workers and tasks of both projects on them; returns task names → ids."""
    for minutes, worker_id in enumerate(["w-1", "w-2", "w-3", "w-idle", "w-off"]):
        await add_worker(api.pool, worker_id, registered_minutes_ago=minutes)
    await api.pool.execute("UPDATE workers SET offline_at = now() WHERE worker_id = 'w-off'")
    a, b = (api.key_a, api.project_a), (api.key_b, api.project_b)
    tasks = {
        "a_running": await run_task(api, *a, [("w-1", "running")], priority=8),
        "a_done": await run_task(api, *a, [("w-1", "completed")]),
        "a_failed": await run_task(api, *a, [("w-1", "failed")]),
        "a_retrying": await run_task(api, *a, [("w-1", "retrying")]),
        # Ran on w-1 first, then again on w-2, where it is now: it is w-2's.
        "a_moved": await run_task(api, *a, [("w-1", "retrying"), ("w-2", "running")]),
        "b_running": await run_task(api, *b, [("w-1", "running")]),
        "b_done": await run_task(api, *b, [("w-1", "completed")]),
        "b_only": await run_task(api, *b, [("w-3", "running")]),
    }
    await project_everything(api.pool)  # the finished-run counts are the worker view's
    return tasks


def b_ids(fleet: dict[str, str]) -> list[str]:
    return [task_id for name, task_id in fleet.items() if name.startswith("b_")]


async def test_list_workers_with_status_filters_and_pagination(
    api: Api, fleet: dict[str, str]
) -> None:
    status, body, _ = await api.call("GET", "/api/workers")
    assert status == 200, body
    assert body["meta"] == {"page": 1, "limit": 20, "total": 5, "pages": 1}
    by_id = {w["id"]: w for w in body["data"]}
    assert [w["id"] for w in body["data"]] == ["w-1", "w-2", "w-3", "w-idle", "w-off"]
    assert all(set(w) == SEED_WORKER_FIELDS for w in body["data"])
    assert {k: w["status"] for k, w in by_id.items()} == {
        "w-1": "active",
        "w-2": "active",
        "w-3": "active",  # busy with project B's work: shown busy, but with none of its tasks
        "w-idle": "idle",
        "w-off": "offline",
    }
    w1 = by_id["w-1"]
    assert (w1["current_tasks"], w1["tasks_completed"], w1["tasks_failed"]) == (1, 1, 1)
    assert (w1["hostname"], w1["version"], w1["tags"]) == ("w-1-host", "1.0.0", ["general"])
    assert by_id["w-3"]["current_tasks"] == 0
    assert not any(task_id in json.dumps(body) for task_id in b_ids(fleet))

    _, as_b, _ = await api.call("GET", "/api/workers", key=api.key_b)
    b_w1 = next(w for w in as_b["data"] if w["id"] == "w-1")
    assert (b_w1["current_tasks"], b_w1["tasks_completed"], b_w1["tasks_failed"]) == (1, 1, 0)
    assert next(w for w in as_b["data"] if w["id"] == "w-3")["current_tasks"] == 1

    for wanted, ids in (
        ("active", ["w-1", "w-2", "w-3"]),
        ("idle", ["w-idle"]),
        ("offline", ["w-off"]),
    ):
        _, page, _ = await api.call("GET", f"/api/workers?status={wanted}")
        assert [w["id"] for w in page["data"]] == ids
        assert page["meta"]["total"] == len(ids)

    _, page2, _ = await api.call("GET", "/api/workers?limit=2&page=2")
    assert page2["meta"] == {"page": 2, "limit": 2, "total": 5, "pages": 3}
    assert [w["id"] for w in page2["data"]] == ["w-3", "w-idle"]
    _, beyond, _ = await api.call("GET", "/api/workers?limit=2&page=9")
    assert beyond["data"] == [] and beyond["meta"]["total"] == 5


async def test_get_worker_has_resources_and_only_the_callers_task_ids(
    api: Api, fleet: dict[str, str]
) -> None:
    status, body, _ = await api.call("GET", "/api/workers/w-1")
    assert status == 200, body
    data = body["data"]
    assert set(data) == SEED_WORKER_FIELDS | {"current_task_ids", "resources"}
    assert data["current_task_ids"] == [fleet["a_running"]] and data["current_tasks"] == 1
    assert data["resources"] == {"cpu_usage": 0.45, "memory_usage": 0.32, "disk_usage": 0.15}
    assert (data["tasks_completed"], data["tasks_failed"]) == (1, 1)
    assert not any(task_id in json.dumps(body) for task_id in b_ids(fleet))

    _, as_b, _ = await api.call("GET", "/api/workers/w-1", key=api.key_b)
    assert as_b["data"]["current_task_ids"] == [fleet["b_running"]]
    _, w3, _ = await api.call("GET", "/api/workers/w-3")
    assert w3["data"]["status"] == "active" and w3["data"]["current_task_ids"] == []

    status, body, _ = await api.call("GET", "/api/workers/no-such-worker")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_worker_tasks_lists_only_the_callers_tasks(api: Api, fleet: dict[str, str]) -> None:
    status, body, _ = await api.call("GET", "/api/workers/w-1/tasks")
    assert status == 200, body
    assert {t["id"] for t in body["data"]} == {
        fleet["a_running"],
        fleet["a_done"],
        fleet["a_failed"],
        fleet["a_retrying"],
    }
    assert body["meta"] == {"page": 1, "limit": 20, "total": 4, "pages": 1}
    assert all(set(t) == {"id", "name", "status", "started_at", "priority"} for t in body["data"])
    assert not any(task_id in json.dumps(body) for task_id in b_ids(fleet))

    _, running, _ = await api.call("GET", "/api/workers/w-1/tasks?status=running")
    (only,) = running["data"]
    assert only["id"] == fleet["a_running"] and only["status"] == "running"
    assert only["priority"] == 8 and only["name"] == "job" and only["started_at"]
    _, done, _ = await api.call("GET", "/api/workers/w-1/tasks?status=completed")
    assert [t["id"] for t in done["data"]] == [fleet["a_done"]]
    _, paged, _ = await api.call("GET", "/api/workers/w-1/tasks?limit=3&page=2")
    assert len(paged["data"]) == 1
    assert paged["meta"] == {"page": 2, "limit": 3, "total": 4, "pages": 2}

    _, w2, _ = await api.call("GET", "/api/workers/w-2/tasks")
    assert [t["id"] for t in w2["data"]] == [fleet["a_moved"]]
    _, as_b, _ = await api.call("GET", "/api/workers/w-1/tasks", key=api.key_b)
    assert {t["id"] for t in as_b["data"]} == {fleet["b_running"], fleet["b_done"]}
    _, w3, _ = await api.call("GET", "/api/workers/w-3/tasks")
    assert w3["data"] == [] and w3["meta"]["total"] == 0

    status, body, _ = await api.call("GET", "/api/workers/no-such-worker/tasks")
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/api/workers?limit=101", "limit"),
        ("/api/workers?limit=0", "limit"),
        ("/api/workers?page=0", "page"),
        ("/api/workers?status=sleepy", "status"),
        ("/api/workers?limit=ten", "limit"),
        ("/api/workers?colour=red", "colour"),
        ("/api/workers/w-1/tasks?limit=101", "limit"),
        ("/api/workers/w-1/tasks?status=sleepy", "status"),
    ],
)
async def test_bad_queries_are_422_naming_the_field(api: Api, query: str, field: str) -> None:
    await add_worker(api.pool, "w-1")
    status, body, _ = await api.call("GET", query)
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"]["field"] == field


async def test_workers_need_credentials(api: Api) -> None:
    async with api.session.get(api.base + "/api/workers") as r:
        assert r.status == 401


async def test_a_registered_worker_is_served_idle_then_offline(api: Api) -> None:
    registry = WorkerRegistry(api.pool, "w-live", "pod-7", "0.1.0", tags=("general",))
    await registry.start()
    try:
        _, body, _ = await api.call("GET", "/api/workers/w-live")
        data = body["data"]
        assert (data["status"], data["hostname"], data["tags"]) == ("idle", "pod-7", ["general"])
        assert all(0 <= v <= 1 for v in data["resources"].values())
    finally:
        await registry.stop()
    _, body, _ = await api.call("GET", "/api/workers?status=offline")
    assert [w["id"] for w in body["data"]] == ["w-live"]


async def test_openapi_describes_the_worker_routes(api: Api) -> None:
    async with api.session.get(api.base + "/api/openapi.json") as r:
        doc = await r.json()
    validate(doc)
    for path in ("/api/workers", "/api/workers/{id}", "/api/workers/{id}/tasks"):
        assert "200" in doc["paths"][path]["get"]["responses"]
    params = {p["name"] for p in doc["paths"]["/api/workers"]["get"]["parameters"]}
    assert params == {"status", "page", "limit"}
