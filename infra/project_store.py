"""Projects (tenants) and their hashed API keys."""

from __future__ import annotations

import secrets
import uuid

import asyncpg
import msgspec

from domain import api_keys

# The project `taskstream dev` creates on first start; seed 001's static token acts for it.
DEFAULT_PROJECT = "default"


class ProjectCredentials(msgspec.Struct, frozen=True):
    project_id: str
    api_key: str


class ProjectExists(Exception):
    """A project with that name already exists."""


async def create_project(conn: asyncpg.Connection, name: str) -> ProjectCredentials:
    """Create a project and its first key; the key is returned once and never stored."""
    project_id = str(uuid.uuid4())
    async with conn.transaction():
        try:
            await conn.execute(
                "INSERT INTO projects (project_id, name) VALUES ($1, $2)", project_id, name
            )
        except asyncpg.UniqueViolationError:
            raise ProjectExists(f"project {name!r} already exists") from None
        key = await add_key(conn, project_id)
    return ProjectCredentials(project_id, key)


async def add_key(conn: asyncpg.Connection, project_id: str, label: str = "") -> str:
    """Issue another key for a project (rotation keeps several active)."""
    issued = api_keys.issue_key(secrets.token_bytes(api_keys.KEY_ID_BYTES + api_keys.SECRET_BYTES))
    await conn.execute(
        "INSERT INTO api_keys (key_id, project_id, digest, label) VALUES ($1, $2, $3, $4)",
        issued.key_id,
        project_id,
        issued.digest,
        label,
    )
    return issued.api_key


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> None:
    await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = $1", key_id)


async def project_for_key(pool: asyncpg.Pool, presented: str) -> str | None:
    """The project a presented key belongs to, or None (unknown, revoked or wrong secret)."""
    parsed = api_keys.parse_key(presented)
    if parsed is None:
        return None
    row = await pool.fetchrow(
        "SELECT project_id, digest FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL",
        parsed.key_id,
    )
    if row is None or not api_keys.matches(parsed.api_key, bytes(row["digest"])):
        return None
    return str(row["project_id"])


async def project_exists(pool: asyncpg.Pool, project_id: str) -> bool:
    """Whether a project with this id exists (a signed JWT may still name one that does not)."""
    if "\x00" in project_id:
        return False  # PostgreSQL cannot hold the byte, so no project has it
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE project_id = $1)", project_id
        )
    )


async def project_by_name(conn: asyncpg.Connection, name: str) -> str | None:
    value = await conn.fetchval("SELECT project_id FROM projects WHERE name = $1", name)
    return None if value is None else str(value)


async def ensure_project(pool: asyncpg.Pool, name: str) -> str:
    """The id of the project called `name`, created (without keys) if there is none yet."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO projects (project_id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            str(uuid.uuid4()),
            name,
        )
        project_id = await project_by_name(conn, name)
    assert project_id is not None
    return project_id
