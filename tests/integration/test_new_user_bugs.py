"""Issue 10 §5 over HTTP: the bugs a new user hit, against a real gateway, PostgreSQL, receivers
and processes. Each test failed on the code before its fix."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from domain.actions import HttpAction
from domain.commands import CancelTask
from services.runs.handlers import load_handler_modules
from tests.integration import sample_handlers
from tests.integration.api_harness import Api, running_api
from tests.integration.callback_rig import callbacks_running
from tests.integration.holding_receiver import holding_receiver
from tests.integration.processes import pid_alive
from tests.integration.test_api_tasks import http_task
from tests.integration.test_execution_path import USER, Rig, rig, run_schedulers, stop_all
from tests.integration.test_publish_surface import publish, publish_body

__all__ = ["rig"]  # the fixture, imported for pytest

STOP_BOUND_SECONDS = 1.0
MESSAGES_TOKEN = "messages-token"


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(
        pool, egress_allow_cidrs="127.0.0.0/8", allow_commands=True, api_token=MESSAGES_TOKEN
    ) as a:
        yield a


async def create(api: Api, body: dict[str, Any]) -> str:
    status, created, _ = await api.call("POST", "/api/tasks", json=body)
    assert status == 201, created
    return str(created["data"]["id"])


async def event_types(api: Api, task_id: str) -> list[str]:
    rows = await api.pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version", f"task-{task_id}"
    )
    return [r["type"] for r in rows]


async def poll(check: Any, what: str, timeout: float = 10.0) -> Any:
    """`await check()` until it gives something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def log_messages(api: Api, task_id: str) -> list[tuple[str, str]]:
    status, body, _ = await api.call("GET", f"/api/tasks/{task_id}/logs?limit=100")
    assert status == 200, body
    return [(line["level"], line["message"]) for line in body["data"]]


async def stop_run(api: Api, task_id: str, how: str) -> float:
    """Cancel or delete the task; returns when the request was sent (monotonic)."""
    sent = time.monotonic()
    if how == "cancel":
        status, body, _ = await api.call("POST", f"/api/tasks/{task_id}/cancel")
    else:
        status, body, _ = await api.call("DELETE", f"/api/tasks/{task_id}")
    assert status in (200, 204), body
    return sent


async def assert_recorded_as_cancelled(api: Api, task_id: str, how: str) -> None:
    # The worker's own record of the stop is its last log line; after it nothing is appended.
    await poll(lambda: _has_log(api, task_id, "run cancelled"), "the worker to record the cancel")
    types = await event_types(api, task_id)
    stopped = "task.cancelled" if how == "cancel" else "task.deleted"
    assert types[-1] == stopped, types
    assert "task.completed" not in types and "task.failed" not in types, types
    data = await api.pool.fetchval(
        "SELECT data FROM events WHERE stream_id = $1 AND type = $2", f"task-{task_id}", stopped
    )
    assert '"run_id"' in data


async def _has_log(api: Api, task_id: str, fragment: str) -> bool:
    rows = await api.pool.fetch("SELECT message FROM task_logs WHERE task_id = $1", task_id)
    return any(fragment in r["message"] for r in rows)


# --- cancel stops a running task -------------------------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "delete"])
async def test_cancel_or_delete_aborts_a_held_http_call_within_a_second(api: Api, how: str) -> None:
    async with holding_receiver() as held, callbacks_running(api):
        task_id = await create(
            api,
            {
                "name": "held",
                "action": {"kind": "http", "url": held.url + "/hold", "method": "POST"},
                "timeout_seconds": 60,
            },
        )
        call = await held.first_call()
        assert call.request_line.startswith("POST /hold ")
        sent = await stop_run(api, task_id, how)
        await asyncio.wait_for(call.closed.wait(), 5)
        assert call.closed_at is not None
        took = call.closed_at - sent
        assert took < STOP_BOUND_SECONDS, f"the call was aborted {took:.3f} s after the {how}"
        await assert_recorded_as_cancelled(api, task_id, how)


@pytest.mark.parametrize(
    ("script", "signal_used"),
    # The pid is written after the trap is set, so the cancel always finds it in place.
    [("", "SIGTERM"), ("trap '' TERM; ", "SIGKILL")],
    ids=["stops-on-term", "ignores-term"],
)
async def test_cancel_terminates_a_running_command_within_a_second(
    api: Api, tmp_path: Path, script: str, signal_used: str
) -> None:
    pid_file = tmp_path / "pid"
    async with callbacks_running(api, allow_commands=True):
        task_id = await create(
            api, {"name": "sleeper", "command": f"{script}echo $$ > {pid_file}; sleep 60; sleep 60"}
        )

        async def started() -> int:
            text = pid_file.read_text().strip() if pid_file.exists() else ""
            return int(text) if text else 0

        pid = await poll(started, "the command to start")
        sent = await stop_run(api, task_id, "cancel")
        await poll(lambda: _gone(pid), f"process {pid} to end", timeout=5)
        took = time.monotonic() - sent
        assert took < STOP_BOUND_SECONDS, f"the command ended {took:.3f} s after the cancel"
        await assert_recorded_as_cancelled(api, task_id, "cancel")
        assert await _has_log(api, task_id, signal_used)


