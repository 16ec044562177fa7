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

Connections are never shared between projects: each `tenant` (project id) gets its own
connection pool, so a receiver that mis-frames one tenant's request (or a connection left in an
odd state) cannot touch another tenant's; a call with no tenant uses a connection once. The
least recently used idle pools are closed beyond `max_tenant_pools`. The client adds no
`Content-Type` the caller did not give (aiohttp would add `application/octet-stream` to any body).

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
from collections import OrderedDict
from types import TracebackType

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult

from domain.errors import ValidationError
from domain.http_headers import validate_headers
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


class _TenantPool:
    """One tenant's session (and so connection pool), with its requests in flight."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.in_flight = 0


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
        max_tenant_pools: int = 256,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        self.allow = parse_allow_list(allow_cidrs)
        self.max_response_bytes = max_response_bytes
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_tenant_pools = max_tenant_pools
        self._inner_resolver = resolver
        self._resolver: GuardedResolver | None = None
        self._session: aiohttp.ClientSession | None = None  # tenant None: no reuse
        self._tenants: OrderedDict[str, _TenantPool] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EgressClient:
        self._resolver = GuardedResolver(
            self.allow, self._inner_resolver or aiohttp.ThreadedResolver()
        )
        self._session = self._new_session(force_close=True)
        return self

    def _new_session(self, *, force_close: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=self._resolver, force_close=force_close)
        return aiohttp.ClientSession(
            connector=connector,
            connector_owner=True,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(
                total=self.total_timeout, sock_connect=self.connect_timeout
            ),
        )

    def _pool_of(self, tenant: str) -> _TenantPool:
        pool = self._tenants.pop(tenant, None) or _TenantPool(self._new_session(force_close=False))
        self._tenants[tenant] = pool  # most recently used last
        return pool

    def _close_idle_pools(self) -> None:
        """Close the least recently used idle pools beyond the cap (busy ones stay open)."""
        excess = len(self._tenants) - self.max_tenant_pools
        for tenant in [t for t, p in self._tenants.items() if p.in_flight == 0][: max(excess, 0)]:
            closing = asyncio.create_task(self._tenants.pop(tenant).session.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        sessions = [p.session for p in self._tenants.values()]
        self._tenants.clear()
        if self._session is not None:
            sessions.append(self._session)
            self._session = None
        for session in sessions:
            await session.close()
        await asyncio.gather(*self._closing)
        if self._resolver is not None:  # shared by the connectors, which leave it open
            resolver, self._resolver = self._resolver, None
            await resolver.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per-call override of total_timeout
        tenant: str | None = None,
    ) -> EgressResponse:
        """Send one request; never follows redirects.

        `tenant` (the project the call is made for) picks the connection pool; None: a fresh
        connection, closed afterwards.

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
        try:  # checked at create/update too; here for tasks stored before that rule existed
            validate_headers(headers or {}, "headers")
        except ValidationError as exc:
            raise EgressRefused("bad_headers", exc.message) from None
        send_headers = dict(headers or {})
        present = {name.lower() for name in send_headers}
        if "user-agent" not in present:
            send_headers["User-Agent"] = USER_AGENT
        if "accept-encoding" not in present:
            send_headers["Accept-Encoding"] = "identity"
        # aiohttp would label any body application/octet-stream; the receiver gets what was asked.
        skip = () if "content-type" in present else ("Content-Type",)
        data = body.encode() if isinstance(body, str) else body
        limit = self.total_timeout if timeout is None else timeout
        pool = None if tenant is None else self._pool_of(tenant)
        session = self._session if pool is None else pool.session
        if pool is not None:
            pool.in_flight += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                async with session.request(
                    method,
                    url,
                    headers=send_headers,
                    data=data,
                    skip_auto_headers=skip,
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
        finally:
            if pool is not None:
                pool.in_flight -= 1
                self._close_idle_pools()
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
