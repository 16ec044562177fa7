"""What the gateway logs about bad requests (issue 10 §4): one WARNING line each, no traceback,
and nothing a client sends can start a log line of its own."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway_process import Gateway, running_gateway


@pytest.fixture
def gateway(tmp_path: Path, fresh_dsn: str) -> Iterator[Gateway]:
    with running_gateway(tmp_path / "data", fresh_dsn) as g:
        yield g


def raw_exchange(base: str, request: bytes) -> bytes:
    """Send `request` bytes as they are and read the answer until the server closes."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def new_lines(gateway: Gateway, before: int, fragment: str, timeout: float = 5.0) -> list[str]:
    """The output lines after the first `before`, once one holding `fragment` has appeared."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = gateway.process.drain()[before:]
        if any(fragment in line for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no line with {fragment!r}: {gateway.process.drain()[before:]}")


MALFORMED = {
    "long-url": b"GET /api/tasks?x=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "long-header": b"GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "bad-content-length": b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
}


async def test_a_malformed_request_logs_one_warning_line_and_no_traceback(
    gateway: Gateway,
) -> None:
    for name, request_bytes in MALFORMED.items():
        before = len(gateway.process.drain())
        answer = await asyncio.to_thread(raw_exchange, gateway.base, request_bytes)
        assert re.match(rb"HTTP/1\.[01] 400 ", answer), (name, answer[:200])
        lines = new_lines(gateway, before, "malformed request")
        assert len(lines) == 1, (name, lines)
        assert " WARNING " in lines[0] and "Traceback" not in lines[0], (name, lines)
        assert len(lines[0]) < 600, "the warning quotes the request, but only the start of it"


async def test_a_request_cannot_forge_a_log_line(gateway: Gateway) -> None:
    forged = "2026-12-01 12:00:00,000 ERROR services.auth admin logged in"
    before = len(gateway.process.drain())
    path = "/tasks/x%00%0a" + forged.replace(" ", "%20")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: ApiKey {gateway.key}\r\n"
        "Connection: close\r\n\r\n"
    )
    answer = await asyncio.to_thread(raw_exchange, gateway.base, request.encode())
    # A malformed request after it: once its warning is out, anything the first logged is too.
    await asyncio.to_thread(raw_exchange, gateway.base, b"GET /x HTTP/1.1\r\nBad\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:300]
    lines = new_lines(gateway, before, "malformed request")
    assert not any(line.startswith(forged[:10]) and "admin" in line for line in lines), lines
    assert not any("Traceback" in line or "internal" in line for line in lines), lines
