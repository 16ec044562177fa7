"""Who is calling: a project API key (`ApiKey` or `Bearer`) or an HS256 JWT naming a project.

Every failure is the same 401 to the caller, so a probe learns nothing about which check failed.
"""

from __future__ import annotations

import hashlib
import time

import asyncpg
import jwt
import msgspec

from domain import api_keys
from infra.project_store import project_exists, project_for_key
from infra.settings import Settings
from services.surfaces.kit.problems import HttpProblem

MAX_TOKEN_BYTES = 4 * 1024
JWT_LEEWAY_SECONDS = 30


class Principal(msgspec.Struct, frozen=True):
    project_id: str
    actor_kind: str
    actor_id: str


def unauthorized(message: str = "invalid or missing credentials") -> HttpProblem:
    return HttpProblem(
        401,
        "unauthorized",
        message,
        headers={"WWW-Authenticate": 'ApiKey, Bearer realm="taskstream"'},
    )


class Authenticator:
    """Resolves an Authorization header; verified keys are cached for `auth_cache_seconds`."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        # Keyed by the key's digest, never the key itself, so a heap dump holds no usable secret.
        self._cache: dict[bytes, tuple[float, str]] = {}

    async def principal(self, authorization: str | None) -> Principal:
        """The caller's project, or an HttpProblem(401)."""
        if not authorization:
            raise unauthorized("missing Authorization header")
        if len(authorization) > MAX_TOKEN_BYTES:
            raise unauthorized()
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if scheme not in ("apikey", "bearer") or not credential:
            raise unauthorized("use 'Authorization: ApiKey <key>' or 'Bearer <key or JWT>'")
        parsed = api_keys.parse_key(credential)
        if parsed is not None:
            return await self._from_key(parsed)
        if scheme == "bearer" and credential.count(".") == 2:
            return await self._from_jwt(credential)
        raise unauthorized()

    async def project_for_static_token(self, token: str) -> Principal | None:
        """Hook for surfaces with their own static token; None when it is not one of ours."""
        parsed = api_keys.parse_key(token)
        return None if parsed is None else await self._from_key(parsed)

    async def _from_key(self, parsed: api_keys.ParsedKey) -> Principal:
        digest = hashlib.sha256(parsed.api_key.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return Principal(cached[1], "api_key", parsed.key_id)
        project_id = await project_for_key(self._pool, parsed.api_key)
        if project_id is None:
            self._cache.pop(digest, None)
            raise unauthorized()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._settings.auth_cache_seconds, project_id)
        return Principal(project_id, "api_key", parsed.key_id)

    async def _from_jwt(self, token: str) -> Principal:
        secret = self._settings.jwt_secret
        if not secret:
            raise unauthorized("JWT authentication is not enabled on this server")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],  # pinned: never taken from the token's own header
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["exp", "aud", "project_id"]},
            )
        except jwt.PyJWTError:
            raise unauthorized() from None
        project_id = claims.get("project_id")
        if not isinstance(project_id, str) or not project_id or len(project_id) > 200:
            raise unauthorized()
        # A signed token may still name a project that does not exist (a typo, a deleted one):
        # acting for it would write events no project owns.
        key = b"project:" + project_id.encode()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is None or cached[0] <= now:
            if not await project_exists(self._pool, project_id):
                raise unauthorized()
            self._cache[key] = (now + self._settings.auth_cache_seconds, project_id)
        return Principal(project_id, "jwt", str(claims.get("sub", "")))
