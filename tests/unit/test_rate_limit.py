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
    # The headers state the documented per-second rate, not the bucket's burst.
    assert refused.headers()["X-RateLimit-Limit"] == "2"
    assert limiter.take("b").allowed, "another project has its own bucket"
    clock.now += 0.5
    assert limiter.take("a").allowed
    assert not limiter.take("a").allowed


def test_zero_rate_is_off() -> None:
    assert not RateLimiter(0, 10).enabled


def test_remaining_never_promises_more_than_the_stated_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(100.0, 200, clock=clock, wall=clock)
    first = limiter.take("a")
    assert (first.limit, first.remaining) == (100, 100), "199 tokens left, 100 stated"
    assert first.headers()["X-RateLimit-Limit"] == "100"
    for _ in range(150):
        verdict = limiter.take("a")
    assert verdict.remaining == 49 and verdict.reset_epoch == 1001  # 51 tokens back in 0.51 s
