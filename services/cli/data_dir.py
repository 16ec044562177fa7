"""Where a command keeps its state: the data directory, its database and credentials.json."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import msgspec

from infra.embedded_postgres import start_embedded_postgres
from infra.migrations import migrate
from infra.project_store import DEFAULT_PROJECT, add_key, create_project, project_by_name
from infra.secret_store import ensure_key_file, key_file, load_keyring
from infra.settings import Settings
from services.cli.flags import described

KAFKA_FILE = "kafka.json"


def data_dir_flag(p: argparse.ArgumentParser) -> None:
    """The `--data-dir` flag every command that touches the database takes."""
    p.add_argument(
        "--data-dir",
        help=described(
            "where the embedded PostgreSQL, credentials.json and kafka.json live",
            default=".taskstream",
            env="TASKSTREAM_DATA_DIR",
        ),
    )


def record_kafka(data_dir: Path, bootstrap: str | None) -> Callable[[], None]:
    """Write where `taskstream dev`'s Kafka listens to `data_dir`/kafka.json, so `events tail`
    finds it without flags; returns the hook that removes it when dev stops."""
    path = data_dir / KAFKA_FILE
    if bootstrap is None:
        path.unlink(missing_ok=True)
        return lambda: None
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bootstrap": bootstrap}))
    return lambda: path.unlink(missing_ok=True)


def recorded_kafka(data_dir: Path) -> str | None:
    """The bootstrap a running `taskstream dev` recorded in `data_dir`, if any."""
    try:
        return str(json.loads((data_dir / KAFKA_FILE).read_text())["bootstrap"])
    except (OSError, ValueError, KeyError):
        return None


def database_url(settings: Settings, data_dir: Path) -> tuple[str, Callable[[], None]]:
    """TASKSTREAM_DATABASE_URL, or an embedded server kept in `data_dir`/postgres."""
    if settings.database_url:
        return settings.database_url, lambda: None
    return start_embedded_postgres(data_dir / "postgres")


def write_credentials(data_dir: Path, project_id: str, api_key: str) -> Path:
    """Write credentials.json readable by its owner only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "credentials.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"project_id": project_id, "api_key": api_key}, out)
    os.chmod(path, 0o600)
    return path


def with_secrets_key(settings: Settings, data_dir: Path, *, create: bool = False) -> Settings:
    """`settings` with the secrets key set: TASKSTREAM_SECRETS_KEY, else `data_dir`/secrets.key.

    `create` (taskstream dev) writes that file, mode 0600, when neither exists. Raises
    SecretsKeyError (naming the variable) when there is no usable key, before anything starts.
    """
    keyed = msgspec.structs.replace(settings, data_dir=str(data_dir))
    if settings.secrets_key is None:
        if create:
            ensure_key_file(keyed)
        path = key_file(keyed)
        if path.exists():
            keyed = msgspec.structs.replace(keyed, secrets_key=path.read_text().strip())
    load_keyring(keyed)
    return keyed


async def ensure_default_project(conn: asyncpg.Connection, data_dir: Path) -> str | None:
    """Create project `default` and credentials.json on first start; returns a new key, once."""
    path = data_dir / "credentials.json"
    project_id = await project_by_name(conn, DEFAULT_PROJECT)
    if project_id is not None and path.exists():
        return None
    if project_id is None:
        creds = await create_project(conn, DEFAULT_PROJECT)
        project_id, key = creds.project_id, creds.api_key
    else:
        key = await add_key(conn, project_id, label="credentials.json")
    write_credentials(data_dir, project_id, key)
    return key


def ensure_ui_session_key(settings: Settings, data_dir: Path) -> Settings:
    """`settings` with a dashboard session key: the configured one, else the data directory's
    (generated on first start, readable by its owner only), so sessions survive restarts."""
    if settings.ui_session_key:
        return settings
    path = data_dir / "ui_session_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return msgspec.structs.replace(settings, ui_session_key=path.read_text().strip())


@contextlib.contextmanager
def database(args: argparse.Namespace, settings: Settings) -> Iterator[tuple[Path, str]]:
    """The data directory and a database DSN (embedded server started, and stopped after)."""
    data_dir = Path(args.data_dir or settings.data_dir).expanduser().resolve()
    dsn, stop_db = database_url(settings, data_dir)
    try:
        yield data_dir, dsn
    finally:
        stop_db()


async def migrate_dsn(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
