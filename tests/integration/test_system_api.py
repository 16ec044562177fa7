"""Seed 002's system endpoints over real PostgreSQL, Redis, RabbitMQ and a real gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import asyncpg
import pytest
from openapi_spec_validator import validate

from scripts.bench.seed_log import seed_log
from tests.integration.api_harness import Api, running_api
from tests.integration.projector_harness import project_everything
from tests.integration.test_workers import add_worker, eventually, run_task

STATUS_FIELDS = {"status", "version", "uptime", "components", "task_stats", "queue_depths"}
COMPONENTS = {
    "api_server", "scheduler", "workers", "database", "broker", "kafka_relay", "projector",
}  # fmt: skip


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as a:
        yield a


async def create(api: Api, key: str, *, priority: int, scheduled_at: str | None = None) -> str:
    body: dict[str, Any] = {
        "name": "job",
        "priority": priority,
        "action": {"kind": "http", "url": "https://example.com/hook"},
    }
    if scheduled_at:
        body["scheduled_at"] = scheduled_at
    status, answer, _ = await api.call("POST", "/api/tasks", key=key, json=body)
    assert status == 201, answer
    return str(answer["data"]["id"])


async def status_of(api: Api, key: str | None = None) -> dict[str, Any]:
    status, body, _ = await api.call("GET", "/api/system/status", key=key)
    assert status == 200, body
    assert set(body) == {"data"}
    return dict(body["data"])


async def test_status_has_the_seed_shape_and_only_the_callers_task_figures(api: Api) -> None:
    for worker_id in ("w-1", "w-idle", "w-off"):
        await add_worker(api.pool, worker_id)
    await api.pool.execute("UPDATE workers SET offline_at = now() WHERE worker_id = 'w-off'")
    a, b = (api.key_a, api.project_a), (api.key_b, api.project_b)
    await run_task(api, *a, [("w-1", "running")])
    await run_task(api, *a, [("w-1", "completed")])
    await run_task(api, *a, [("w-1", "failed")])
    await run_task(api, *a, [("w-1", "retrying")], priority=8)  # due again now: high
    await create(api, api.key_a, priority=9, scheduled_at="2099-01-01T00:00:00Z")  # not due
    await create(api, api.key_a, priority=5)  # due now: normal
    await create(api, api.key_a, priority=2)  # due now: low
    await run_task(api, *b, [("w-1", "running")])
    await run_task(api, *b, [("w-1", "completed")])
    await run_task(api, *b, [("w-1", "completed")])
    await create(api, api.key_b, priority=10)
    await project_everything(api.pool)

    data = await status_of(api)
    assert set(data) == STATUS_FIELDS
    assert data["task_stats"] == {
        "pending": 4,
        "running": 1,
        "completed_today": 1,
        "failed_today": 1,  # the retried attempt's failure was not final
    }
    assert data["queue_depths"] == {"high_priority": 1, "normal_priority": 1, "low_priority": 1}
    c = data["components"]
    assert set(c) == COMPONENTS
    assert c["workers"] == {
        "status": "healthy",
        "active_count": 1,
        "idle_count": 1,
        "offline_count": 1,
    }
    assert c["database"]["status"] == "healthy" and c["database"]["connection_count"] >= 1
    assert c["broker"] == {"status": "unknown", "kind": "embedded"}
    assert c["kafka_relay"] == {"status": "disabled", "lag_events": None, "lag_seconds": None}
    assert c["projector"] == {"status": "healthy", "lag_events": 0, "lag_seconds": 0.0}
    assert c["scheduler"]["status"] == "unknown" and c["scheduler"]["leader_id"] is None
    assert c["api_server"]["status"] == "healthy"
    assert data["status"] == "healthy"
    assert data["version"] == metadata.version("taskstream") and data["uptime"] >= 0

    as_b = await status_of(api, api.key_b)
    assert as_b["task_stats"] == {
        "pending": 1,
        "running": 1,
        "completed_today": 2,
        "failed_today": 0,
    }
    assert as_b["queue_depths"] == {"high_priority": 1, "normal_priority": 0, "low_priority": 0}
    assert as_b["components"]["workers"] == c["workers"]  # shared infrastructure


async def test_status_reports_how_far_each_log_reader_is_behind(api: Api) -> None:
    await add_worker(api.pool, "w-1")
    await create(api, api.key_a, priority=5)
    await project_everything(api.pool)
    await api.pool.execute("INSERT INTO checkpoints (name) VALUES ('kafka-relay'), ('webhooks')")
    await create(api, api.key_a, priority=5)  # nobody has read this one yet
    readers = ("kafka_relay", "projector", "scheduler")
    seen: dict[str, Any] = {}

    async def lagging(events: dict[str, int], status: str) -> bool:
        # Lag counts what the feed can see: a transaction open elsewhere on the shared server
        # holds new events back for a moment (docs/event-store.md).
        seen.update(await status_of(api))
        got = {r: seen["components"][r]["lag_events"] for r in readers}
        return got == events and all(seen["components"][r]["status"] == status for r in readers)

    lag = {"kafka_relay": 2, "projector": 1, "scheduler": 2}
    await eventually(lambda: lagging(lag, "healthy"))
    assert 0 <= seen["components"]["kafka_relay"]["lag_seconds"] < 60
    assert seen["status"] == "healthy"

    # The same unread events, recorded long ago: every reader is behind.
    await api.pool.execute("UPDATE events SET recorded_at = recorded_at - interval '10 minutes'")
    await eventually(lambda: lagging(lag, "degraded"))
    for reader in readers:
        assert seen["components"][reader]["lag_seconds"] >= 600
    assert seen["status"] == "degraded"


async def test_status_is_degraded_with_no_worker_online(api: Api) -> None:
    await add_worker(api.pool, "w-gone", offline=True)
    data = await status_of(api)
    assert data["components"]["workers"] == {
        "status": "degraded",
        "active_count": 0,
        "idle_count": 0,
        "offline_count": 1,
    }
    assert data["status"] == "degraded"


@pytest.mark.parametrize(
    ("url", "kind", "health"),
    [
        ("redis://127.0.0.1:6379/0", "redis", "healthy"),
        ("amqp://guest:guest@127.0.0.1:5672/", "rabbitmq", "healthy"),
        ("redis://127.0.0.1:1/0", "redis", "down"),
        ("amqp://127.0.0.1:1/", "rabbitmq", "down"),
    ],
)
async def test_status_probes_the_configured_broker(
    pool: asyncpg.Pool, url: str, kind: str, health: str
) -> None:
    async with running_api(pool, broker_url=url) as api:
        data = await status_of(api)
    assert data["components"]["broker"] == {"status": health, "kind": kind}
    assert "guest" not in json.dumps(data)
    if health == "down":
        assert data["status"] == "degraded"


async def test_status_and_metrics_need_credentials(api: Api) -> None:
    for path in ("/api/system/status", "/api/system/metrics"):
        async with api.session.get(api.base + path) as r:
            assert r.status == 401, path


# Metrics -------------------------------------------------------------------------------------

_HOURLY = """
SELECT date_trunc('hour', recorded_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS at,
       count(*) FILTER (WHERE type = 'task.completed') AS completed,
       count(*) FILTER (WHERE type = 'task.failed'
                          AND COALESCE((data->>'final')::boolean, true)) AS failed,
       COALESCE(sum((data->>'duration_ms')::float8) FILTER (WHERE {ran}), 0) AS ms,
       count(*) FILTER (WHERE {ran}) AS runs
  FROM events WHERE project_id = $1 GROUP BY 1
""".format(
    ran="type = 'task.completed' OR (type = 'task.failed' AND (data->>'duration_ms')::float8 > 0)"
)


async def hourly_oracle(pool: asyncpg.Pool, project_id: str) -> dict[datetime, dict[str, float]]:
    """The hourly series computed straight from the log, apart from the projector."""
    out = {}
    for r in await pool.fetch(_HOURLY, project_id):
        done = r["completed"] + r["failed"]
        out[r["at"]] = {
            "task_completion_rate": r["completed"],
            "error_rate": r["failed"] / done if done else 0.0,
            "average_execution_time": r["ms"] / r["runs"] / 1000 if r["runs"] else 0.0,
        }
    return out


@pytest.fixture
async def history(api: Api) -> Api:
    """About three hours of task runs of both projects, projected."""
    async with api.pool.acquire() as conn:
        await seed_log(conn, events=6000, projects=[api.project_a, api.project_b], per_second=0.13)
    await project_everything(api.pool)
    return api


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def test_hourly_metrics_match_the_log_for_each_project(history: Api) -> None:
    api = history
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for key, project in ((api.key_a, api.project_a), (api.key_b, api.project_b)):
        status, body, _ = await api.call("GET", "/api/system/metrics?period=hour", key=key)
        assert status == 200, body
        data, meta = body["data"], body["meta"]
        assert set(data) == {"task_completion_rate", "error_rate", "average_execution_time"}
        assert meta["period"] == "hour"
        assert parse(meta["end_time"]) == this_hour
        assert parse(meta["start_time"]) == this_hour - timedelta(hours=23)
        expected = await hourly_oracle(api.pool, project)
        assert sum(p["task_completion_rate"] for p in expected.values()) > 0
        for name, points in data.items():
            assert len(points) == 24
            for point in points:
                want = expected.get(parse(point["timestamp"]), {}).get(name, 0)
                assert point["value"] == pytest.approx(want, abs=1e-3), (name, point)
    _, as_a, _ = await api.call("GET", "/api/system/metrics")
    _, as_b, _ = await api.call("GET", "/api/system/metrics", key=api.key_b)
    assert as_a["data"] != as_b["data"]  # each project sees its own runs


@pytest.mark.parametrize(("period", "points"), [("day", 30), ("week", 12), ("month", 12)])
async def test_longer_periods_sum_the_same_runs(history: Api, period: str, points: int) -> None:
    api = history
    status, body, _ = await api.call("GET", f"/api/system/metrics?period={period}")
    assert status == 200, body
    series = body["data"]["task_completion_rate"]
    assert len(series) == points and body["meta"]["period"] == period
    stamps = [parse(p["timestamp"]) for p in series]
    assert stamps == sorted(stamps) and stamps[-1] == parse(body["meta"]["end_time"])
    completed = await api.pool.fetchval(
        "SELECT count(*) FROM events WHERE project_id = $1 AND type = 'task.completed'",
        api.project_a,
    )
    assert sum(p["value"] for p in series) == completed


async def test_metrics_parameter_picks_the_series(history: Api) -> None:
    status, body, _ = await history.call(
        "GET", "/api/system/metrics?period=day&metrics=error_rate,average_execution_time"
    )
    assert status == 200, body
    assert set(body["data"]) == {"error_rate", "average_execution_time"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=year", "period"),
        ("period=", "period"),
        ("period=hour&period=day", "period"),
        ("metrics=throughput", "metrics"),
        ("metrics=error_rate,bogus", "metrics"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_metrics_queries_are_422_naming_the_field(
    api: Api, query: str, field: str
) -> None:
    before = await api.event_count()
    status, body, _ = await api.call("GET", f"/api/system/metrics?{query}")
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"]["field"] == field
    assert await api.event_count() == before


async def test_openapi_describes_the_system_routes(api: Api) -> None:
    async with api.session.get(api.base + "/api/openapi.json") as r:
        doc = await r.json()
    validate(doc)
    for path in ("/api/system/status", "/api/system/metrics"):
        assert "200" in doc["paths"][path]["get"]["responses"]
    params = {p["name"] for p in doc["paths"]["/api/system/metrics"]["get"]["parameters"]}
    assert params == {"period", "metrics"}
