"""What a run of a task does: call a URL, invoke a registered handler, or run a command."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from domain.errors import ValidationError
from domain.http_headers import validate_headers

MAX_BODY_BYTES = 10 * 1024
MAX_URL_LENGTH = 2048
# Cloud metadata endpoints are refused at write time; the egress guard checks again at connect time.
METADATA_HOSTS = frozenset(
    {"169.254.169.254", "fd00:ec2::254", "metadata.google.internal", "100.100.100.200"}
)

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class HttpAction(msgspec.Struct, frozen=True, kw_only=True, tag="http", tag_field="kind"):
    """Call `url` with `method`, `headers` and `body`; a 2xx answer is success.

    As stored (events, views, API answers) every header value is `***` and `secret_ref` names
    the encrypted values, which only the worker making the call decrypts (docs/secrets.md).
    A caller's `secret_ref` is never trusted: each create or update sets it afresh.
    """

    url: str
    method: HttpMethod = "POST"
    headers: dict[str, str] = {}
    body: str | None = None
    timeout_seconds: float = 30.0
    secret_ref: str | None = None


class HandlerAction(msgspec.Struct, frozen=True, kw_only=True, tag="handler", tag_field="kind"):
    """Invoke the Python callable registered under `name` with the task's payload."""

    name: str


class CommandAction(msgspec.Struct, frozen=True, kw_only=True, tag="command", tag_field="kind"):
    """Run `command` in a subprocess; only where the operator allowed commands."""

    command: str


Action = HttpAction | HandlerAction | CommandAction


def validate_action(action: Action, *, allow_commands: bool, field: str = "action") -> Action:
    """Return the action if it may be stored, else raise ValidationError naming the field."""
    if isinstance(action, HttpAction):
        validate_url(action.url, f"{field}.url")
        if action.body is not None and len(action.body.encode()) > MAX_BODY_BYTES:
            raise ValidationError(
                f"body is {len(action.body.encode())} bytes; the limit is {MAX_BODY_BYTES}",
                field=f"{field}.body",
            )
        validate_headers(action.headers, f"{field}.headers")
        if not 0 < action.timeout_seconds <= 900:
            raise ValidationError(
                "timeout_seconds must be in (0, 900]", field=f"{field}.timeout_seconds"
            )
    elif isinstance(action, HandlerAction):
        if not action.name or len(action.name) > 200:
            raise ValidationError("handler name must be 1-200 characters", field=f"{field}.name")
    else:
        if not allow_commands:
            raise ValidationError(
                "command actions are disabled: the operator must allow them (--allow-commands)",
                field=f"{field}.command" if field == "action" else field,
            )
        if not action.command.strip() or len(action.command) > 4096:
            raise ValidationError("command must be 1-4096 characters", field=f"{field}.command")
    return action


def http_status_of(result: object) -> int | None:
    """The status code an HTTP action's result records (`{"status": 200, ...}`), if any."""
    if isinstance(result, dict):
        status = result.get("status")
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def validate_url(url: str, field: str) -> None:
    """An absolute http(s) URL without credentials that is not a cloud metadata address."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"URL longer than {MAX_URL_LENGTH} characters", field=field)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ValidationError(f"invalid URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("URL scheme must be http or https", field=field)
    if not host:
        raise ValidationError("URL has no host", field=field)
    if parts.username or parts.password:
        raise ValidationError("URL must not carry credentials; use headers", field=field)
    if _is_metadata_host(host):
        raise ValidationError(
            f"host {host!r} is a cloud metadata address and is never called", field=field
        )


def _is_metadata_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in METADATA_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) in METADATA_HOSTS
