"""Per-project token buckets: seed 002's `X-RateLimit-*` headers and 429 with `Retry-After`.

Buckets live in each gateway process, so N gateways allow N times the rate; a shared limit
would need Redis or PostgreSQL on every request, which this path cannot afford.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import msgspec


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    reset_epoch: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """`rate` requests per second per key, bursting to `burst`; rate 0 turns limiting off."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._clock = clock
        self._wall = wall
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def has_token(self, key: str) -> bool:
        """Whether `key`'s bucket holds a whole token now, without spending it."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(self.burst, tokens + (now - last) * self.rate) >= 1

    def take(self, key: str) -> Verdict:
        """Spend one token of `key`'s bucket if there is one."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._buckets) > 100_000:
            self._buckets.clear()
        self._buckets[key] = (tokens, now)
        # The headers state the documented limit, requests per second; the bucket may hold a
        # burst beyond it, but Remaining never promises more than Limit.
        limit = max(1, math.ceil(self.rate))
        back_in = max(0.0, min(limit, self.burst) - tokens) / self.rate
        return Verdict(
            allowed=allowed,
            limit=limit,
            remaining=min(int(tokens), limit),
            reset_epoch=math.ceil(self._wall() + back_in),
            retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / self.rate)),
        )
