"""Callback framing against a real aiohttp receiver that records each request as it arrived.

The receiver keeps the raw header lines (`request.raw_headers`) and the client's source port,
which names the TCP connection a request came on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from infra.egress_client import EgressClient, EgressRefused


@dataclass
class RawRequest:
    method: str
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    source_port: int

    def header_names(self) -> list[str]:
        return [name.decode().lower() for name, _ in self.raw_headers]


@dataclass
class RawReceiver:
    url: str = ""
    requests: list[RawRequest] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RawRequest(
                request.method,
                list(request.raw_headers),
                await request.read(),
                peer[1] if peer else 0,
            )
        )
        return web.Response(text="ok")


@pytest.fixture
async def raw_receiver() -> AsyncIterator[RawReceiver]:
    receiver = RawReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    receiver.url = f"http://127.0.0.1:{server.port}/hook"
    try:
        yield receiver
    finally:
        await server.close()


async def test_no_connection_is_reused_across_projects(raw_receiver: RawReceiver) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        for tenant in ("project-a", "project-b", "project-a", "project-b"):
            await client.request("POST", raw_receiver.url, body="x", tenant=tenant)
    a1, b1, a2, b2 = (r.source_port for r in raw_receiver.requests)
    assert {a1, a2}.isdisjoint({b1, b2})
    assert a1 == a2 and b1 == b2  # within one project the pool still keeps connections alive


async def test_a_call_without_a_project_uses_its_connection_once(raw_receiver: RawReceiver) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        await client.request("GET", raw_receiver.url)
        await client.request("GET", raw_receiver.url)
    first, second = raw_receiver.requests
    assert first.source_port != second.source_port


async def test_least_recently_used_idle_pools_are_closed_beyond_the_cap(
    raw_receiver: RawReceiver,
) -> None:
    async with EgressClient("127.0.0.0/8", max_tenant_pools=2) as client:
        for tenant in ("a", "b", "c", "a"):
            await client.request("GET", raw_receiver.url, tenant=tenant)
        assert len(client._tenants) == 2
    ports = [r.source_port for r in raw_receiver.requests]
    assert ports[3] != ports[0]  # a's pool was closed when c arrived, so a reconnects


async def test_no_content_type_is_added_that_the_caller_did_not_ask_for(
    raw_receiver: RawReceiver,
) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        await client.request("POST", raw_receiver.url, body=b"\x00\x01raw", tenant="p")
        await client.request(
            "POST", raw_receiver.url, body="{}", headers={"content-type": "application/json"},
            tenant="p",
        )  # fmt: skip
    bare, typed = raw_receiver.requests
    assert "content-type" not in bare.header_names()
    assert bare.body == b"\x00\x01raw"
    assert [v for n, v in typed.raw_headers if n.lower() == b"content-type"] == [
        b"application/json"
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Transfer-Encoding": "chunked"},
        {"Content-Length": "999999"},
        {"Host": "internal.example"},
        {"Connection": "keep-alive, Upgrade"},
        {"X-Split": "a\r\nX-Injected: 1"},
    ],
)
async def test_framing_headers_stored_before_the_rule_are_refused_at_call_time(
    raw_receiver: RawReceiver, headers: dict[str, str]
) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        with pytest.raises(EgressRefused) as refused:
            await client.request("POST", raw_receiver.url, headers=headers, body="x", tenant="p")
    assert refused.value.reason == "bad_headers"
    assert raw_receiver.requests == []
