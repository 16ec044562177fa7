"""A real TCP receiver that reads an HTTP request and never answers: it holds the call open
until the caller gives up, and records when the request arrived and when its connection closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class HeldCall:
    arrived_at: float
    request_line: str
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_at: float | None = None


@dataclass
class HoldingReceiver:
    url: str = ""
    calls: list[HeldCall] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def first_call(self, timeout: float = 10.0) -> HeldCall:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        return self.calls[0]


@asynccontextmanager
async def holding_receiver() -> AsyncIterator[HoldingReceiver]:
    receiver = HoldingReceiver()
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        call = HeldCall(time.monotonic(), head.split(b"\r\n", 1)[0].decode())
        receiver.calls.append(call)
        receiver.arrived.set()
        try:
            while await reader.read(65536):  # the body, then nothing until the caller hangs up
                pass
        except ConnectionError:
            pass
        call.closed_at = time.monotonic()
        call.closed.set()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.close()
        for writer in writers:  # wait_closed waits for every connection to end
            writer.close()
        await server.wait_closed()
