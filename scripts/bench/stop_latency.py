"""Cancel → the run really stopped, through a real `taskstream dev` process (issue 10: ≤ 1 s).

For `--runs` rounds: an HTTP task calls a receiver that holds the request open; once the call
has arrived, `POST /api/tasks/{id}/cancel`; measured until the receiver sees its connection
closed. The same for a command task (`sleep`, and one that ignores SIGTERM) until its process
is gone. Baseline in the same run: the cancel request's own round trip. Prints median and max.

    python scripts/bench/stop_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench.dev_server import dev_server  # noqa: E402
from tests.integration.holding_receiver import holding_receiver  # noqa: E402
from tests.integration.processes import pid_alive  # noqa: E402


async def _until(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        await asyncio.sleep(0.002)


async def _create(http: aiohttp.ClientSession, base: str, body: dict) -> str:
    async with http.post(f"{base}/api/tasks", json=body) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["data"]["id"])


async def _cancel(http: aiohttp.ClientSession, base: str, task_id: str) -> tuple[float, float]:
    """(when the cancel was sent, its round trip in seconds)."""
    sent = time.monotonic()
    async with http.post(f"{base}/api/tasks/{task_id}/cancel") as r:
        assert r.status == 200, await r.text()
    return sent, time.monotonic() - sent


async def http_round(http: aiohttp.ClientSession, base: str) -> tuple[float, float]:
    async with holding_receiver() as held:
        body = {"name": "held", "timeout_seconds": 120,
                "action": {"kind": "http", "url": held.url + "/hold"}}  # fmt: skip
        task_id = await _create(http, base, body)
        call = await held.first_call(timeout=30)
        sent, request = await _cancel(http, base, task_id)
        await asyncio.wait_for(call.closed.wait(), 30)
        assert call.closed_at is not None
        return call.closed_at - sent, request


async def command_round(http: aiohttp.ClientSession, base: str, script: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        pid_file = Path(tmp) / "pid"
        task_id = await _create(
            http, base, {"name": "sleeper", "timeout_seconds": 120,
                         "command": f"{script}echo $$ > {pid_file}; sleep 120; :"},
        )  # fmt: skip
        await _until(lambda: pid_file.exists() and pid_file.read_text().strip())
        pid = int(pid_file.read_text())
        sent, request = await _cancel(http, base, task_id)
        await _until(lambda: not pid_alive(pid))
        return time.monotonic() - sent, request


async def main_async(args: argparse.Namespace, base: str, key: str) -> None:
    kinds = {
        "http (held open)": lambda h: http_round(h, base),
        "command (SIGTERM)": lambda h: command_round(h, base, ""),
        "command (ignores TERM)": lambda h: command_round(h, base, "trap '' TERM; "),
    }
    print(f"machine: {os.cpu_count()} cores; {args.runs} rounds per kind")
    async with aiohttp.ClientSession(headers={"Authorization": f"ApiKey {key}"}) as http:
        for name, one in kinds.items():
            stops, requests = [], []
            for _ in range(args.runs):
                stop, request = await one(http)
                stops.append(stop * 1000)
                requests.append(request * 1000)
            print(
                f"{name:<24} stop: median {statistics.median(stops):6.1f} ms"
                f"  max {max(stops):6.1f} ms   (cancel request itself: median"
                f" {statistics.median(requests):5.1f} ms)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with dev_server(egress_allow_cidrs="127.0.0.0/8", allow_commands="true") as server:
        asyncio.run(main_async(args, server.base, server.api_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
