"""Dashboard sessions: opened with an API key, ended by logout or by the key's revocation.

A session is a row, so logout is final (a copied cookie dies with it) and a revoked key ends
every session it opened at their next request.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import asyncpg
import msgspec

SESSION_LIFETIME = timedelta(hours=12)


class SessionOwner(msgspec.Struct, frozen=True):
    project_id: str
    key_id: str


async def open_session(pool: asyncpg.Pool, owner: SessionOwner) -> str:
    """A new session id for `owner`; expired sessions are swept on the way."""
    session_id = secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM ui_sessions WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO ui_sessions (session_id, project_id, key_id, expires_at)"
            " VALUES ($1, $2, $3, now() + $4::interval)",
            session_id,
            owner.project_id,
            owner.key_id,
            SESSION_LIFETIME,
        )
    return session_id


async def session_owner(pool: asyncpg.Pool, session_id: str) -> SessionOwner | None:
    """Who the session acts for, or None (unknown, expired, logged out, or its key revoked)."""
    row = await pool.fetchrow(
        "SELECT s.project_id, s.key_id FROM ui_sessions s"
        "  JOIN api_keys k ON k.key_id = s.key_id AND k.project_id = s.project_id"
        " WHERE s.session_id = $1 AND s.expires_at > now() AND k.revoked_at IS NULL",
        session_id,
    )
    return None if row is None else SessionOwner(row["project_id"], row["key_id"])


async def close_session(pool: asyncpg.Pool, session_id: str) -> None:
    await pool.execute("DELETE FROM ui_sessions WHERE session_id = $1", session_id)
