"""Reading request bodies: size, content type, JSON shape and NUL checks, never `request.json()`."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from services.surfaces.kit.problems import HttpProblem

T = TypeVar("T")


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse unknown fields, so a typo is a 422 rather than silently ignored."""


_AT_PATH = re.compile(r"at `\$(.*)`")
_NAMED_FIELD = re.compile(r"field `([^`]+)`")


@lru_cache(maxsize=64)
def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(type_)


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Decode the body as `type_`, answering 400/413/415/422 problems for bad input."""
    body = await read_raw(request)
    return decode_json(body, type_)


async def read_raw(request: web.Request) -> bytes:
    """The body bytes, after checking the content type; the app's client_max_size caps the size."""
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise HttpProblem(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {content_type or 'none'}",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise HttpProblem(
            413, "payload_too_large", f"request body exceeds {request.client_max_size} bytes"
        ) from None
    if not body.strip():
        raise HttpProblem(400, "invalid_json", "request body is empty; send a JSON object")
    return body


def decode_json(body: bytes, type_: type[T]) -> T:
    """Decode JSON bytes as `type_` (see read_json)."""
    try:
        value: T = _decoder(type_).decode(body)
    except RecursionError:
        raise HttpProblem(400, "invalid_json", "JSON nested too deeply") from None
    except msgspec.ValidationError as exc:
        field = field_of(str(exc))
        raise HttpProblem(422, "validation_error", _clean(str(exc)), field=field) from None
    except msgspec.DecodeError as exc:
        raise HttpProblem(400, "invalid_json", f"malformed JSON: {exc}") from None
    if b"\\u0000" in body or b"\x00" in body:
        path = _nul_path(msgspec.json.decode(body), "")
        if path is not None:
            raise HttpProblem(
                400,
                "invalid_json",
                f"{path or 'body'}: NUL characters (\\u0000) are not allowed",
                field=path or None,
            )
    return value


def field_of(message: str) -> str | None:
    """The dotted field path named in a msgspec validation message."""
    path = ""
    if m := _AT_PATH.search(message):
        path = m.group(1).lstrip(".")
    if m := _NAMED_FIELD.search(message):
        path = f"{path}.{m.group(1)}" if path else m.group(1)
    return path or None


def _clean(message: str) -> str:
    return message.replace("`$.", "`").replace("`$", "`")


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return child
            if (found := _nul_path(item, child)) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _nul_path(item, f"{path}[{i}]")) is not None:
                return found
    return None