async def _gone(pid: int) -> bool:
    return not pid_alive(pid)


# --- every run writes log lines ---------------------------------------------------------------


async def test_an_http_run_logs_its_request_status_and_duration_but_no_header_value(
    api: Api,
) -> None:
    async with callbacks_running(api) as receiver:
        receiver.behaviour["/broken"] = lambda n: (500, 0.0)
        ok = await create(
            api,
            http_task(
                action={"kind": "http", "url": receiver.url + "/fine?token=q-secret",
                        "headers": {"Authorization": "Bearer h-secret"}},
                max_retries=0,
            ),
        )  # fmt: skip
        bad = await create(
            api,
            http_task(action={"kind": "http", "url": receiver.url + "/broken"}, max_retries=0),
        )
        for task_id in (ok, bad):
            await poll(lambda t=task_id: _finished(api, t), f"{task_id} to finish")
        lines = await log_messages(api, ok)
        text = "\n".join(m for _, m in lines)
        assert any(m.startswith("POST ") and "/fine" in m for _, m in lines), lines
        assert any("HTTP 200" in m and " ms" in m for _, m in lines), lines
        assert "h-secret" not in text and "q-secret" not in text, "no header or query values"
        failed = await log_messages(api, bad)
        assert any(level == "error" and "HTTP 500" in m and "call 1" in m for level, m in failed)


async def _finished(api: Api, task_id: str) -> bool:
    status = await api.pool.fetchval("SELECT status FROM task_view WHERE task_id = $1", task_id)
    return status in ("completed", "failed")


async def test_a_command_run_logs_its_output_lines_and_exit_code_bounded(api: Api) -> None:
    async with callbacks_running(api, allow_commands=True):
        noisy = await create(
            api,
            {"name": "noisy", "max_retries": 0,
             "command": "echo out-line; echo err-line >&2; seq 1 5000; exit 3"},
        )  # fmt: skip
        await poll(lambda: _finished(api, noisy), "the command to finish")
        rows = await api.pool.fetch(
            "SELECT level, message FROM task_logs WHERE task_id = $1 ORDER BY id", noisy
        )
        lines = [(r["level"], r["message"]) for r in rows]
        assert ("info", "stdout: out-line") in lines
        assert ("warn", "stderr: err-line") in lines
        assert lines[-1] == ("error", "exit code 3")
        assert len(lines) <= 210, "output is bounded per run"
        assert any("lines not logged" in m for _, m in lines)


# --- worker_id, rate-limit headers, /health --------------------------------------------------


