"""The token bucket behind seed 002's rate-limit headers."""

from __future__ import annotations

from services.surfaces.kit.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock, wall=clock)
    verdicts = [limiter.take("a") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    refused = verdicts[3]
    assert refused.retry_after == 1 and refused.headers()["Retry-After"] == "1"
    assert refused.headers()["X-RateLimit-Limit"] == "3"
    assert limiter.take("b").allowed, "another project has its own bucket"
    clock.now += 0.5
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed


def test_zero_rate_is_off() -> None:
    assert not RateLimiter(0, 10).enabled
