"""`taskstream dev` and `taskstream projects create` as a user runs them, and kill -9 mid-write."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
from collections import defaultdict
from pathlib import Path

import aiohttp
import asyncpg

from domain.api_keys import parse_key
from domain.task import fold
from infra.json_codec import decode_event, decode_state
from tests.integration.processes import cli_env, dev_server, free_port, taskstream

# Far in the future: these drills exercise the write path, not execution.
TASK = {
    "name": "t",
    "action": {"kind": "http", "url": "https://example.com/hook"},
    "scheduled_at": "2099-01-01T00:00:00Z",
}


async def _post(session: aiohttp.ClientSession, base: str, key: str) -> tuple[int, dict]:
    async with session.post(
        f"{base}/api/tasks", json=TASK, headers={"Authorization": f"ApiKey {key}"}
    ) as r:
        return r.status, await r.json()


def test_dev_on_a_bare_machine_uses_embedded_postgres_and_keeps_data(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env()  # no TASKSTREAM_DATABASE_URL: the embedded server must start
    with dev_server(data_dir, port, env) as proc:
        key_line = proc.wait_for("ts_")
        creds_path = data_dir / "credentials.json"
        assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
        creds = json.loads(creds_path.read_text())
        assert creds["api_key"] in key_line and parse_key(creds["api_key"]) is not None
        base = f"http://127.0.0.1:{port}"

        async def create() -> str:
            async with aiohttp.ClientSession() as s:
                status, body = await _post(s, base, creds["api_key"])
                assert status == 201, body
                return str(body["data"]["id"])

        task_id = asyncio.run(create())
    with dev_server(data_dir, port, env) as proc:
        assert "credentials.json" in proc.wait_for("credentials:")
        output = "\n".join(proc.drain())
        assert creds["api_key"] not in output, "the key must be printed only on first start"

        async def fetch() -> int:
            async with (
                aiohttp.ClientSession() as s,
                s.get(
                    f"http://127.0.0.1:{port}/api/tasks/{task_id}",
                    headers={"Authorization": f"Bearer {creds['api_key']}"},
                ) as r,
            ):
                return r.status

        assert asyncio.run(fetch()) == 200


def test_projects_create_prints_one_json_line(tmp_path: Path, fresh_dsn: str) -> None:
    env = cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn)
    out = subprocess.run(
        taskstream("projects", "create", "acme", "--json", "--data-dir", str(tmp_path)),
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    (line,) = out.stdout.strip().splitlines()
    created = json.loads(line)
    assert set(created) == {"project_id", "api_key"} and parse_key(created["api_key"])
    again = subprocess.run(
        taskstream("projects", "create", "acme", "--data-dir", str(tmp_path)),
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 1 and "already exists" in again.stderr


def test_kill_9_during_creates_loses_no_acknowledged_task(tmp_path: Path, fresh_dsn: str) -> None:
    """Every 201 survives; the log stays whole; the view equals a replay of the log."""
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(TASKSTREAM_DATABASE_URL=fresh_dsn, TASKSTREAM_RATE_LIMIT_PER_SECOND="0")
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[str] = []

    with dev_server(data_dir, port, env) as proc:
        key = json.loads((data_dir / "credentials.json").read_text())["api_key"]

        async def hammer() -> None:
            async with aiohttp.ClientSession() as s:
                killed = asyncio.Event()

                async def client() -> None:
                    while not killed.is_set():
                        try:
                            status, body = await _post(s, base, key)
                        except (TimeoutError, aiohttp.ClientError):
                            return
                        if status == 201:
                            acknowledged.append(body["data"]["id"])
                        if len(acknowledged) >= 300 and not killed.is_set():
                            proc.popen.send_signal(signal.SIGKILL)
                            killed.set()

                await asyncio.wait_for(asyncio.gather(*(client() for _ in range(32))), 60)

        asyncio.run(hammer())
        proc.popen.wait(10)
    assert len(acknowledged) >= 300

    with dev_server(data_dir, port, env):

        async def verify() -> None:
            async with aiohttp.ClientSession() as s:
                for task_id in acknowledged:
                    async with s.get(
                        f"{base}/api/tasks/{task_id}", headers={"Authorization": f"ApiKey {key}"}
                    ) as r:
                        assert r.status == 200, task_id
            conn = await asyncpg.connect(fresh_dsn)
            try:
                # One snapshot for both reads: log and view must be compared at the same instant.
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                events = await conn.fetch(
                    "SELECT stream_id, version, data::text FROM events"
                    " WHERE stream_id LIKE 'task-%' ORDER BY stream_id, version"
                )
                views = {
                    r["task_id"]: r
                    for r in await conn.fetch("SELECT task_id, version, state::text FROM task_view")
                }
            finally:
                await conn.close()
            streams: dict[str, list] = defaultdict(list)
            for row in events:
                streams[row["stream_id"]].append(row)
            assert len(streams) == len(views) >= len(acknowledged)
            for stream_id, rows in streams.items():
                assert [r["version"] for r in rows] == list(range(len(rows))), stream_id
                view = views[stream_id.removeprefix("task-")]
                replayed = fold(decode_event(r["data"]) for r in rows)
                assert view["version"] == rows[-1]["version"]
                assert decode_state(view["state"]) == replayed

        asyncio.run(verify())
