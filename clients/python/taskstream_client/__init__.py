"""Typed client for the taskstream API: `Client` (blocking) and `AsyncClient` (asyncio).

    from taskstream_client import Client
    with Client(base_url="http://127.0.0.1:8000", api_key="ts_...") as client:
        task = client.tasks.create(name="hello", action={"kind": "http", "url": "https://..."})
        for failed in client.tasks.list(status="failed"):
            client.tasks.retry(failed.id)
"""

from taskstream_client import errors, models, params, webhooks
from taskstream_client._async import AsyncClient
from taskstream_client._sync import Client
from taskstream_client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequest,
    Conflict,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    TaskstreamError,
    UnsupportedMediaType,
    ValidationError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequest",
    "Client",
    "Conflict",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "TaskstreamError",
    "UnsupportedMediaType",
    "ValidationError",
    "errors",
    "models",
    "params",
    "webhooks",
]
