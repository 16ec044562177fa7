"""Retries of taskstream_client against a real, rate-limited `taskstream dev`, and a dead port."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from taskstream_client import APIConnectionError, Client, RateLimited

from tests.integration.dev_harness import Dev, dev_fixture
from tests.integration.processes import free_port

TASK = {
    "name": "r",
    "action": {"kind": "http", "url": "https://example.com/hook"},
    "scheduled_at": datetime(2099, 1, 1, tzinfo=UTC),
}


dev = dev_fixture(TASKSTREAM_RATE_LIMIT_PER_SECOND="2", TASKSTREAM_RATE_LIMIT_BURST="2")


class Recorder:
    """What went over the wire, attempt by attempt (httpx event hooks: the client is real)."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, httpx.Request]] = []
        self.answers: list[tuple[float, int, httpx.Headers]] = []

    def http(self) -> httpx.Client:
        return httpx.Client(
            event_hooks={
                "request": [lambda r: self.sent.append((time.monotonic(), r))],
                "response": [
                    lambda r: self.answers.append((time.monotonic(), r.status_code, r.headers))
                ],
            }
        )


def test_429_is_rate_limited_with_retry_after_and_request_id(dev: Dev) -> None:
    with Client(base_url=dev.base_url, api_key=dev.api_key, max_retries=0) as client:
        with pytest.raises(RateLimited) as limited:
            for _ in range(20):
                client.system.status()
    error = limited.value
    assert error.status == 429 and error.code == "rate_limited"
    assert error.retry_after is not None and 0 < error.retry_after <= 2
    assert error.request_id and error.request_id.startswith("req_")


def test_a_limited_post_is_retried_after_retry_after_with_the_same_idempotency_key(
    dev: Dev,
) -> None:
    recorder = Recorder()
    with Client(
        base_url=dev.base_url, api_key=dev.api_key, max_retries=5, http_client=recorder.http()
    ) as client:
        made = [client.tasks.create(**TASK) for _ in range(6)]  # type: ignore[arg-type]
    assert len({t.id for t in made}) == 6
    limited = [a for a in recorder.answers if a[1] == 429]
    assert limited, "a burst of 6 at 2/s must meet the limit"
    by_key: dict[str, list[float]] = {}
    for at, request in recorder.sent:
        by_key.setdefault(request.headers["Idempotency-Key"], []).append(at)
    assert len(by_key) == 6, "one key per create, however often it was sent"
    retried = [times for times in by_key.values() if len(times) > 1]
    assert retried
    # Every retry waited at least what the server asked for (Retry-After is whole seconds).
    for at, _, headers in limited:
        later = [t for t, _ in recorder.sent if t > at]
        assert later and later[0] - at >= float(headers["Retry-After"]) - 0.05


def test_connection_errors_are_retried_then_raised_with_one_key(dev: Dev) -> None:
    recorder = Recorder()
    dead = f"http://127.0.0.1:{free_port()}"
    with Client(
        base_url=dead, api_key=dev.api_key, max_retries=2, http_client=recorder.http()
    ) as client, pytest.raises(APIConnectionError) as failed:
        client.tasks.create(**TASK)  # type: ignore[arg-type]
    assert len(recorder.sent) == 3
    assert len({r.headers["Idempotency-Key"] for _, r in recorder.sent}) == 1
    assert failed.value.request_id == recorder.sent[0][1].headers["X-Request-Id"]
    gaps = [b[0] - a[0] for a, b in zip(recorder.sent, recorder.sent[1:], strict=False)]
    assert all(g >= 0.2 for g in gaps), gaps  # backoff, not a hot loop
