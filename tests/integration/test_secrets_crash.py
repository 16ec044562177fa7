"""kill -9 of `taskstream dev` after a create's header values were written, before its commit.

The values are written in the append's own transaction. The test holds a SHARE lock on
`task_view`, which lets the append and the `task_secrets` insert run but stops the view upsert
after them; once PostgreSQL shows that transaction holding its `task_secrets` row lock and
waiting for the view, the process is killed. Nothing of it may survive (no orphaned value, no
event), and the same create sent again after a restart works end to end.
"""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.integration.processes import free_port, loopback_env, start_dev
from tests.integration.receiver import running_receiver
from tests.integration.test_workers import eventually

SECRET = "Bearer CRASH-s3cret-90d"

_WRITTEN_AND_WAITING = """
SELECT count(*) FROM pg_locks s JOIN pg_class sc ON sc.oid = s.relation
 WHERE sc.relname = 'task_secrets' AND s.mode = 'RowExclusiveLock' AND s.granted
   AND s.pid IN (SELECT v.pid FROM pg_locks v JOIN pg_class vc ON vc.oid = v.relation
                  WHERE vc.relname = 'task_view' AND NOT v.granted)
"""
_STILL_HOLDING = """
SELECT count(*) FROM pg_locks s JOIN pg_class sc ON sc.oid = s.relation
 WHERE sc.relname = 'task_secrets' AND s.pid <> pg_backend_pid()
"""


async def test_kill_9_between_writing_the_secret_and_committing_leaves_no_orphan(
    tmp_path: Path, fresh_dsn: str
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = loopback_env(fresh_dsn, TASKSTREAM_KAFKA_ENABLED="false")
    base = f"http://127.0.0.1:{port}/api/tasks"
    async with running_receiver() as receiver:

        def task() -> dict[str, Any]:
            due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            action = {"kind": "http", "url": receiver.url + "/hook",
                      "headers": {"Authorization": SECRET}}  # fmt: skip
            return {"name": "crash", "action": action, "scheduled_at": due}

        proc = await start_dev(data_dir, port, env)
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]
        auth = {"Authorization": f"ApiKey {key}"}
        db = await asyncpg.connect(fresh_dsn)
        try:
            async with aiohttp.ClientSession(headers=auth) as http:
                blocker = db.transaction()
                await blocker.start()
                await db.execute("LOCK TABLE task_view IN SHARE MODE")
                posted = asyncio.create_task(http.post(base, json=task()))

                async def written_and_waiting() -> bool:
                    return int(await db.fetchval(_WRITTEN_AND_WAITING)) > 0

                try:
                    await eventually(written_and_waiting, timeout=20)
                finally:
                    proc.popen.send_signal(signal.SIGKILL)
                    proc.popen.wait(10)
                    await blocker.rollback()
                try:
                    await posted
                    raise AssertionError("the create answered although its process was killed")
                except aiohttp.ClientError:
                    pass

                async def abandoned() -> bool:  # the orphaned backend sees its client gone
                    return int(await db.fetchval(_STILL_HOLDING)) == 0

                await eventually(abandoned, timeout=20)
            assert await db.fetchval("SELECT count(*) FROM task_secrets") == 0
            assert await db.fetchval("SELECT count(*) FROM events WHERE type = 'task.created'") == 0
            assert await db.fetchval("SELECT count(*) FROM task_view") == 0

            proc = await start_dev(data_dir, port, env)
            try:
                async with aiohttp.ClientSession(headers=auth) as http:
                    async with http.post(base, json=task()) as r:
                        assert r.status == 201, await r.text()
                        answer = await r.json()
                (call,) = await receiver.wait_for("/hook", 1, timeout=20)
            finally:
                proc.stop()
            assert call.headers["Authorization"] == SECRET
            assert answer["data"]["action"]["headers"] == {"Authorization": "***"}
            assert await db.fetchval("SELECT count(*) FROM task_secrets") == 1
            logged = await db.fetch("SELECT data::text FROM events")
            assert logged and not any(SECRET in r[0] for r in logged)
        finally:
            await db.close()
