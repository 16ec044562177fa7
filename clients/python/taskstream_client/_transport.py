"""What the sync and async clients share: building requests, deciding retries, reading answers.

Only the waiting and the sending differ between the two, so each client's send loop is a few
lines around `Transport.prepare`, `Transport.retry_delay` and `Transport.read`.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import msgspec

from taskstream_client._operations import NO_BODY, Call
from taskstream_client.errors import error_from, retry_after_seconds

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8080"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
_ENCODER = msgspec.json.Encoder()


class _Envelope(msgspec.Struct, Generic[T]):
    data: T
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the call for the next one (None on the last)."""

    items: list[T]
    next: Call[T] | None


@dataclass(frozen=True)
class RetryConfig:
    """Up to `max_retries` more attempts after the first, `base * 2**n` seconds apart (with
    jitter, capped at `cap`), unless the server's Retry-After says otherwise."""

    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0


def credentials(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The arguments, else TASKSTREAM_URL / TASKSTREAM_API_KEY, else the local `taskstream dev`."""
    url = base_url or os.environ.get("TASKSTREAM_URL") or DEFAULT_URL
    return url.rstrip("/"), api_key or os.environ.get("TASKSTREAM_API_KEY")


class Transport:
    def __init__(self, base_url: str, api_key: str | None, retry: RetryConfig) -> None:
        self.base_url = base_url
        self.retry = retry
        self._headers = {"Accept": "application/json", "User-Agent": "taskstream-client/0.1"}
        if api_key:
            self._headers["Authorization"] = f"ApiKey {api_key}"

    def prepare(self, call: Call[Any]) -> httpx.Request:
        """The request for `call`, sent as is on every attempt: a POST's Idempotency-Key is made
        once here, so a retry after a lost answer cannot create a second object."""
        headers = dict(self._headers)
        headers["X-Request-Id"] = f"req_{uuid.uuid4().hex}"
        if call.method == "POST":
            headers["Idempotency-Key"] = call.idempotency_key or f"idem_{uuid.uuid4().hex}"
        content = None
        if call.body is not NO_BODY:
            content = _ENCODER.encode(call.body)
            headers["Content-Type"] = "application/json"
        return httpx.Request(
            call.method,
            self.base_url + call.path,
            params=dict(call.params),
            headers=headers,
            content=content,
        )

    def retry_delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to stop. `response` None means
        the connection failed."""
        if attempt >= self.retry.max_retries:
            return None
        if response is not None and response.status_code not in RETRY_STATUSES:
            return None
        if response is not None:
            asked = retry_after_seconds(response.headers)
            if asked is not None:
                return min(asked, MAX_RETRY_AFTER)
        backoff: float = min(self.retry.cap, self.retry.base * 2**attempt)
        return backoff * (0.5 + random.random() / 2)

    def read(self, call: Call[T], request: httpx.Request, response: httpx.Response) -> Page[T]:
        """The decoded answer (a one-item page for a single object), or the typed error."""
        request_id = response.headers.get("X-Request-Id") or request.headers.get("X-Request-Id")
        if response.status_code >= 400:
            raise error_from(response.status_code, response.content, response.headers, request_id)
        if call.paging is None:
            if call.envelope:
                one = msgspec.json.decode(response.content, type=_Envelope[call.model])  # type: ignore[name-defined]
                return Page([one.data], None)
            return Page([msgspec.json.decode(response.content, type=call.model)], None)
        raw = msgspec.json.decode(response.content)
        if isinstance(raw, list):  # the /jobs surface may answer a bare array
            data, meta = raw, None
        else:
            data, meta = raw.get("data", []), raw.get("meta")
        items = msgspec.convert(data, list[call.model])  # type: ignore[name-defined]
        return Page(items, _next(call, meta, len(items)))


def _next(call: Call[T], meta: Mapping[str, Any] | None, count: int) -> Call[T] | None:
    if count == 0 or meta is None:
        return None
    params = dict(call.params)
    if call.paging == "offset":
        offset = int(meta.get("offset", 0)) + count
        if offset >= int(meta.get("total", 0)):
            return None
        params["offset"] = offset
    else:
        page = int(meta.get("page", params.get("page", 1)))
        if "pages" in meta:
            last = page >= int(meta["pages"])
        elif "total" in meta and "limit" in meta:
            last = page * int(meta["limit"]) >= int(meta["total"])
        else:  # a page with no way to tell whether more follow: stop rather than loop
            return None
        if last:
            return None
        params["page"] = page + 1
    return Call(call.method, call.path, call.model, params, call.body, call.envelope, call.paging)
