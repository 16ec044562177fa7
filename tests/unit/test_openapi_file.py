"""The committed openapi.yaml is the document the gateway serves; regenerate it when it drifts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from services.gateway.app import gateway_document

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "taskstream openapi --output openapi.yaml"


def test_openapi_yaml_matches_the_generated_document() -> None:
    committed = yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))
    generated = json.loads(json.dumps(gateway_document()))
    assert committed == generated, f"openapi.yaml is stale: run `{REGENERATE}`"


def test_the_document_covers_every_surface_and_states_its_limits() -> None:
    doc = gateway_document()
    paths = set(doc["paths"])
    assert {
        "/api/tasks",
        "/publish",
        "/delete",
        "/messages",
        "/health",
        "/tasks",
        "/events",
    } <= paths
    listing = {p["name"]: p for p in doc["paths"]["/api/tasks"]["get"]["parameters"]}
    assert (
        listing["limit"]["schema"]["maximum"] == 100 and listing["limit"]["schema"]["minimum"] == 1
    )
    assert listing["page"]["schema"]["maximum"] == 10_000
    assert "bogus" not in listing["status"]["schema"]["anyOf"][0]["enum"]
    agent = {p["name"]: p for p in doc["paths"]["/tasks"]["get"]["parameters"]}
    assert agent["offset"]["schema"]["maximum"] == 1_000_000
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "400" in op["responses"], (method, path)
