"""Headers a user may give an outbound call, and how their values are kept out of the log.

One rule for every surface: a user's headers may add meaning to a request but never change its
framing or routing. The client computes `Content-Length`, chooses the connection, and names the
host from the URL; a user-supplied `Transfer-Encoding: chunked` beside the client's own
`Content-Length` lets a receiver that follows RFC 9112 parse a second, hidden request out of the
body (request smuggling), and a wrong `Content-Length` hangs every attempt until its timeout.

Header values are credentials as often as not (`Authorization`, API keys), and the log is kept
forever and streamed to Kafka, so what the log and the views hold is only the names, each with
the value `REDACTED`, and a reference to the encrypted values (`HttpAction.secret_ref`).
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.errors import ValidationError

MAX_HEADERS = 50
MAX_HEADER_BYTES = 8 * 1024

# What API answers, events and views show in place of every header value (write-only, as
# GitHub shows secrets). On an update, a header given with this value keeps its stored value.
REDACTED = "***"

# Framing, connection management and routing belong to the client (RFC 9110 §7.6.1 hop-by-hop
# fields, RFC 9112 §6 message framing).
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    }
)
FORBIDDEN_PREFIXES = ("proxy-",)

# RFC 9110 §5.6.2: token = 1*tchar.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_BAD_VALUE_CHARS = ("\r", "\n", "\0")


def is_token(name: str) -> bool:
    """Whether `name` is an RFC 9110 token (the grammar of a field name)."""
    return bool(name) and all(c in _TCHAR for c in name)


def validate_headers(headers: Mapping[str, str], field: str) -> None:
    """Refuse headers that could change the request's framing; the message names the header."""
    if len(headers) > MAX_HEADERS:
        raise ValidationError(
            f"{len(headers)} headers; at most {MAX_HEADERS} are allowed", field=field
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in headers.items())
    if size > MAX_HEADER_BYTES:
        raise ValidationError(
            f"headers total {size} bytes; the limit is {MAX_HEADER_BYTES}", field=field
        )
    seen: set[str] = set()
    for name, value in headers.items():
        if not is_token(name):
            raise ValidationError(f"header name {name!r} is not an RFC 9110 token", field=field)
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith(FORBIDDEN_PREFIXES):
            raise ValidationError(
                f"header {name!r} controls the connection or message framing and is set by"
                " the client itself",
                field=field,
            )
        if lower in seen:
            raise ValidationError(f"header {name!r} is given twice", field=field)
        seen.add(lower)
        for char in _BAD_VALUE_CHARS:
            if char in value:
                raise ValidationError(
                    f"header {name!r} has a value containing {char!r}", field=field
                )


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """The same names, each with the value `REDACTED`."""
    return dict.fromkeys(headers, REDACTED)


def with_kept_values(given: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """`given`, where a `REDACTED` value keeps the value stored under that name (if any).

    This lets a client send back the headers a GET showed it and change only some values.
    """
    return {
        name: stored.get(name, value) if value == REDACTED else value
        for name, value in given.items()
    }
