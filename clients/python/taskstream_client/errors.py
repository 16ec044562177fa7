"""Typed errors: one class per HTTP status the API answers with, each carrying the request id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec


class TaskstreamError(Exception):
    """Base of every error this client raises."""


class APIConnectionError(TaskstreamError):
    """No answer: the connection failed or timed out (after the retries)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APIError(TaskstreamError):
    """The API answered with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {message}" + (f" [request {request_id}]" if request_id else ""))
        self.status = status
        self.message = message
        self.code = code
        self.field = field
        self.details = dict(details or {})
        self.request_id = request_id
        self.headers = dict(headers or {})


class BadRequest(APIError):
    """400: the body is not JSON or not an object."""


class AuthenticationError(APIError):
    """401: missing or invalid API key or token."""


class PermissionDenied(APIError):
    """403."""


class NotFound(APIError):
    """404: no such object in the caller's project (another project's object is a 404 too)."""


class NotAcceptable(APIError):
    """406: the requested API version is not served."""


class Conflict(APIError):
    """409: the object's current state forbids the change (or a limit is reached)."""


class PayloadTooLarge(APIError):
    """413."""


class UnsupportedMediaType(APIError):
    """415."""


class ValidationError(APIError):
    """422: `field` names the offending field (dotted, e.g. `action.url`)."""


class RateLimited(APIError):
    """429: `retry_after` is the number of seconds the server asked to wait (None if unsaid)."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)


class ServerError(APIError):
    """5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    406: NotAcceptable,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationError,
    429: RateLimited,
}


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None
    details: dict[str, Any] = {}
    field: str | None = None


class _ErrorEnvelope(msgspec.Struct):
    # /api answers {"error": {...}}; other surfaces put a string there or answer flat.
    error: _ErrorBody | str | None = None
    message: str | None = None
    detail: str | None = None
    field: str | None = None


def error_from(
    status: int, body: bytes, headers: Mapping[str, str], request_id: str | None
) -> APIError:
    """The typed error for an answer with `status`, whatever shape the surface gave its body."""
    code = message = field = None
    details: dict[str, Any] = {}
    try:
        parsed = msgspec.json.decode(body, type=_ErrorEnvelope)
    except msgspec.DecodeError:
        parsed = _ErrorEnvelope()
    if isinstance(parsed.error, _ErrorBody):
        code, message, details = parsed.error.code, parsed.error.message, parsed.error.details
        field = parsed.error.field or details.get("field")
    else:
        message = parsed.error or parsed.message or parsed.detail
        field = parsed.field
    if message is None:
        message = body.decode(errors="replace")[:200] or f"HTTP {status}"
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return cls(
        status,
        message,
        code=code,
        field=field,
        details=details,
        request_id=request_id,
        headers=headers,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date), None when absent or bad."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
