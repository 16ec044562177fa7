"""What the browser tests stand on: a real `taskstream dev` over its own database, a second
project made with the real CLI, and a real HTTP receiver on a thread of its own (Playwright's
sync API owns the test thread)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.integration.dev_harness import running_dev
from tests.integration.processes import REPO, cli_env, taskstream
from tests.integration.receiver import Receiver, Seen, running_receiver


class ThreadedReceiver:
    """tests/integration/receiver.py served from a background event loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._receiver: Receiver | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with running_receiver() as receiver:
            self._receiver = receiver
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedReceiver:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the receiver did not start")
        return self

    def __exit__(self, *exc: object | TracebackType | None) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        assert self._receiver is not None
        return self._receiver.url

    def calls(self, path: str) -> list[Seen]:
        assert self._receiver is not None
        return self._receiver.calls(path)

    def behaviour(self, path: str, status: int) -> None:
        assert self._receiver is not None
        self._receiver.behaviour[path] = lambda _n: (status, 0.0)


@dataclass
class Dev:
    base: str
    key: str
    other_key: str


@contextmanager
def dev_for_browser(server_dsn: str, template_db: str, tmp: Path) -> Iterator[Dev]:
    """`taskstream dev` (no Kafka relay: nothing here reads Kafka) and a second project made
    with the real CLI."""
    env = {"TASKSTREAM_EGRESS_ALLOW_CIDRS": "127.0.0.0/8", "TASKSTREAM_RATE_LIMIT_PER_SECOND": "0"}
    with running_dev(server_dsn, template_db, tmp, **env) as dev:
        dev.process.wait_for("scheduler ", 60)
        made = subprocess.run(
            taskstream("projects", "create", "second", "--json"), cwd=REPO,
            env=cli_env(TASKSTREAM_DATABASE_URL=dev.dsn), capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
        other = json.loads(made.stdout.strip().splitlines()[-1])["api_key"]
        yield Dev(dev.base_url, dev.api_key, other)
