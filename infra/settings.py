"""Every setting of every process, read from `TASKSTREAM_*` environment variables in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

PREFIX = "TASKSTREAM_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Typed settings; each field is the lower-case name of `TASKSTREAM_<NAME>`."""

    # PostgreSQL DSN. Unset: `taskstream dev` starts an embedded server in `data_dir`.
    database_url: str | None = None
    # Where `taskstream dev` keeps the embedded database and credentials.json.
    data_dir: str = ".taskstream"
    host: str = "127.0.0.1"
    port: int = 8080
    # Seed 001's API_TOKEN: a static Bearer token for the `default` project on /messages
    # (compared in constant time, never logged). Unset: only project API keys work there.
    api_token: str | None = None
    # HS256 secret for `Authorization: Bearer <JWT>`; JWTs are refused while unset.
    jwt_secret: str | None = None
    jwt_audience: str = "taskstream"
    # Signs the dashboard's session cookies and CSRF tokens; every gateway replica needs the
    # same one. Unset: `taskstream dev`/`gateway` keep a generated one in data_dir/ui_session_key
    # (and a gateway built without either signs with a random key of its own).
    ui_session_key: str | None = None
    jwt_issuer: str | None = None
    # AES-256-GCM key (base64url of 32 bytes) sealing header values, webhook and notify secrets
    # (docs/secrets.md). Unset: the key file `secrets.key` in data_dir, which `taskstream dev`
    # creates (mode 0600); every process must see the same key.
    secrets_key: str | None = None
    # Earlier keys, comma-separated, still accepted for opening while `taskstream secrets rekey`
    # moves every value to secrets_key (rotation).
    secrets_previous_keys: str = ""
    # Operators opt in to `command` actions; the API refuses them with 422 otherwise.
    allow_commands: bool = False
    # Largest request body the gateway reads, in bytes.
    max_body_bytes: int = 64 * 1024
    # Connections in each process's asyncpg pool.
    db_pool_size: int = 10
    # Seconds a verified API key is trusted without a database look-up (revocation delay).
    auth_cache_seconds: float = 5.0
    # API requests per second per project in each gateway process (0: no limit), and the burst.
    rate_limit_per_second: float = 100.0
    rate_limit_burst: int = 200
    # Failed authentications per second per client address in each gateway process, and the
    # burst; past it the address gets 429 before its credentials are even looked at (0: off).
    auth_failure_per_second: float = 1.0
    auth_failure_burst: int = 30
    # Most appends one group commit writes in a single transaction.
    group_commit_max: int = 256
    # Concurrent group-commit transactions in flight.
    group_commit_flushers: int = 2
    # CIDRs outbound calls may reach although they are private/loopback (e.g. "127.0.0.0/8" in
    # development); empty: every non-public address is refused.
    egress_allow_cidrs: str = ""
    # Most bytes of a callback or webhook response that are read.
    egress_max_response_bytes: int = 64 * 1024
    # dramatiq broker: redis://… or amqp://… (RabbitMQ). Unset: an embedded Redis in data_dir.
    broker_url: str | None = None
    # Threads per worker process (concurrent runs).
    worker_threads: int = 32
    # Longest an idle worker waits before asking the broker again: dramatiq's Redis consumer
    # backs off up to this on an empty queue, so it bounds how late a just-sent run starts.
    worker_poll_ms: int = 100
    # A running run's lease; heartbeats push it forward every third of it.
    lease_seconds: float = 30.0
    # How long a dispatched run may wait for a worker before it counts as lost and is retried.
    dispatch_lease_seconds: float = 60.0
    # Seconds to wait after each failed webhook attempt, comma-separated (unset: Standard
    # Webhooks' schedule 5s, 5m, 30m, 2h, 5h, 10h, 10h).
    webhook_retry_schedule: str | None = None
    # The Kafka relay (docs/events.md). Off: `taskstream dev` runs no relay and no broker.
    kafka_enabled: bool = True
    # host:port[,host:port…] of the Kafka cluster. Unset: `taskstream dev` starts tansu.
    kafka_bootstrap: str | None = None
    # Idempotent producer: on for real Kafka; the embedded tansu refuses its handshake.
    kafka_idempotence: bool = True
    # Partitions and replication factor of the topics the relay creates when they are missing.
    kafka_partitions: int = 4
    kafka_replication_factor: int = 1
    # Log events the relay reads and produces per round (one round of acks each).
    relay_batch: int = 5000
    # How often an idle relay looks for new events, in milliseconds.
    relay_poll_ms: int = 100
    # Log events the projector folds into each view per transaction, and how often an idle
    # projector looks for new events, in milliseconds.
    projector_batch: int = 5000
    projector_poll_ms: int = 200
    # /metrics port of a scheduler, worker, relay or projector process (the gateway serves it on
    # its API port). Unset: 9101, 9102, 9103, 9104 by role (docs/observability.md); 0: off.
    metrics_port: int | None = None
    # Address that port binds to; 0.0.0.0 where Prometheus scrapes from another host.
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; a bad value raises ValueError naming the variable."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for name, field_type in _field_types().items():
        value = environ.get(PREFIX + name.upper())
        if value is None or value == "":
            continue
        raw[name] = _coerce(name, value, field_type)
    try:
        return msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid setting: {exc}") from None


def _field_types() -> dict[str, str]:
    return {f.name: repr(f.type) for f in msgspec.structs.fields(Settings)}


def _coerce(name: str, value: str, field_type: str) -> object:
    var = PREFIX + name.upper()
    if "bool" in field_type:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{var} must be true or false, got {value!r}")
    try:
        if "int" in field_type:
            return int(value)
        if "float" in field_type:
            return float(value)
    except ValueError:
        raise ValueError(f"{var} must be a number, got {value!r}") from None
    return value


def data_path(settings: Settings) -> Path:
    """The data directory as an absolute path."""
    return Path(settings.data_dir).expanduser().resolve()
