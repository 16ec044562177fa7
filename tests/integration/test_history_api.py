"""History APIs over real runs: a scheduler and a run executor calling a real receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.commands import PauseTask, ResumeTask
from infra.egress_client import EgressClient
from services.runs.executor import RunExecutor
from services.scheduler.dispatcher import RunMessage, Scheduler, SchedulerConfig
from services.surfaces.kit.context import CONTEXT
from services.tasks.dead_letters import retry_dead_letters
from services.tasks.service import Actor
from tests.integration.api_harness import Api, running_api
from tests.integration.receiver import Receiver, running_receiver
from tests.integration.test_webhooks import Hooks, hooks  # noqa: F401  (the fixture)
from tests.integration.test_workers import eventually

USER = Actor("test", "t")


@dataclass
class Runs:
    api: Api
    receiver: Receiver

    def task(self, path: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": path,
            "action": {"kind": "http", "url": self.receiver.url + path, "method": "POST"},
            "scheduled_at": datetime.now(UTC).isoformat(),
            **extra,
        }

    async def create(self, body: dict[str, Any], key: str | None = None) -> str:
        status, created, _ = await self.api.call("POST", "/api/tasks", json=body, key=key)
        assert status == 201, created
        return str(created["data"]["id"])

    async def status_of(self, task_id: str) -> str:
        return str(
            await self.api.pool.fetchval("SELECT status FROM task_view WHERE task_id = $1", task_id)
        )

    async def wait(self, task_id: str, status: str) -> None:
        async def reached() -> bool:
            return await self.status_of(task_id) == status

        await eventually(reached, timeout=15)


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as api:
        yield api


@pytest.fixture
async def runs(pool: asyncpg.Pool) -> AsyncIterator[Runs]:
    async with (
        running_api(pool, egress_allow_cidrs="127.0.0.0/8") as api,
        running_receiver() as receiver,
        EgressClient("127.0.0.0/8") as egress,
    ):
        tasks = api.app[CONTEXT].tasks
        executor = RunExecutor(pool, tasks, egress, worker_id="w-hist", lease_seconds=5.0,
                               random_unit=lambda: 0.0)  # fmt: skip
        running: list[asyncio.Task[Any]] = []

        async def send(batch: list[RunMessage]) -> None:
            running.extend(asyncio.create_task(executor.execute(*run)) for run in batch)

        stop = asyncio.Event()
        scheduler = Scheduler(pool, tasks, send, config=SchedulerConfig(dispatch_lease_seconds=5))
        loop = asyncio.create_task(scheduler.run(stop))
        try:
            yield Runs(api, receiver)
        finally:
            stop.set()
            await asyncio.gather(loop, *running, return_exceptions=True)


async def test_runs_list_every_attempt_with_status_worker_and_timing(runs: Runs) -> None:
    runs.receiver.behaviour["/flaky"] = lambda n: (500 if n == 1 else 200, 0.0)
    retry = {"max_retries": 2, "backoff": "fixed", "base_seconds": 0.1}
    task_id = await runs.create(runs.task("/flaky", retry_policy=retry))
    await runs.wait(task_id, "completed")
    status, body, _ = await runs.api.call("GET", f"/api/tasks/{task_id}/runs")
    assert status == 200, body
    second, first = body["data"]  # newest first
    assert first["run_id"] == second["run_id"] and [first["attempt"], second["attempt"]] == [1, 2]
    assert (first["status"], first["http_status"], first["final"]) == ("failed", 500, False)
    assert first["error"] == "HTTP 500" and first["reason"] == "http_status"
    assert (second["status"], second["http_status"], second["final"]) == ("completed", 200, True)
    for attempt in (first, second):
        assert attempt["worker_id"] == "w-hist"
        assert attempt["lateness_ms"] >= 0 and attempt["duration_ms"] > 0
        keys = ("dispatched_at", "started_at", "finished_at")
        dispatched, started, finished = (datetime.fromisoformat(attempt[k]) for k in keys)
        assert dispatched <= started <= finished
    assert len(runs.receiver.calls("/flaky")) == 2


async def test_events_are_paged_and_header_values_redacted(runs: Runs) -> None:
    body = runs.task("/secret")
    body["action"]["headers"] = {"Authorization": "Bearer sk-very-secret", "X-Trace": "t1"}
    task_id = await runs.create(body)
    await runs.wait(task_id, "completed")
    status, page, _ = await runs.api.call("GET", f"/api/tasks/{task_id}/events?limit=2")
    assert status == 200
    assert [e["type"] for e in page["data"]] == ["task.created", "task.dispatched"]
    assert [e["version"] for e in page["data"]] == [0, 1]
    headers = page["data"][0]["data"]["definition"]["action"]["headers"]
    assert headers == {"Authorization": "[redacted]", "X-Trace": "[redacted]"}
    assert page["meta"]["next_version"] == 1
    _, rest, _ = await runs.api.call("GET", f"/api/tasks/{task_id}/events?after_version=1")
    assert [e["type"] for e in rest["data"]] == ["task.started", "task.completed"]
    assert rest["meta"]["next_version"] is None
    _, newest, _ = await runs.api.call("GET", f"/api/tasks/{task_id}/events?order=desc&limit=3")
    assert [e["version"] for e in newest["data"]] == [3, 2, 1]
    assert newest["meta"]["next_version"] == 1
    _, oldest, _ = await runs.api.call(
        "GET", f"/api/tasks/{task_id}/events?order=desc&before_version=1"
    )
    assert [e["version"] for e in oldest["data"]] == [0]
    for path in ("events", "runs", "schedule"):
        async with runs.api.session.get(
            f"{runs.api.base}/api/tasks/{task_id}/{path}", headers=runs.api.auth()
        ) as r:
            assert "sk-very-secret" not in await r.text()


async def test_schedule_shows_dst_fires_and_past_decisions(runs: Runs) -> None:
    # US clocks spring forward on 2027-03-14: 02:30 does not exist and fires at 03:00 EDT.
    start = "2027-03-13T00:00:00-05:00"
    task_id = await runs.create(
        {
            **runs.task("/cron"),
            "scheduled_at": None,
            "schedule": {
                "kind": "cron",
                "expr": "30 2 * * *",
                "timezone": "America/New_York",
                "start_at": start,
            },
        }
    )
    tasks = runs.api.app[CONTEXT].tasks
    await tasks.execute(runs.api.project_a, task_id, PauseTask(), actor=USER)
    await tasks.execute(runs.api.project_a, task_id, ResumeTask(), actor=USER)
    status, body, _ = await runs.api.call("GET", f"/api/tasks/{task_id}/schedule?count=3")
    assert status == 200, body
    data = body["data"]
    assert data["next_fires"] == [
        "2027-03-13T07:30:00Z",
        "2027-03-14T07:00:00Z",
        "2027-03-15T06:30:00Z",
    ]
    assert [d["kind"] for d in data["decisions"]] == ["paused", "resumed"]
    assert data["decisions"][1]["due_at"] == "2027-03-13T07:30:00Z"


async def test_history_of_another_projects_task_is_a_404(runs: Runs) -> None:
    task_id = await runs.create(runs.task("/mine"))
    for path in ("runs", "events", "schedule"):
        status, body, _ = await runs.api.call(
            "GET", f"/api/tasks/{task_id}/{path}", key=runs.api.key_b
        )
        assert status == 404, (path, body)
    status, body, _ = await runs.api.call("GET", "/api/tasks/nope/runs")
    assert status == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/runs?limit=0", "limit"),
        ("/runs?limit=x", "limit"),
        ("/runs?page=0", "page"),
        ("/events?limit=501", "limit"),
        ("/events?after_version=-2", "after_version"),
        ("/events?order=desc&before_version=-1", "before_version"),
        ("/events?order=sideways", "order"),
        ("/events?bogus=1", "bogus"),
        ("/schedule?count=0", "count"),
        ("/schedule?count=101", "count"),
        ("/schedule?decisions=0", "decisions"),
    ],
)
async def test_bad_history_queries_name_the_field(api: Api, path: str, field: str) -> None:
    _, created, _ = await api.call("POST", "/api/tasks", json=later_task())
    status, body, _ = await api.call("GET", f"/api/tasks/{created['data']['id']}{path}")
    assert status == 422, body
    assert body["error"]["details"]["field"] == field


async def dead(runs: Runs, count: int, key: str | None = None, **extra: Any) -> list[str]:
    runs.receiver.behaviour["/down"] = lambda n: (503, 0.0)
    ids = [
        await runs.create(runs.task("/down", max_retries=0, **extra), key=key) for _ in range(count)
    ]
    for task_id in ids:
        await runs.wait(task_id, "failed")
    return ids


async def test_dead_letters_list_filter_and_retry_with_a_dry_run_first(runs: Runs) -> None:
    tagged = await dead(runs, 2, tags=["billing"])
    other = await dead(runs, 1)
    await dead(runs, 1, key=runs.api.key_b)
    status, body, _ = await runs.api.call("GET", "/api/dead-letters?limit=2")
    assert status == 200
    assert body["data"][0]["error"] == "HTTP 503"
    cursor = body["meta"]["next_cursor"]
    _, rest, _ = await runs.api.call("GET", f"/api/dead-letters?limit=2&cursor={cursor}")
    assert len(rest["data"]) == 1 and rest["meta"]["next_cursor"] is None
    listed = body["data"] + rest["data"]
    assert sorted(d["id"] for d in listed) == sorted(tagged + other)
    failed_at = [d["failed_at"] for d in listed]
    assert failed_at == sorted(failed_at, reverse=True), "most recently failed first"
    _, billing, _ = await runs.api.call("GET", "/api/dead-letters?tag=billing")
    assert sorted(d["id"] for d in billing["data"]) == sorted(tagged)

    dry = {"filter": {"tag": "billing"}, "dry_run": True}
    status, counted, _ = await runs.api.call("POST", "/api/dead-letters/retry", json=dry)
    assert status == 200 and counted["data"]["matched"] == 2 and counted["data"]["retried"] == []
    assert await runs.status_of(tagged[0]) == "failed"

    runs.receiver.behaviour["/down"] = lambda n: (200, 0.0)
    status, done, _ = await runs.api.call(
        "POST", "/api/dead-letters/retry", json={"ids": [*tagged, "missing"]}
    )
    assert status == 200
    assert sorted(done["data"]["retried"]) == sorted(tagged)
    assert list(done["data"]["refused"]) == ["missing"]
    for task_id in tagged:
        await runs.wait(task_id, "completed")
    _, left, _ = await runs.api.call("GET", "/api/dead-letters")
    assert [d["id"] for d in left["data"]] == other


async def test_another_projects_dead_letters_are_neither_listed_nor_retried(runs: Runs) -> None:
    (theirs,) = await dead(runs, 1, key=runs.api.key_b)
    _, listed, _ = await runs.api.call("GET", "/api/dead-letters")
    assert listed["data"] == []
    _, outcome, _ = await runs.api.call("POST", "/api/dead-letters/retry", json={"ids": [theirs]})
    assert outcome["data"]["retried"] == [] and list(outcome["data"]["refused"]) == [theirs]
    _, by_filter, _ = await runs.api.call("POST", "/api/dead-letters/retry", json={"filter": {}})
    assert by_filter["data"]["matched"] == 0
    assert await runs.status_of(theirs) == "failed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "ids"),
        ({"ids": ["a"], "filter": {}}, "ids"),
        ({"ids": []}, "ids"),
        ({"ids": "a"}, "ids"),
        ({"filter": {"schedule_kind": "weekly"}}, "filter.schedule_kind"),
        ({"filter": {}, "dry_run": "yes"}, "dry_run"),
        ({"filter": {}, "extra": 1}, "extra"),
    ],
)
async def test_bad_retry_bodies_name_the_field(api: Api, body: dict, field: str) -> None:
    status, answer, _ = await api.call("POST", "/api/dead-letters/retry", json=body)
    assert status == 422, answer
    assert answer["error"]["details"]["field"] == field


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("cursor=zz", "cursor"), ("schedule_kind=x", "schedule_kind")],
)
async def test_bad_dead_letter_queries_name_the_field(api: Api, query: str, field: str) -> None:
    status, body, _ = await api.call("GET", f"/api/dead-letters?{query}")
    assert status == 422 and body["error"]["details"]["field"] == field, body


async def test_a_bulk_retry_cut_short_is_finished_by_asking_again(runs: Runs) -> None:
    ids = await dead(runs, 6)
    runs.receiver.behaviour["/down"] = lambda n: (200, 0.0)
    tasks = runs.api.app[CONTEXT].tasks
    project = runs.api.project_a
    # The process "dies" part-way: the bulk retry is cancelled after its first appends.
    bulk = asyncio.create_task(
        retry_dead_letters(tasks, project, ids=ids, search=None, dry_run=False, actor=USER)
    )

    async def some_retried() -> bool:
        return any([await runs.status_of(t) != "failed" for t in ids])

    await eventually(some_retried)
    bulk.cancel()
    await asyncio.gather(bulk, return_exceptions=True)
    status, _, _ = await runs.api.call("POST", "/api/dead-letters/retry", json={"filter": {}})
    assert status == 200
    for task_id in ids:
        await runs.wait(task_id, "completed")
        retries = await runs.api.pool.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'task.retrying'",
            f"task-{task_id}",
        )
        assert retries == 1, f"{task_id} retried {retries} times"


async def test_redeliver_sends_the_same_message_again(hooks: Hooks) -> None:  # noqa: F811
    endpoint = await hooks.endpoint("/hook", events=["task.created"])
    await hooks.api.call("POST", "/api/tasks", json=later_task())
    await hooks.pump_once()
    (first,) = await hooks.receiver.wait_for("/hook", 1)
    _, attempts, _ = await hooks.api.call("GET", f"/api/webhooks/{endpoint['id']}/deliveries")
    delivery = attempts["data"][0]["delivery_id"]
    path = f"/api/webhooks/{endpoint['id']}/deliveries/{delivery}/redeliver"
    status, foreign, _ = await hooks.api.call("POST", path, key=hooks.api.key_b)
    assert status == 404, foreign
    status, wrong, _ = await hooks.api.call(
        "POST", f"/api/webhooks/{endpoint['id']}/deliveries/msg_nope/redeliver"
    )
    assert status == 404, wrong
    status, queued, _ = await hooks.api.call("POST", path)
    assert status == 202, queued
    assert queued["data"]["status"] == "pending" and queued["data"]["attempts"] == 1
    await hooks.pump.send_due()
    _, second = await hooks.receiver.wait_for("/hook", 2)
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == delivery
    assert second.body == first.body
    _, attempts, _ = await hooks.api.call("GET", f"/api/webhooks/{endpoint['id']}/deliveries")
    assert [(a["attempt"], a["status"]) for a in attempts["data"]] == [
        (2, "succeeded"),
        (1, "succeeded"),
    ]


def later_task() -> dict[str, Any]:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return {
        "name": "hooked",
        "action": {"kind": "http", "url": "https://example.com/x"},
        "scheduled_at": later,
    }
