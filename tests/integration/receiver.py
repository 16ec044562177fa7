"""A real HTTP receiver on loopback that records every request it gets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Seen:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    seen: list[Seen] = field(default_factory=list)
    # path -> function(call number) -> (status, delay seconds[, response headers])
    behaviour: dict[str, Callable[[int], tuple[Any, ...]]] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    in_flight: int = 0
    max_in_flight: int = 0

    by_path: dict[str, list[Seen]] = field(default_factory=dict)

    def calls(self, path: str) -> list[Seen]:
        return list(self.by_path.get(path, ()))

    def record(self, seen: Seen) -> int:
        """Keep one arrival; returns how many calls its path has had (indexed: the burst
        benchmark sends tens of thousands, and a scan per request made the receiver the bound)."""
        self.seen.append(seen)
        calls = self.by_path.setdefault(seen.path, [])
        calls.append(seen)
        return len(calls)

    def clear(self) -> None:
        self.seen.clear()
        self.by_path.clear()

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Seen]:
        async def enough() -> None:
            async with self.arrived:
                await self.arrived.wait_for(lambda: len(self.calls(path)) >= count)

        await asyncio.wait_for(enough(), timeout)
        return self.calls(path)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        n = receiver.record(
            Seen(time.time(), request.method, request.path, dict(request.headers), body)
        )
        async with receiver.arrived:
            receiver.arrived.notify_all()
        status, delay, *extra = receiver.behaviour.get(request.path, lambda _: (200, 0.0))(n)
        receiver.in_flight += 1
        receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            receiver.in_flight -= 1
        return web.Response(status=status, text=f"call {n}", headers=extra[0] if extra else None)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = str(server.make_url("")).rstrip("/")
    try:
        yield receiver
    finally:
        await server.close()
