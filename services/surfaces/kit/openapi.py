"""OpenAPI 3.1 generated from the declared routes and their msgspec structs, and Swagger UI.

Swagger UI 5 (the first to read OpenAPI 3.1) comes from the `fastapi-swagger` wheel, installed
without its dependencies purely for its static files; the package itself is never imported.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from services.surfaces.kit.route_table import Route

_PATH_PARAM = re.compile(r"{(\w+)}")
REF = "#/components/schemas/{name}"


def openapi_document(
    routes: Sequence[Route], *, title: str, version: str, prefix: str, error_type: Any
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes` served under `prefix`."""
    types: list[Any] = [error_type]
    for r in routes:
        types += [t for t in (r.response, r.body, r.query) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    by_type = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": _operation_id(r),
            "tags": list(r.tags),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in _PATH_PARAM.findall(r.path)
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
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[r.body]}},
            }
        for status in r.errors:
            op["responses"][str(status)] = {
                "description": _REASONS.get(status, "Error"),
                "content": {"application/json": {"schema": by_type[error_type]}},
            }
        if not r.auth:
            op["security"] = []
        for name, value in r.extra.items():  # e.g. header parameters: added to the derived ones
            op[name] = op.get(name, []) + value if name == "parameters" else value
        paths.setdefault(prefix + r.path, {})[r.method.lower()] = op
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


_REASONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict with the task's current state",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Validation error naming the field",
    429: "Too many requests",
}


def _name(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


def _operation_id(route: Route) -> str:
    words = re.sub(r"[{}]", "", route.path).strip("/").replace("/", "_")
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