async def test_worker_id_stays_after_the_run_completes(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        task_id = await create(api, http_task(action={"kind": "http", "url": receiver.url + "/w"}))
        await poll(lambda: _finished(api, task_id), "the run to finish")
    _, body, _ = await api.call("GET", f"/api/tasks/{task_id}")
    assert body["data"]["status"] == "completed"
    assert body["data"]["worker_id"] == "w-test"


async def test_rate_limit_headers_say_the_documented_limit(api: Api) -> None:
    _, _, response = await api.call("GET", "/api/tasks")
    assert response.headers["X-RateLimit-Limit"] == "100"
    assert 0 <= int(response.headers["X-RateLimit-Remaining"]) <= 100


# /health's "redis" key: test_messages_surface.py::test_health_probes_the_broker[redis] and the
# health tests beside it.


# --- a one-shot in the past, on every surface --------------------------------------------------


async def test_seed_002s_past_scheduled_at_runs_at_once_and_is_recorded_late(api: Api) -> None:
    asked = "2024-01-15T10:00:00Z"
    async with callbacks_running(api) as receiver:
        status, body, _ = await api.call(
            "POST",
            "/api/tasks",
            json=http_task(scheduled_at=asked, action={"kind": "http", "url": receiver.url + "/p"}),
        )
        assert status == 201, body
        task_id = body["data"]["id"]
        assert body["data"]["scheduled_at"] == asked
        await receiver.wait_for("/p", 1)
        await poll(lambda: _finished(api, task_id), "the late run to finish")
    due_at = await api.pool.fetchval(
        "SELECT data->>'due_at' FROM events WHERE stream_id = $1 AND type = 'task.dispatched'",
        f"task-{task_id}",
    )
    assert datetime.fromisoformat(due_at) == datetime(2024, 1, 15, 10, tzinfo=UTC)


async def test_publish_and_messages_keep_a_past_time_as_written_like_api(api: Api) -> None:
    status, answer = await publish(api, publish_body(api))  # the document's 2024 example
    assert status == 200, answer
    _, task, _ = await api.call("GET", f"/api/tasks/{answer['taskId']}")
    assert task["data"]["scheduled_at"] == "2024-03-20T12:00:00Z"
    status, body, _ = await api.call(
        "POST",
        "/messages",
        json={"id": "late-one", "scheduleTo": "2024-12-25T10:30:00Z", "payload": {},
              "webhookUrl": "https://example.com/hook"},
        headers={"Authorization": f"Bearer {MESSAGES_TOKEN}"},
    )  # fmt: skip
    assert status in (200, 201), body
    expr = await api.pool.fetchval("SELECT schedule_expr FROM task_view WHERE name = 'late-one'")
    assert expr == "2024-12-25T10:30:00Z"


# --- seed 004 speaks its own words and shows the last outcome ---------------------------------


AGENT = "00000000-0000-4000-8000-000000000001"


async def test_agent_tasks_show_the_last_outcome_and_say_canceled(api: Api) -> None:
    async with callbacks_running(api) as receiver:
        status, task, _ = await api.call(
            "POST",
            "/tasks",
            json={"title": "t", "description": "d", "schedule_kind": "once",
                  "schedule_expr": datetime.now(UTC).isoformat(), "created_by": AGENT,
                  "payload": {"action": {"kind": "http", "url": receiver.url + "/a"}}},
        )  # fmt: skip
        assert status == 201, task
        assert task["last_outcome"] is None
        await poll(lambda: _finished(api, task["id"]), "the once run to finish")
    _, done, _ = await api.call("GET", f"/tasks/{task['id']}")
    assert (done["status"], done["next_run_at"], done["last_outcome"]) == (
        "active", None, "completed"
    )  # fmt: skip
    status, other, _ = await api.call(
        "POST",
        "/tasks",
        json={"title": "t", "description": "d", "schedule_kind": "cron",
              "schedule_expr": "0 9 * * *", "created_by": AGENT, "payload": {}},
    )  # fmt: skip
    _, cancelled, _ = await api.call("POST", f"/tasks/{other['id']}/cancel")
    assert cancelled["status"] == "canceled"
    for verb in ("pause", "resume", "run_now"):
        status, refused, _ = await api.call("POST", f"/tasks/{other['id']}/{verb}")
        assert status == 409, refused
        assert "cancelled" not in refused["message"] and "canceled" in refused["message"]


async def test_cancel_cancels_a_handlers_coroutine_within_a_second(api: Api) -> None:
    assert "waits-until-stopped" in load_handler_modules(["tests.integration.sample_handlers"])
    async with callbacks_running(api):
        task_id = await create(
            api, {"name": "waits", "action": {"kind": "handler", "name": "waits-until-stopped"}}
        )

        async def started() -> bool:
            return task_id in sample_handlers.STARTED

        await poll(started, "the handler to start")
        sent = await stop_run(api, task_id, "cancel")

        async def stopped() -> bool:
            return task_id in sample_handlers.STOPPED_AT

        await poll(stopped, "the handler to be cancelled", timeout=5)
        took = sample_handlers.STOPPED_AT[task_id] - sent
        assert took < STOP_BOUND_SECONDS, f"the handler was cancelled {took:.3f} s after"
        await assert_recorded_as_cancelled(api, task_id, "cancel")


async def test_without_the_signal_the_heartbeat_still_stops_a_cancelled_run(rig: Rig) -> None:
    # This executor never listens (as when a worker's listening connection is down): its
    # heartbeat, every third of the 3 s lease, finds the run no longer running.
    _, stop, loops = await run_schedulers(rig)
    async with holding_receiver() as held:
        task = await rig.create(
            "/held", action=HttpAction(url=held.url + "/held"), timeout_seconds=60
        )
        call = await held.first_call()
        sent = time.monotonic()
        await rig.tasks.execute(rig.project, task.task_id, CancelTask(), actor=USER)
        await asyncio.wait_for(call.closed.wait(), 5)
        assert call.closed_at is not None
        assert call.closed_at - sent < rig.executor.lease_seconds / 3 + 0.5
    await stop_all(stop, loops)
    assert "task.completed" not in await rig.types(task.task_id)
