"""The one outbound HTTP client for callbacks and webhooks; it refuses internal destinations.

Tenant-chosen URLs are fetched from inside our network, so every request goes through two checks
from `infra.egress_guard` (see its docstring for the threat model):

1. Connect time, on the addresses actually used. The session's connector resolves names through
   `GuardedResolver`, which asks the real resolver and drops every forbidden address from the
   answer before the connector sees it (raising EgressRefused if none is left). Checking a name
   in advance and connecting later would be defeated by DNS rebinding; here the address that is
   checked is the address that is dialled. aiohttp caches only these filtered answers.
2. Before each request, `check_url`. aiohttp never calls the resolver for hosts that look like IP
   literals (it connects to them directly), so literals — in every inet_aton spelling — must be
   refused up front; this also refuses bad schemes, userinfo and local host names without DNS.

Other choices that keep the client safe to point at arbitrary URLs: redirects are never followed
(a 3xx is returned as-is, so a public URL cannot bounce us to an internal one); environment
proxies are ignored and no cookies are kept between requests (tenants share the session); the
body is read in chunks and reading stops at `max_response_bytes`; responses are not decompressed
(`Accept-Encoding: identity` is sent unless the caller says otherwise) so a small compressed
answer cannot expand in memory; error messages carry no header values or URL query strings.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from types import TracebackType

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult

from infra.egress_guard import (
    BLOCKED_DESTINATION,
    EgressRefused,
    IPNetwork,
    check_url,
    is_forbidden,
    literal_ip,
    parse_allow_list,
)

__all__ = [
    "EgressClient",
    "EgressConnectionError",
    "EgressRefused",
    "EgressResponse",
    "EgressTimeout",
    "GuardedResolver",
]

USER_AGENT = "taskstream/0.1"
_CHUNK = 64 * 1024
_METHOD = re.compile(r"[A-Z]+")


class EgressTimeout(Exception):
    """The request did not complete within its total timeout."""


class EgressConnectionError(Exception):
    """The connection failed or broke; the message names no header values."""


class EgressResponse(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    # Lower-case names; repeated headers are joined with ", ".
    headers: dict[str, str]
    # At most `max_response_bytes`; `truncated` says whether the server sent more.
    body: bytes
    truncated: bool
    elapsed_ms: float


class GuardedResolver(AbstractResolver):
    """Resolve with `inner` and drop every address `is_forbidden` refuses (DNS rebinding guard)."""

    def __init__(self, allow: tuple[IPNetwork, ...], inner: AbstractResolver) -> None:
        self._allow = allow
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept = []
        for answer in answers:
            address = literal_ip(answer["host"])
            if address is not None and not is_forbidden(address, self._allow):
                kept.append(answer)
        if not kept:
            raise EgressRefused(BLOCKED_DESTINATION, f"host {host!r} resolves to no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class EgressClient:
    """`async with EgressClient(settings.egress_allow_cidrs) as client: await client.request(…)`.

    `resolver` replaces the inner resolver (default: aiohttp.ThreadedResolver); its answers are
    still filtered. The allow-list is parsed here, so a bad one fails at construction.
    """

    def __init__(
        self,
        allow_cidrs: str,
        max_response_bytes: int = 64 * 1024,
        connect_timeout: float = 5,
        total_timeout: float = 30,
        *,
        resolver: AbstractResolver | None = None,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self.allow = parse_allow_list(allow_cidrs)
        self.max_response_bytes = max_response_bytes
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self._inner_resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EgressClient:
        inner = self._inner_resolver or aiohttp.ThreadedResolver()
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow, inner))
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(
                total=self.total_timeout, sock_connect=self.connect_timeout
            ),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-call override of total_timeout
    ) -> EgressResponse:
        """Send one request; never follows redirects.

        Raises EgressRefused (forbidden destination or bad URL), EgressTimeout (the whole
        exchange, body included, took longer than `timeout`, default `total_timeout`) or
        EgressConnectionError. Any HTTP status, 3xx included, is returned as a response.
        """
        if self._session is None:
            raise RuntimeError("EgressClient is not open; use `async with EgressClient(...)`")
        method = method.upper()
        if not _METHOD.fullmatch(method):
            raise ValueError(f"invalid HTTP method {method!r}")
        host = check_url(url, self.allow)
        send_headers = dict(headers or {})
        present = {name.lower() for name in send_headers}
        if "user-agent" not in present:
            send_headers["User-Agent"] = USER_AGENT
        if "accept-encoding" not in present:
            send_headers["Accept-Encoding"] = "identity"
        data = body.encode() if isinstance(body, str) else body
        limit = self.total_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                async with self._session.request(
                    method,
                    url,
                    headers=send_headers,
                    data=data,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=limit, sock_connect=self.connect_timeout),
                ) as response:
                    content, truncated = await self._read_capped(response)
                    status = response.status
                    received: dict[str, str] = {}
                    for name, value in response.headers.items():
                        key = name.lower()
                        received[key] = f"{received[key]}, {value}" if key in received else value
        except EgressRefused:
            raise
        except TimeoutError:
            raise EgressTimeout(f"{method} to {host} timed out after {limit:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.__cause__, EgressRefused):
                raise exc.__cause__ from None
            raise EgressConnectionError(_describe(method, host, exc)) from None
        except aiohttp.InvalidURL:
            raise EgressRefused("bad_url", "the URL cannot be used") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise EgressConnectionError(_describe(method, host, exc)) from None
        return EgressResponse(
            status=status,
            headers=received,
            body=content,
            truncated=truncated,
            elapsed_ms=(time.monotonic() - started) * 1000.0,
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """Read at most `max_response_bytes`; reading stops (and the connection is dropped) once
        the server is known to have sent more."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await response.content.read(min(_CHUNK, self.max_response_bytes - size + 1))
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_response_bytes:
                response.close()
                return b"".join(chunks)[: self.max_response_bytes], True


def _describe(method: str, host: str, exc: BaseException) -> str:
    """Class name and OS error only: aiohttp's own messages may quote headers or the full URL."""
    detail = type(exc).__name__
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(os_error, OSError) and os_error.strerror:
        detail += f" ({os_error.strerror})"
    return f"{method} to {host} failed: {detail}"
