"""Jobs running on the core: trigger rules, retry policies against a real receiver, versions,
pause, cancel and retry of executions, idempotency keys on every call, cron in a timezone,
two scheduler replicas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from infra.egress_client import EgressClient
from infra.egress_guard import parse_allow_list
from infra.event_envelope import topic_for
from infra.group_commit import GroupCommitter
from services.jobs.service import JobService
from services.jobs.sweep import JobSweeper
from services.tasks.service import Actor, TaskService
from services.webhooks.delivery import WebhookDeliverer
from services.webhooks.pump import WebhookPump
from tests.integration.api_harness import session_keyring, session_secret_store
from tests.integration.jobs_rig import JobsRig, jobs_running, statuses
from tests.integration.metrics_scrape import scrape

FAST = {
    "type": "ON_FAILURE",
    "maxRetries": 2,
    "backoff": {"strategy": "fixed", "delaySeconds": 0.1, "maxDelaySeconds": 1},
}


@pytest.fixture
async def rig(pool: asyncpg.Pool) -> AsyncIterator[JobsRig]:
    async with jobs_running(pool) as rig:
        yield rig


async def test_trigger_rules_decide_which_tasks_run(rig: JobsRig) -> None:
    rig.receiver.behaviour["/bad"] = lambda n: (500, 0.0)
    none = {"type": "NONE", "maxRetries": 0}
    job_id = await rig.create(
        rig.task("ok"),
        rig.task("bad", path="/bad", retryPolicy=none),
        rig.task("after_bad", "bad"),  # all_success
        rig.task("after_after", "after_bad"),
        rig.task("alert", "bad", triggerRule="one_failed"),
        rig.task("quiet_alert", "ok", triggerRule="one_failed"),
        rig.task("cleanup", "ok", "bad", triggerRule="all_done"),
        rig.task("any_ok", "ok", "bad", triggerRule="one_success"),
        rig.task("no_fail", "ok", "bad", triggerRule="none_failed"),
        rig.task("skipped_ok", "quiet_alert", triggerRule="none_failed"),
    )
    execution_id = await rig.trigger(job_id, json={"params": {"day": "mon"}})
    done = await rig.finished(job_id, execution_id)
    assert statuses(done) == {
        "ok": "SUCCEEDED",
        "bad": "FAILED",
        "after_bad": "UPSTREAM_FAILED",
        "after_after": "UPSTREAM_FAILED",
        "alert": "SUCCEEDED",
        "quiet_alert": "SKIPPED",
        "cleanup": "SUCCEEDED",
        "any_ok": "SUCCEEDED",
        "no_fail": "UPSTREAM_FAILED",
        "skipped_ok": "SUCCEEDED",
    }
    assert done["status"] == "FAILED"
    for never in ("/after_bad", "/after_after", "/quiet_alert", "/no_fail"):
        assert rig.receiver.calls(never) == []
    (call,) = rig.receiver.calls("/ok")
    assert call.headers["Idempotency-Key"] == f"{execution_id}:ok"
    assert json.loads(call.body) == {"day": "mon"}
    assert call.headers["X-Taskstream-Execution-Id"] == execution_id
    types = await rig.types(execution_id)
    assert types.count("job.execution.failed") == 1 and "job.task.skipped" in types


@pytest.mark.parametrize(
    ("policy", "behaviour", "timeout", "status", "attempts", "calls"),
    [
        ({"type": "NONE", "maxRetries": 3}, [500, 200], 30, "FAILED", 1, 1),
        (FAST, [500, 200], 30, "SUCCEEDED", 2, 2),
        ({**FAST, "maxRetries": 1}, [500, 500, 200], 30, "FAILED", 2, 2),
        (FAST, ["slow", 200], 1, "FAILED", 1, 1),  # ON_FAILURE does not retry a timeout
        ({**FAST, "type": "ALWAYS"}, ["slow", 200], 1, "SUCCEEDED", 2, 2),
    ],
)
async def test_retry_policies_against_a_receiver(
    rig: JobsRig,
    policy: dict,
    behaviour: list,
    timeout: int,
    status: str,
    attempts: int,
    calls: int,
) -> None:
    def answer(n: int) -> tuple[int, float]:
        step = behaviour[min(n, len(behaviour)) - 1]
        return (200, 3.0) if step == "slow" else (step, 0.0)

    rig.receiver.behaviour["/flaky"] = answer
    job_id = await rig.create(
        rig.task("flaky", path="/flaky", timeoutSeconds=timeout), retryPolicy=policy
    )
    execution_id = await rig.trigger(job_id)
    done = await rig.finished(job_id, execution_id)
    (node,) = done["tasks"]
    assert (done["status"], node["status"], node["attempts"]) == (status, status, attempts)
    seen = rig.receiver.calls("/flaky")
    assert len(seen) == calls
    assert {c.headers["Idempotency-Key"] for c in seen} == {f"{execution_id}:flaky"}
    if attempts > 1:
        assert "job.task.retrying" in await rig.types(execution_id)


async def test_retry_after_on_503_is_honoured(rig: JobsRig) -> None:
    rig.receiver.behaviour["/busy"] = lambda n: (
        (503, 0.0, {"Retry-After": "1"}) if n == 1 else (200, 0.0)
    )
    job_id = await rig.create(rig.task("busy", path="/busy"), retryPolicy=FAST)
    done = await rig.finished(job_id, await rig.trigger(job_id))
    first, second = rig.receiver.calls("/busy")
    assert done["status"] == "SUCCEEDED"
    assert second.at - first.at >= 0.95  # not the 0.1 s backoff


async def test_a_running_execution_keeps_its_version_while_the_job_is_edited(rig: JobsRig) -> None:
    rig.receiver.behaviour["/slow"] = lambda n: (200, 1.5)
    job_id = await rig.create(rig.task("first", path="/slow"), rig.task("second", "first"))
    old = await rig.trigger(job_id)
    await rig.receiver.wait_for("/slow", 1)
    status, body, _ = await rig.api.call(
        "PUT",
        f"/jobs/{job_id}",
        json={"tasks": [rig.task("first", path="/v2"), rig.task("third", "first")]},
    )
    assert (status, body["version"]) == (200, 2)
    done = await rig.finished(job_id, old)
    assert done["definitionVersion"] == 1 and set(statuses(done)) == {"first", "second"}
    assert rig.receiver.calls("/v2") == [] and len(rig.receiver.calls("/second")) == 1
    new = await rig.finished(job_id, await rig.trigger(job_id))
    assert new["definitionVersion"] == 2 and set(statuses(new)) == {"first", "third"}
    assert len(rig.receiver.calls("/v2")) == 1


async def test_pause_lets_the_running_execution_finish_and_stops_new_ones(rig: JobsRig) -> None:
    rig.receiver.behaviour["/slow"] = lambda n: (200, 1.0)
    job_id = await rig.create(rig.task("a", path="/slow"), rig.task("b", "a"))
    execution_id = await rig.trigger(job_id)
    await rig.receiver.wait_for("/slow", 1)
    status, _, _ = await rig.api.call("POST", f"/jobs/{job_id}/pause")
    assert status == 200
    done = await rig.finished(job_id, execution_id)
    assert done["status"] == "SUCCEEDED" and len(rig.receiver.calls("/b")) == 1
    status, body, _ = await rig.api.call("POST", f"/jobs/{job_id}/trigger")
    assert status == 409 and "paused" in body["error"]["message"]
    await rig.api.call("POST", f"/jobs/{job_id}/resume")
    again = await rig.finished(job_id, await rig.trigger(job_id))
    assert again["status"] == "SUCCEEDED"


async def test_max_active_runs_queues_a_second_trigger_until_the_first_ends(rig: JobsRig) -> None:
    rig.receiver.behaviour["/slow"] = lambda n: (200, 0.8)
    job_id = await rig.create(rig.task("a", path="/slow"))
    first = await rig.trigger(job_id)
    second = await rig.trigger(job_id)
    assert (await rig.execution(job_id, second))["status"] == "PENDING"
    one = await rig.finished(job_id, first)
    two = await rig.finished(job_id, second)
    assert one["status"] == two["status"] == "SUCCEEDED"
    started, ended = (datetime.fromisoformat(x) for x in (two["startedAt"], one["finishedAt"]))
    assert started >= ended


async def test_cancel_and_retry_of_an_execution(rig: JobsRig) -> None:
    fail = {"fail": True}
    rig.receiver.behaviour["/flip"] = lambda n: (500 if fail["fail"] else 200, 0.0)
    rig.receiver.behaviour["/slow"] = lambda n: (200, 5.0 if n == 1 else 0.0)
    none = {"type": "NONE", "maxRetries": 0}
    job_id = await rig.create(
        rig.task("ok"),
        rig.task("flip", "ok", path="/flip", retryPolicy=none),
        rig.task("after", "flip"),
        maxActiveRuns=2,
    )
    execution_id = await rig.trigger(job_id)
    failed = await rig.finished(job_id, execution_id)
    assert statuses(failed) == {"ok": "SUCCEEDED", "flip": "FAILED", "after": "UPSTREAM_FAILED"}
    status, body, _ = await rig.api.call("POST", f"/jobs/{job_id}/executions/{execution_id}/cancel")
    assert status == 409 and "already finished" in body["error"]["message"]
    fail["fail"] = False
    status, body, _ = await rig.api.call("POST", f"/jobs/{job_id}/executions/{execution_id}/retry")
    assert status == 202 and body["status"] == "RUNNING"
    again = await rig.finished(job_id, execution_id)
    assert again["status"] == "SUCCEEDED"
    assert statuses(again) == {"ok": "SUCCEEDED", "flip": "SUCCEEDED", "after": "SUCCEEDED"}
    assert len(rig.receiver.calls("/ok")) == 1  # kept, not re-run
    flip = next(t for t in again["tasks"] if t["id"] == "flip")
    assert flip["attempts"] == 2

    slow_job = await rig.create(rig.task("s", path="/slow"), rig.task("t", "s"))
    running = await rig.trigger(slow_job)
    await rig.receiver.wait_for("/slow", 1)
    status, body, _ = await rig.api.call("POST", f"/jobs/{slow_job}/executions/{running}/cancel")
    assert status == 200 and body["status"] == "CANCELLED"
    assert statuses(body) == {"s": "CANCELLED", "t": "CANCELLED"}
    # The core task of `s` is cancelled too (no retry, no later attempt); `t` never got one.
    cores = await rig.api.pool.fetch(
        "SELECT lifecycle FROM task_view WHERE $1 = ANY(tags)", f"execution:{running}"
    )
    assert [r["lifecycle"] for r in cores] == ["cancelled"]
    assert "job.execution.cancelled" in await rig.types(running)


async def test_a_cron_job_fires_in_its_timezone(pool: asyncpg.Pool) -> None:
    # 09:30 in Kathmandu (UTC+05:45) is 03:45 UTC.
    committer = GroupCommitter(pool, flushers=1)
    tasks = TaskService(
        pool,
        committer,
        secrets=session_secret_store(pool),
        egress_allow=parse_allow_list("127.0.0.0/8"),
    )
    clock = {"now": datetime(2026, 12, 1, 3, 0, tzinfo=UTC)}
    jobs = JobService(tasks, clock=lambda: clock["now"])
    from domain.actions import HandlerAction
    from domain.job_definition import JobDefinition, JobTask

    definition = JobDefinition(
        name="kathmandu",
        schedule="30 9 * * *",
        timezone="Asia/Kathmandu",
        tasks=(JobTask(id="a", name="a", action=HandlerAction(name="x")),),
    )
    job = await jobs.create("p", definition, actor=Actor("test", "t"))
    assert job.next_fire_at == datetime(2026, 12, 1, 3, 45, tzinfo=UTC)
    sweeper = JobSweeper(pool, jobs)
    await sweeper.tick()
    assert await pool.fetchval("SELECT count(*) FROM execution_view") == 0
    clock["now"] = datetime(2026, 12, 1, 3, 45, 0, 200_000, tzinfo=UTC)
    await sweeper.tick()
    row = await pool.fetchrow("SELECT state->>'scheduled_for' AS at, trigger FROM execution_view")
    assert row["trigger"] == "schedule"
    assert datetime.fromisoformat(row["at"]) == datetime(2026, 12, 1, 3, 45, tzinfo=UTC)
    state = await jobs.get("p", job.job_id)
    assert state.next_fire_at == datetime(2026, 12, 2, 3, 45, tzinfo=UTC)
    await sweeper.tick()  # the same fire time never fires twice
    assert await pool.fetchval("SELECT count(*) FROM execution_view") == 1
    await jobs.execute(
        "p",
        job.job_id,
        __import__("domain.job", fromlist=["PauseJob"]).PauseJob(),
        actor=Actor("test", "t"),
    )
    clock["now"] = datetime(2026, 12, 2, 3, 45, 1, tzinfo=UTC)
    await sweeper.tick()
    skipped = await pool.fetch(
        "SELECT data->>'reason' AS reason FROM events WHERE type = 'job.fire_skipped'"
    )
    assert [r["reason"] for r in skipped] == ["paused"]
    await committer.close()


async def test_two_scheduler_replicas_never_run_a_node_twice(pool: asyncpg.Pool) -> None:
    async with jobs_running(pool, schedulers=2) as rig:
        # Ready nodes are also dispatched at once by the runner: it races both schedulers.
        direct = rig.dispatch_directly()
        middle = [rig.task(f"m{i}", "root") for i in range(40)]
        job_id = await rig.create(
            rig.task("root"), *middle, rig.task("join", *(m["id"] for m in middle))
        )
        execution_id = await rig.trigger(job_id)
        done = await rig.finished(job_id, execution_id, timeout=60)
        await asyncio.gather(*direct)
    assert direct and done["status"] == "SUCCEEDED"
    assert all(t["attempts"] == 1 for t in done["tasks"])
    for node in ["root", "join", *(m["id"] for m in middle)]:
        assert len(rig.receiver.calls(f"/{node}")) == 1, node
    completed = await pool.fetchval(
        "SELECT count(*) FROM events e JOIN task_view t ON e.stream_id = 'task-' || t.task_id"
        " WHERE $1 = ANY(t.tags) AND e.type = 'task.completed'",
        f"execution:{execution_id}",
    )
    assert completed == 42
    types = await rig.types(execution_id)
    assert types.count("job.task.succeeded") == 42 and types.count("job.task.started") == 42


async def test_job_events_reach_webhooks_of_their_project_and_metrics(pool: asyncpg.Pool) -> None:
    async with jobs_running(pool, egress_allow_cidrs="127.0.0.0/8") as rig:
        api = rig.api
        mine = {"url": rig.receiver.url + "/hook", "events": ["job.execution.succeeded",
                                                              "job.task.succeeded"]}  # fmt: skip
        theirs = {**mine, "url": rig.receiver.url + "/other-hook"}
        assert (await api.call("POST", "/api/webhooks", json=mine))[0] == 201
        assert (await api.call("POST", "/api/webhooks", json=theirs, key=api.key_b))[0] == 201
        job_id = await rig.create(rig.task("a"), rig.task("b", "a"))
        execution_id = await rig.trigger(job_id)
        await rig.finished(job_id, execution_id)
        sent: list[str] = []
        deliverer = WebhookDeliverer(
            pool, EgressClient("127.0.0.0/8"), schedule=(0.2,), keyring=session_keyring()
        )

        async def send(delivery_id: str, attempts: int) -> None:
            sent.append(await deliverer.deliver(delivery_id, attempts))

        async with deliverer.egress:
            pump = WebhookPump(pool, send, keyring=session_keyring())
            while await pump.fan_out():
                pass
            await pump.send_due()
        calls = await rig.receiver.wait_for("/hook", 3)
        events = [json.loads(c.body) for c in calls]
        assert sorted(e["event"] for e in events) == [
            "job.execution.succeeded", "job.task.succeeded", "job.task.succeeded",
        ]  # fmt: skip
        assert {e["executionId"] for e in events} == {execution_id}
        assert {e["jobId"] for e in events} == {job_id}
        assert {e["data"]["task_id"] for e in events if e["event"] == "job.task.succeeded"} == {
            "a", "b",
        }  # fmt: skip
        assert rig.receiver.calls("/other-hook") == []
        scraped = await scrape(api.base + "/metrics")
        assert scraped.value("taskstream_job_executions_total", status="SUCCEEDED") >= 1
        assert scraped.value("taskstream_job_hop_seconds_count") >= 1
    assert topic_for("job.execution.succeeded") == topic_for("job.created") == "taskstream.job"
