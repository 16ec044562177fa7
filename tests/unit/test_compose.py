"""docker-compose.yml agrees with the code: Docker cannot run here, so the file is read instead."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import yaml

from infra.settings import PREFIX, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_has_an_image_and_a_health_check() -> None:
    services = compose()["services"]
    assert {"postgres", "gateway"} <= set(services)
    for name, service in services.items():
        assert service.get("image"), name
        assert service.get("healthcheck", {}).get("test"), name


def test_gateway_environment_is_known_settings_and_loads() -> None:
    gateway = compose()["services"]["gateway"]
    env = {k: str(v) for k, v in gateway["environment"].items()}
    known = {PREFIX + f.name.upper() for f in msgspec.structs.fields(Settings)}
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    settings = load_settings(env)
    db = urlsplit(settings.database_url or "")
    postgres = compose()["services"]["postgres"]["environment"]
    assert db.hostname == "postgres" and db.port == 5432
    assert (db.username, db.password, db.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )


def test_gateway_waits_for_a_healthy_database_and_serves_its_port() -> None:
    gateway = compose()["services"]["gateway"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "8080:8080" in gateway["ports"]
    assert gateway["command"][:2] == ["taskstream", "dev"] and "8080" in gateway["command"]
    assert (REPO / "Dockerfile").exists()
