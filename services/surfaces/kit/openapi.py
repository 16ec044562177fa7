"""OpenAPI 3.1 generated from the surfaces' route tables and their msgspec structs, and Swagger UI.

One document covers every surface (`/openapi.json`); each surface lists its routes once, in its
route table, and joins the document by being in the gateway's list of surfaces. What a route
refuses is stated from what the kit enforces for it: 400 (malformed request, NUL bytes) always,
401 and 429 where it authenticates, 404 for a path with an id, 413/415 where it reads a body, and
the route's own `errors`. Limits (bounds, enums, required fields, formats) come from the structs.

Swagger UI 5 (the first to read OpenAPI 3.1) comes from the `fastapi-swagger` wheel, installed
without its dependencies purely for its static files; the package itself is never imported.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
from aiohttp import web

from services.surfaces.kit.route_table import Route

_PATH_PARAM = re.compile(r"{(\w+)}")
REF = "#/components/schemas/{name}"


class DocumentedSurface(Protocol):
    """What the document needs of a surface (`surface.Surface` is one)."""

    @property
    def routes(self) -> Sequence[Route]: ...
    @property
    def error_type(self) -> Any: ...
    @property
    def prefix(self) -> str: ...
    @property
    def validation_status(self) -> int: ...


def openapi_document(
    surfaces: Sequence[DocumentedSurface], *, title: str, version: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `surfaces`."""
    types: list[Any] = []
    for surface in surfaces:
        types.append(surface.error_type)
        for r in surface.routes:
            types += [t for t in (r.response, r.body, r.query) if t is not None]
    types = list(dict.fromkeys(types))
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    by_type = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for surface in surfaces:
        for r in surface.routes:
            paths.setdefault(surface.prefix + r.path, {})[r.method.lower()] = _operation(
                r, surface, by_type, components
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`ApiKey <key>`",
                },
                "Bearer": {"type": "http", "scheme": "bearer", "description": "API key or JWT"},
            },
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
    }


def _operation(
    r: Route, surface: DocumentedSurface, by_type: dict[Any, Any], components: dict[str, Any]
) -> dict[str, Any]:
    path_params = _PATH_PARAM.findall(r.path)
    op: dict[str, Any] = {
        "summary": r.summary,
        "operationId": _operation_id(surface.prefix, r),
        "tags": list(r.tags),
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in path_params
        ],
        "responses": {
            str(r.status): {
                "description": "OK",
                "content": {"application/json": {"schema": by_type[r.response]}},
            }
        },
    }
    if r.query is not None:
        op["parameters"] += _query_parameters(components[_name(by_type[r.query])])
    if r.body is not None:
        content: dict[str, Any] = {"schema": by_type[r.body]}
        if r.example is not None:
            content["examples"] = {"example": {"value": r.example}}
        op["requestBody"] = {"required": True, "content": {"application/json": content}}
    error = {"application/json": {"schema": by_type[surface.error_type]}}
    for status in sorted(_refusals(r, surface)):
        op["responses"][str(status)] = {
            "description": _REASONS.get(status, "Error"),
            "content": error,
        }
    if not r.auth:
        op["security"] = []
    for name, value in r.extra.items():  # e.g. header parameters: added to the derived ones
        op[name] = op.get(name, []) + value if name == "parameters" else value
    return op


def _refusals(r: Route, surface: DocumentedSurface) -> set[int]:
    statuses = {400, *r.errors}
    if r.auth:
        statuses |= {401, 429}
    if _PATH_PARAM.search(r.path):
        statuses.add(404)
    if r.body is not None:
        statuses |= {413, 415, surface.validation_status}
    if r.query is not None:
        statuses.add(surface.validation_status)
    if surface.validation_status != 422:
        statuses.discard(422)
    return statuses


_REASONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the task's current state",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Validation error naming the field",
    429: "Too many requests (rate limit, or failed authentications from this address)",
}


def _name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _operation_id(prefix: str, route: Route) -> str:
    words = re.sub(r"[{}]", "", prefix + route.path).strip("/").replace("/", "_")
    return f"{route.method.lower()}_{words}"


def _query_parameters(component: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(component.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in component.get("properties", {}).items()
    ]


def swagger_assets() -> Path | None:
    """Where Swagger UI's files are, if installed."""
    spec = importlib.util.find_spec("fastapi_swagger")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources"
    return folder if (folder / "swagger-ui-bundle.js").exists() else None


def swagger_page(spec_url: str, assets_url: str) -> str:
    """The HTML page that loads Swagger UI on `spec_url`."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>taskstream API</title>
<link rel="stylesheet" href="{assets_url}/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="{assets_url}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{spec_url}", dom_id: "#ui"}});</script>
</body></html>"""


def add_docs_routes(app: web.Application, document: dict[str, Any], *, mount: str) -> None:
    """Serve `/openapi.json` and `/docs` (Swagger UI) on `app`, mounted at `mount`."""
    encoded = msgspec.json.encode(document)

    async def spec(_: web.Request) -> web.Response:
        return web.Response(body=encoded, content_type="application/json")

    async def docs(_: web.Request) -> web.Response:
        if swagger_assets() is None:
            return web.Response(
                status=503,
                text="Swagger UI assets are not installed: pip install --no-deps fastapi-swagger",
            )
        page = swagger_page(f"{mount}/openapi.json", f"{mount}/docs/assets")
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/openapi.json", spec)
    app.router.add_get("/docs", docs)
    if (assets := swagger_assets()) is not None:
        app.router.add_static("/docs/assets", assets)
