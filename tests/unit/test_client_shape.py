"""Client and AsyncClient offer the same namespaces and methods, with the same parameters."""

from __future__ import annotations

import inspect

import httpx
from taskstream_client import AsyncClient, Client, errors
from taskstream_client._operations import TASKS_CREATE, TASKS_GET
from taskstream_client._transport import RetryConfig, Transport

NAMESPACES = ("tasks", "jobs", "webhooks", "workers", "system")


def _methods(namespace: object) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(namespace, name))
        for name in dir(namespace)
        if not name.startswith("_")
    }


def test_sync_and_async_clients_mirror_each_other() -> None:
    sync, asynchronous = Client(api_key="k"), AsyncClient(api_key="k")
    for name in NAMESPACES:
        a, b = _methods(getattr(sync, name)), _methods(getattr(asynchronous, name))
        assert a.keys() == b.keys(), name
        for method in a:
            if method == "create_many":  # async adds `concurrency`
                continue
            assert list(a[method].parameters) == list(b[method].parameters), (name, method)
    sync.close()


def test_a_post_carries_one_idempotency_key_and_a_get_none() -> None:
    transport = Transport("http://h", "ts_key", RetryConfig())
    post = transport.prepare(TASKS_CREATE.call(body={"name": "x"}))
    assert post.headers["Idempotency-Key"].startswith("idem_")
    assert post.headers["Authorization"] == "ApiKey ts_key"
    assert "Idempotency-Key" not in transport.prepare(TASKS_GET.call("a/b")).headers
    assert transport.prepare(TASKS_GET.call("a/b")).url.raw_path == b"/api/tasks/a%2Fb"
    given = transport.prepare(TASKS_CREATE.call(body={}, idempotency_key="mine"))
    assert given.headers["Idempotency-Key"] == "mine"


def test_retry_delays_grow_honour_retry_after_and_stop() -> None:
    transport = Transport("http://h", None, RetryConfig(max_retries=3, base=0.5, cap=8))
    limited = httpx.Response(429, headers={"Retry-After": "3"})
    assert transport.retry_delay(0, limited) == 3.0
    assert transport.retry_delay(0, httpx.Response(429, headers={"Retry-After": "999"})) == 60.0
    delays = [transport.retry_delay(n, httpx.Response(503)) or 0 for n in range(3)]
    assert 0.25 <= delays[0] <= 0.5 and 1.0 <= delays[2] <= 2.0
    assert transport.retry_delay(3, httpx.Response(503)) is None
    assert transport.retry_delay(0, httpx.Response(422)) is None
    assert transport.retry_delay(0, None) is not None  # a connection error


def test_errors_by_status_keep_field_code_and_request_id() -> None:
    body = b'{"error":{"code":"validation_error","message":"m","details":{"field":"limit"}}}'
    error = errors.error_from(422, body, {}, "req_1")
    assert isinstance(error, errors.ValidationError)
    assert (error.field, error.code, error.request_id) == ("limit", "validation_error", "req_1")
    flat = errors.error_from(409, b'{"error":"job is paused","field":"id"}', {}, None)
    assert isinstance(flat, errors.Conflict)
    assert (flat.message, flat.field) == ("job is paused", "id")
    assert isinstance(errors.error_from(503, b"<html>", {}, None), errors.ServerError)
    limited = errors.error_from(429, b"{}", {"Retry-After": "2"}, None)
    assert isinstance(limited, errors.RateLimited) and limited.retry_after == 2.0
