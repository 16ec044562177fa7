"""docker-compose.yml agrees with the code: Docker cannot run here, so the file is read instead."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest
import yaml

from infra.settings import PREFIX, Settings, load_settings
from services.cli import parser
from services.metrics.catalog import PROCESS_METRICS, STATE_GAUGES
from services.metrics.http import METRICS_PATH, metrics_port

REPO = Path(__file__).resolve().parents[2]
SERVICES = {
    "postgres", "kafka", "rabbitmq", "gateway", "scheduler", "worker", "relay", "projector",
    "prometheus", "grafana",
}  # fmt: skip
# The taskstream processes, each a `taskstream <subcommand>` of the one image.
PROCESSES = {"gateway", "scheduler", "worker", "relay", "projector"}
DASHBOARD = REPO / "deploy/grafana/dashboards/taskstream.json"


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def settings_of(service: str) -> Settings:
    return load_settings({k: str(v) for k, v in services()[service]["environment"].items()})


def test_every_service_has_an_image_and_a_health_check() -> None:
    assert set(services()) == SERVICES
    for name, service in services().items():
        assert service.get("image"), name
        assert service.get("healthcheck", {}).get("test"), name
    assert {services()[p]["image"] for p in PROCESSES} == {"taskstream:latest"}
    assert (REPO / "Dockerfile").exists()


@pytest.mark.parametrize("service", sorted(PROCESSES))
def test_process_environment_is_known_settings_and_loads(service: str) -> None:
    env = services()[service]["environment"]
    known = {PREFIX + f.name.upper() for f in msgspec.structs.fields(Settings)}
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    settings = settings_of(service)
    db = urlsplit(settings.database_url or "")
    postgres = services()["postgres"]["environment"]
    assert db.hostname == "postgres" and db.port == 5432
    assert (db.username, db.password, db.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )


@pytest.mark.parametrize("service", sorted(PROCESSES))
def test_process_command_is_a_cli_subcommand_named_like_the_service(service: str) -> None:
    command = services()[service]["command"]
    assert command[0] == "taskstream"
    args = parser().parse_args(command[1:])  # an unknown subcommand or flag exits here
    assert args.command == service


def test_gateway_waits_for_a_healthy_database_and_serves_its_port() -> None:
    gateway = services()["gateway"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "8080:8080" in gateway["ports"]
    assert parser().parse_args(gateway["command"][1:]).port == 8080


def test_broker_and_kafka_addresses_match_their_services() -> None:
    rabbit = services()["rabbitmq"]["environment"]
    kafka = services()["kafka"]["environment"]
    internal = re.search(r"PLAINTEXT://([^,]+)", kafka["KAFKA_ADVERTISED_LISTENERS"])
    assert internal is not None
    for service in sorted(PROCESSES):
        settings = settings_of(service)
        broker = urlsplit(settings.broker_url or "")
        assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672)
        assert (broker.username, broker.password) == (
            rabbit["RABBITMQ_DEFAULT_USER"],
            rabbit["RABBITMQ_DEFAULT_PASS"],
        )
        assert settings.kafka_bootstrap == internal.group(1)


def test_dependencies_exist_and_wait_for_health_where_it_matters() -> None:
    all_services = services()
    for name, service in all_services.items():
        assert set(service.get("depends_on", {})) <= set(all_services), name
    needs = {"scheduler": "rabbitmq", "worker": "rabbitmq", "relay": "kafka"}
    for name in sorted(PROCESSES):
        depends = all_services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        if name in needs:
            assert depends[needs[name]]["condition"] == "service_healthy", name
    assert all_services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def process_metrics_port(service: str) -> int:
    """Where Prometheus must find a process's /metrics, as the code would serve it."""
    settings = settings_of(service)
    if service == "gateway":
        return int(parser().parse_args(services()[service]["command"][1:]).port)
    return metrics_port(settings, service)


def test_metrics_listen_beyond_loopback_and_the_health_checks_probe_them() -> None:
    for service in sorted(PROCESSES - {"gateway"}):
        assert settings_of(service).metrics_host == "0.0.0.0"
        probe = " ".join(services()[service]["healthcheck"]["test"])
        assert f"127.0.0.1:{process_metrics_port(service)}{METRICS_PATH}" in probe, service


def prometheus_targets() -> dict[str, str]:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", METRICS_PATH) == METRICS_PATH
        for static in job["static_configs"]:
            for target in static["targets"]:
                targets[job["job_name"]] = target
    return targets


def test_prometheus_scrapes_every_process_on_its_metrics_port() -> None:
    targets = prometheus_targets()
    scraped = {}
    for target in targets.values():
        host, port = target.rsplit(":", 1)
        if host != "localhost":
            assert host in services(), f"{target}: no such compose service"
            scraped[host] = int(port)
    assert set(scraped) == PROCESSES
    for service, port in scraped.items():
        assert port == process_metrics_port(service), service
    mounts = services()["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def exported_series() -> set[str]:
    """Every series name the code exports (counters end in _total, histograms in three)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    names = {g.name for g in STATE_GAUGES}
    for metric in PROCESS_METRICS:
        for family in metric.describe():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_dashboard_queries_name_only_exported_metrics_and_show_every_one() -> None:
    used = {n for q in dashboard_queries() for n in re.findall(r"\btaskstream_\w+", q)}
    assert used, "the dashboard queries no taskstream metric"
    assert used <= exported_series(), f"not exported: {used - exported_series()}"
    families = {m.describe()[0].name for m in PROCESS_METRICS} | {g.name for g in STATE_GAUGES}
    unshown = {f for f in families if not any(n.startswith(f) for n in used)}
    assert not unshown, f"no panel for {unshown}"


def test_grafana_provisions_the_dashboard_and_its_datasource() -> None:
    grafana = services()["grafana"]
    # container path -> the repo folder mounted there
    mounts = {
        container: REPO / host.removeprefix("./")
        for host, container, *_ in (v.split(":") for v in grafana["volumes"])
        if host.startswith("./")
    }
    provisioning = mounts["/etc/grafana/provisioning"]
    providers = yaml.safe_load((provisioning / "dashboards/taskstream.yml").read_text())
    assert mounts[providers["providers"][0]["options"]["path"]] == DASHBOARD.parent
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    prometheus = urlsplit(source["url"])
    assert prometheus.hostname == "prometheus"
    assert any(p.endswith(f":{prometheus.port}") for p in services()["prometheus"]["ports"])
    panels = json.loads(DASHBOARD.read_text())["panels"]
    uids = {p["datasource"]["uid"] for p in panels if "datasource" in p}
    assert uids == {source["uid"]}


def test_every_process_gets_the_one_secrets_key_from_the_environment() -> None:
    # Sealed values must open in every process; a key written into the file would be a secret
    # in the repository.
    keys = {services()[p]["environment"].get("TASKSTREAM_SECRETS_KEY") for p in PROCESSES}
    (key,) = keys
    assert key is not None and key.startswith("${TASKSTREAM_SECRETS_KEY:?")
