"""Seed 001's API_TOKEN: one static Bearer token acting for the `default` project.

Project API keys work as well; a token that is not the static one goes to the usual key check.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from infra.project_store import DEFAULT_PROJECT, ensure_project
from services.surfaces.kit.auth import Principal
from services.surfaces.kit.context import context_of
from services.surfaces.kit.surface import admit, authenticate


def _digest(token: str) -> bytes:
    # Comparing digests keeps the comparison constant-time even in the token's length.
    return hashlib.sha256(token.encode()).digest()


class StaticTokenAuth:
    """The /messages authenticator: the static token (if configured), else a project API key."""

    def __init__(self, token: str | None) -> None:
        self._digest = _digest(token) if token else None
        self._project_id: str | None = None

    async def __call__(self, request: web.Request) -> dict[str, str]:
        """Authenticate `request`; returns its rate-limit headers (see surface_kit.admit)."""
        if self._digest is not None:
            scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                _digest(credential.strip()), self._digest
            ):
                project_id = await self._default_project(request)
                return admit(request, Principal(project_id, "static_token", "api_token"))
        return await authenticate(request)

    async def _default_project(self, request: web.Request) -> str:
        if self._project_id is None:
            # Idempotent, so two first requests racing here both get the same project.
            self._project_id = await ensure_project(context_of(request).pool, DEFAULT_PROJECT)
        return self._project_id
