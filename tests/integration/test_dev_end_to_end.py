"""`taskstream dev` as one process: a task runs on time and its lifecycle webhooks arrive signed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from standardwebhooks.webhooks import Webhook

from tests.integration.processes import free_port, loopback_env, start_dev
from tests.integration.receiver import running_receiver
from tests.integration.test_workers import eventually


async def test_dev_runs_a_task_and_delivers_signed_lifecycle_webhooks(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = loopback_env(fresh_dsn, TASKSTREAM_WEBHOOK_RETRY_SCHEDULE="0.2,0.2")
    server = await start_dev(data_dir, port, env)
    try:
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"ApiKey {key}"}
        async with running_receiver() as receiver, aiohttp.ClientSession(headers=auth) as http:
            async with http.post(
                f"{base}/api/webhooks", json={"url": receiver.url + "/hooks"}
            ) as r:
                assert r.status == 201
                secret = (await r.json())["data"]["secret"]
            due = datetime.now(UTC) + timedelta(seconds=1)
            task = {
                "name": "e2e",
                "action": {"kind": "http", "url": receiver.url + "/work", "method": "POST"},
                "scheduled_at": due.isoformat(),
            }
            async with http.post(f"{base}/api/tasks", json=task) as r:
                assert r.status == 201
                task_id = (await r.json())["data"]["id"]
            (work,) = await receiver.wait_for("/work", 1, timeout=15)
            assert work.at >= due.timestamp() - 0.01
            hooks = await receiver.wait_for("/hooks", 3, timeout=15)
            payloads = [
                Webhook(secret).verify(h.body, {k.lower(): v for k, v in h.headers.items()})
                for h in hooks
            ]
            # Deliveries run concurrently on the workers: arrival order is not promised.
            payloads.sort(key=lambda p: datetime.fromisoformat(p["timestamp"]))
            assert [p["event"] for p in payloads] == [
                "task.created",
                "task.started",
                "task.completed",
            ]
            assert {p["task"]["id"] for p in payloads} == {task_id}
            async with http.get(f"{base}/api/workers") as r:
                workers = (await r.json())["data"]
            assert len(workers) == 1 and workers[0]["status"] in ("idle", "active")

            async def counted_by_the_projector() -> bool:  # dev runs the projector too
                async with http.get(f"{base}/api/workers") as r:
                    worker = (await r.json())["data"][0]
                async with http.get(f"{base}/api/system/status") as r:
                    status = (await r.json())["data"]
                assert status["components"]["projector"]["status"] in ("healthy", "unknown")
                return bool(
                    worker["tasks_completed"] == 1 and status["task_stats"]["completed_today"] == 1
                )

            await eventually(counted_by_the_projector, timeout=15)
    finally:
        server.stop()
