"""JSON responses and typed query strings, through the one codec."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from infra.json_codec import encode
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import field_of

T = TypeVar("T")


def respond(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response encoded by msgspec."""
    return web.Response(
        body=encode(body), status=status, content_type="application/json", headers=headers
    )


def read_query(request: web.Request, type_: type[T]) -> T:
    """Decode the query string into `type_`; a bad parameter is a 422 naming it."""
    raw: dict[str, str] = {}
    for key, value in request.query.items():
        if key in raw:
            raise HttpProblem(
                422, "validation_error", f"query parameter {key!r} given twice", field=key
            )
        raw[key] = value
    try:
        return msgspec.convert(raw, type_, strict=False)
    except msgspec.ValidationError as exc:
        field = field_of(str(exc))
        message = f"query parameter {field or ''}: {exc}".replace("$.", "")
        if field is not None and (words := _enum_of(type_, field)):
            message += f"; one of: {', '.join(words)}"
        raise HttpProblem(422, "validation_error", message, field=field) from None


@lru_cache(maxsize=64)
def _query_schema(type_: Any) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(type_)
    return schema


def _enum_of(type_: Any, field: str) -> list[str]:
    """The words a query parameter accepts, when it is an enumeration."""
    schema = _query_schema(type_)
    name = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    prop = schema.get("$defs", {}).get(name, {}).get("properties", {}).get(field, {})
    for option in [prop, *prop.get("anyOf", [])]:
        if "enum" in option:
            return [str(word) for word in option["enum"]]
    return []


def check_page(limit: int, offset: int, max_limit: int) -> None:
    """A limit/offset pair in range, or a 422 naming the one that is not."""
    if not 1 <= limit <= max_limit:
        raise HttpProblem(
            422, "validation_error", f"limit must be between 1 and {max_limit}", field="limit"
        )
    if offset < 0:
        raise HttpProblem(422, "validation_error", "offset must be 0 or more", field="offset")
