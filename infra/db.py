"""asyncpg pools: one per process, JSON columns exchanged as text and parsed by our codec."""

from __future__ import annotations

import asyncpg


async def create_pool(dsn: str, *, size: int = 10) -> asyncpg.Pool:
    """A pool whose connections return json/jsonb as str (decoded by infra.json_codec)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(2, size),
        max_size=size,
        command_timeout=30,
        # jsonb stays text both ways: the codec, not asyncpg, owns JSON.
        server_settings={"application_name": "taskstream", "jit": "off"},
    )
    assert pool is not None
    return pool
