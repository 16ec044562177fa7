"""The OpenAPI document is generated, valid 3.1, and covers every route; Swagger UI is served."""

from __future__ import annotations

import json

import asyncpg
from openapi_spec_validator import validate

from services.gateway.app import ROOT_SURFACES, gateway_document
from services.surfaces.api_surface.history import HISTORY_ROUTES
from services.surfaces.api_surface.surface import SURFACE as API_SURFACE
from services.surfaces.api_surface.tasks import ROUTES
from tests.integration.api_harness import running_api


async def test_openapi_document_is_valid_and_complete(pool: asyncpg.Pool) -> None:
    async with running_api(pool) as api:
        async with api.session.get(api.base + "/api/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        async with api.session.get(api.base + "/api/docs") as r:
            assert r.status == 200
            page = await r.text()
        assert "/api/openapi.json" in page and "swagger-ui-bundle.js" in page
        async with api.session.get(api.base + "/api/docs/assets/swagger-ui-bundle.js") as r:
            assert r.status == 200
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for route in ROUTES + HISTORY_ROUTES:
        operation = doc["paths"]["/api" + route.path][route.method.lower()]
        assert str(route.status) in operation["responses"]
    redeliver = doc["paths"]["/api/webhooks/{id}/deliveries/{delivery_id}/redeliver"]["post"]
    assert "202" in redeliver["responses"] and "404" in redeliver["responses"]
    runs = doc["paths"]["/api/tasks/{id}/runs"]["get"]["responses"]["200"]
    assert runs["content"]["application/json"]["schema"]["$ref"].endswith("RunsEnvelope")
    create = doc["paths"]["/api/tasks"]["post"]
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["required"] == ["name"]
    assert {"command", "action", "schedule", "scheduled_at", "payload", "dedupe_key"} <= set(
        schema["properties"]
    )
    listing = doc["paths"]["/api/tasks"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "status",
        "tag",
        "page",
        "limit",
        "sort",
        "order",
    }


async def test_the_root_document_covers_every_surface_as_committed(pool: asyncpg.Pool) -> None:
    async with running_api(pool) as api:
        async with api.session.get(api.base + "/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
    validate(doc)
    assert doc == json.loads(json.dumps(gateway_document()))
    operations = {(m, p) for p, item in doc["paths"].items() for m in item}
    for surface in (API_SURFACE, *ROOT_SURFACES):
        for route in surface.routes:
            assert (route.method.lower(), surface.prefix + route.path) in operations
    # Seed 000 answers 400 for every bad input, so its document promises no 422.
    assert "422" not in doc["paths"]["/publish"]["post"]["responses"]
    assert "422" in doc["paths"]["/messages"]["post"]["responses"]
