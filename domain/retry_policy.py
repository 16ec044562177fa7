"""Retry policies: how many times a failed run is retried, and how long each retry waits.

Pure: jitter comes from the caller as a float in [0, 1), never from a random source here.
"""

import math
from typing import Literal

import msgspec

from domain.errors import ValidationError

Backoff = Literal["exponential_jitter", "exponential", "linear", "fixed"]
# Which failures a retry is granted for: `any` (also timeouts and lost workers) or only
# `action_failure` (the action itself said no: non-2xx, an exception, a non-zero exit).
RetryOn = Literal["any", "action_failure"]
# Failure reasons that are not the action's own answer.
NOT_ACTION_FAILURES = frozenset({"timeout", "worker_lost"})

MAX_RETRIES = 100
MAX_BASE_SECONDS = 86_400.0
MAX_CAP_SECONDS = 7 * 86_400.0
_BACKOFFS = ("exponential_jitter", "exponential", "linear", "fixed")
_RETRY_ON = ("any", "action_failure")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How a failed run is retried; every delay is capped at `cap_seconds`."""

    max_retries: int = 3  # 0..100
    backoff: Backoff = "exponential_jitter"
    base_seconds: float = 1.0  # > 0, <= 86400
    cap_seconds: float = 3600.0  # >= base_seconds, <= 7 days
    retry_on: RetryOn = "any"


def validate_retry_policy(policy: RetryPolicy) -> RetryPolicy:
    """The policy with its numbers as floats, or ValidationError naming the field."""
    retries = policy.max_retries
    # bool is an int subclass, and True retries is a mistake, not 1.
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise ValidationError(
            f"max_retries must be a whole number from 0 to {MAX_RETRIES}, got {retries!r}",
            field="retry_policy.max_retries",
        )
    if policy.backoff not in _BACKOFFS:
        raise ValidationError(
            f"backoff must be one of {', '.join(_BACKOFFS)}, got {policy.backoff!r}",
            field="retry_policy.backoff",
        )
    if policy.retry_on not in _RETRY_ON:
        raise ValidationError(
            f"retry_on must be one of {', '.join(_RETRY_ON)}, got {policy.retry_on!r}",
            field="retry_policy.retry_on",
        )
    base = _seconds(policy.base_seconds, "base_seconds")
    if not 0 < base <= MAX_BASE_SECONDS:
        raise ValidationError(
            f"base_seconds must be above 0 and at most {MAX_BASE_SECONDS:g}, got {base:g}",
            field="retry_policy.base_seconds",
        )
    cap = _seconds(policy.cap_seconds, "cap_seconds")
    if not base <= cap <= MAX_CAP_SECONDS:
        raise ValidationError(
            f"cap_seconds must be at least base_seconds ({base:g}) and at most"
            f" {MAX_CAP_SECONDS:g} (7 days), got {cap:g}",
            field="retry_policy.cap_seconds",
        )
    return msgspec.structs.replace(policy, base_seconds=base, cap_seconds=cap)


def retry_delay(policy: RetryPolicy, attempt: int, random_unit: float) -> float:
    """Seconds to wait before retry number `attempt` (1 = first retry), never above the cap.

    fixed: base. linear: base * attempt. exponential: base * 2 ** (attempt - 1).
    exponential_jitter ("equal jitter"): with
    d = min(cap, base * 2 ** (attempt - 1)), a delay from d/2 to d placed by `random_unit`,
    so retries of many tasks that failed together spread out but never come back sooner
    than half the backoff.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if not 0.0 <= random_unit < 1.0:
        raise ValueError(f"random_unit must be in [0, 1), got {random_unit}")
    base, cap = policy.base_seconds, policy.cap_seconds
    if policy.backoff == "fixed":
        return min(cap, base)
    if policy.backoff == "linear":
        return min(cap, base * attempt)
    # Compared in log space: 2 ** (attempt - 1) overflows a float long before attempt 10**4.
    exponent = attempt - 1
    if exponent >= math.log2(cap) - math.log2(base):
        ceiling = cap
    else:
        ceiling = min(cap, math.ldexp(base, exponent))
    if policy.backoff == "exponential":
        return ceiling
    return ceiling / 2 + random_unit * ceiling / 2


def should_retry(policy: RetryPolicy, attempts_made: int) -> bool:
    """Whether a run that just failed gets another retry.

    `attempts_made` is the number of retries already scheduled for this run, not counting
    the original attempt: 0 when the first attempt fails. With max_retries=3 a run is tried
    at most 4 times: retries are granted for attempts_made 0, 1 and 2.
    """
    if attempts_made < 0:
        raise ValueError(f"attempts_made cannot be negative, got {attempts_made}")
    return attempts_made < policy.max_retries


def retries_reason(policy: RetryPolicy, reason: str) -> bool:
    """Whether a failure for `reason` is one the policy retries at all."""
    return policy.retry_on == "any" or reason not in NOT_ACTION_FAILURES


def _seconds(value: float, name: str) -> float:
    """A finite float, refusing NaN, infinities and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(
            f"{name} must be a finite number of seconds, got {value!r}",
            field=f"retry_policy.{name}",
        )
    return float(value)
