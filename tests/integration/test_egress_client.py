"""EgressClient against a real aiohttp receiver on 127.0.0.1 (the only address tests may reach).

Connections go only to 127.0.0.1; addresses outside loopback appear solely in resolver answers
that the guard is checked to drop, or in calls to the resolver itself.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import ThreadedResolver, web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from infra.egress_client import (
    EgressClient,
    EgressConnectionError,
    EgressRefused,
    EgressResponse,
    EgressTimeout,
    GuardedResolver,
)
from infra.egress_guard import parse_allow_list

BIG = 5 * 1024 * 1024


class Received:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class Receiver:
    """A webhook endpoint that records every request it gets, whatever the path."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.slow_started = asyncio.Event()
        self.release = asyncio.Event()
        self.base = ""
        self.port = 0

    @web.middleware
    async def record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.method, request.path, dict(request.headers), body))
        return await handler(request)

    async def hook(self, request: web.Request) -> web.Response:
        return web.Response(status=201, body=b"accepted", headers={"X-Reply": "yes"})

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/target")

    async def target(self, request: web.Request) -> web.Response:
        return web.Response(text="target")

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG)

    async def slow(self, request: web.Request) -> web.Response:
        self.slow_started.set()
        try:
            await asyncio.wait_for(self.release.wait(), timeout=5)
        except TimeoutError:
            pass
        return web.Response(text="late")

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application(middlewares=[rec.record])
    app.router.add_route("*", "/hook", rec.hook)
    app.router.add_get("/redirect", rec.redirect)
    app.router.add_get("/target", rec.target)
    app.router.add_get("/big", rec.big)
    app.router.add_get("/slow", rec.slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    rec.port = server.port
    rec.base = f"http://127.0.0.1:{server.port}"
    try:
        yield rec
    finally:
        rec.release.set()
        await server.close()


class StubResolver(AbstractResolver):
    """Answers every name with fixed addresses (the port is the one asked for)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_post_arrives_as_sent_and_response_is_returned(receiver: Receiver) -> None:
    payload = b'{"task": "t-1", "attempt": 2}'
    async with EgressClient("127.0.0.0/8") as client:
        response = await client.request(
            "POST",
            receiver.base + "/hook?x=1",
            headers={"Content-Type": "application/json", "X-Signature": "sig-123"},
            body=payload,
        )
    assert isinstance(response, EgressResponse)
    assert response.status == 201
    assert response.body == b"accepted"
    assert response.truncated is False
    assert response.headers["x-reply"] == "yes"
    assert response.elapsed_ms > 0
    [seen] = receiver.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook", payload)
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Signature"] == "sig-123"
    assert seen.headers["User-Agent"] == "taskstream/0.1"


async def test_str_body_is_sent_as_utf8_and_user_agent_can_be_overridden(
    receiver: Receiver,
) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        response = await client.request(
            "put", receiver.base + "/hook", headers={"user-agent": "custom/1"}, body="héllo"
        )
    assert response.status == 201
    [seen] = receiver.requests
    assert (seen.method, seen.body) == ("PUT", "héllo".encode())
    assert seen.headers["User-Agent"] == "custom/1"


async def test_redirect_is_returned_not_followed(receiver: Receiver) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        response = await client.request("GET", receiver.base + "/redirect")
    assert response.status == 302
    assert response.headers["location"] == "/target"
    assert receiver.paths() == ["/redirect"]


async def test_large_response_is_capped(receiver: Receiver) -> None:
    async with EgressClient("127.0.0.0/8", max_response_bytes=65536) as client:
        response = await client.request("GET", receiver.base + "/big")
        assert response.status == 200
        assert response.truncated is True
        assert response.body == b"x" * 65536
        # The dropped connection does not break the next request.
        again = await client.request("GET", receiver.base + "/hook")
        assert (again.status, again.truncated) == (201, False)


async def test_response_of_exactly_the_cap_is_not_truncated(receiver: Receiver) -> None:
    async with EgressClient("127.0.0.0/8", max_response_bytes=len(b"accepted")) as client:
        response = await client.request("GET", receiver.base + "/hook")
    assert (response.body, response.truncated) == (b"accepted", False)


async def test_slow_handler_times_out(receiver: Receiver) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        started = time.monotonic()
        with pytest.raises(EgressTimeout):
            await client.request("GET", receiver.base + "/slow", timeout=0.5)
        elapsed = time.monotonic() - started
    assert receiver.slow_started.is_set()
    assert elapsed < 4


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook", "http://2130706433:{port}/"],
)
async def test_loopback_is_refused_without_allow_list(receiver: Receiver, url: str) -> None:
    async with EgressClient("") as client:
        with pytest.raises(EgressRefused) as caught:
            await client.request("POST", url.format(port=receiver.port), body=b"x")
    assert caught.value.reason == "blocked_destination"
    assert receiver.requests == []


async def test_name_resolving_to_loopback_is_refused_at_connect_time(receiver: Receiver) -> None:
    """The resolver path: check_url passes the name, the guarded resolver drops 127.0.0.1."""
    stub = StubResolver("127.0.0.1")
    async with EgressClient("", resolver=stub) as client:
        with pytest.raises(EgressRefused) as caught:
            await client.request("GET", f"http://rebind.example:{receiver.port}/hook")
    assert caught.value.reason == "blocked_destination"
    assert stub.asked == ["rebind.example"]
    assert receiver.requests == []


async def test_real_dns_answer_for_loopback_is_refused() -> None:
    """The guard over aiohttp's real ThreadedResolver: `localhost` always answers loopback.

    (`check_url` refuses the name `localhost` before DNS, so the resolver is driven directly.)
    """
    guard = GuardedResolver(parse_allow_list(""), aiohttp.ThreadedResolver())
    try:
        with pytest.raises(EgressRefused) as caught:
            await guard.resolve("localhost", 80)
    finally:
        await guard.close()
    assert caught.value.reason == "blocked_destination"
    allowed = GuardedResolver(parse_allow_list("127.0.0.0/8,::1/128"), aiohttp.ThreadedResolver())
    try:
        answers = await allowed.resolve("localhost", 80)
    finally:
        await allowed.close()
    assert answers and all(a["host"] in ("127.0.0.1", "::1") for a in answers)


async def test_stub_answer_in_allow_list_is_used(receiver: Receiver) -> None:
    stub = StubResolver("127.0.0.1")
    async with EgressClient("127.0.0.1/32", resolver=stub) as client:
        response = await client.request("GET", f"http://hooks.example:{receiver.port}/hook")
    assert response.status == 201
    assert receiver.paths() == ["/hook"]
    assert receiver.requests[0].headers["Host"] == f"hooks.example:{receiver.port}"


async def test_guarded_resolver_drops_forbidden_answers() -> None:
    inner = StubResolver("93.184.215.14", "127.0.0.1", "169.254.169.254", "fd00:ec2::254", "::1")
    guard = GuardedResolver(parse_allow_list(""), inner)
    kept = await guard.resolve("mixed.example", 443)
    assert [r["host"] for r in kept] == ["93.184.215.14"]
    assert kept[0]["port"] == 443

    allow_loopback = GuardedResolver(parse_allow_list("127.0.0.0/8,169.254.0.0/16"), inner)
    kept = await allow_loopback.resolve("mixed.example", 443)
    assert [r["host"] for r in kept] == ["93.184.215.14", "127.0.0.1"]


async def test_guarded_resolver_refuses_when_nothing_public_remains() -> None:
    guard = GuardedResolver(parse_allow_list(""), StubResolver("10.0.0.1", "::ffff:127.0.0.1"))
    with pytest.raises(EgressRefused) as caught:
        await guard.resolve("internal.example", 80)
    assert caught.value.reason == "blocked_destination"


async def test_guarded_resolver_with_real_resolver_refuses_localhost() -> None:
    guard = GuardedResolver(parse_allow_list(""), ThreadedResolver())
    with pytest.raises(EgressRefused):
        await guard.resolve("localhost", 80, family=socket.AF_UNSPEC)


async def test_bad_scheme_and_url_are_refused_before_any_connection(receiver: Receiver) -> None:
    async with EgressClient("127.0.0.0/8") as client:
        with pytest.raises(EgressRefused) as scheme:
            await client.request("GET", f"ftp://127.0.0.1:{receiver.port}/")
        with pytest.raises(EgressRefused) as userinfo:
            await client.request("GET", f"http://u:p@127.0.0.1:{receiver.port}/hook")
    assert (scheme.value.reason, userinfo.value.reason) == ("bad_scheme", "bad_url")
    assert receiver.requests == []


async def test_connection_refused_is_a_connection_error_without_header_values() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with EgressClient("127.0.0.0/8") as client:
            with pytest.raises(EgressConnectionError) as caught:
                await client.request(
                    "POST",
                    f"http://127.0.0.1:{port}/hook?token=secret-query",
                    headers={"Authorization": "Bearer secret-token"},
                )
    message = str(caught.value)
    assert "secret-token" not in message
    assert "secret-query" not in message
    assert "127.0.0.1" in message


async def test_request_before_open_is_an_error() -> None:
    client = EgressClient("")
    with pytest.raises(RuntimeError):
        await client.request("GET", "https://example.com/")


def test_bad_allow_list_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        EgressClient("nonsense")
