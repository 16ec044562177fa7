"""Retry policies: delays per strategy, jitter bounds, caps, and validation."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationError
from domain.retry_policy import RetryPolicy, retry_delay, should_retry, validate_retry_policy


def delays(policy: RetryPolicy, attempts: int, random_unit: float) -> list[float]:
    return [retry_delay(policy, attempt, random_unit) for attempt in range(1, attempts + 1)]


def test_defaults_are_valid() -> None:
    assert validate_retry_policy(RetryPolicy()) == RetryPolicy()


def test_fixed_waits_base_every_time() -> None:
    policy = RetryPolicy(backoff="fixed", base_seconds=5.0)
    assert delays(policy, 4, 0.9) == [5.0, 5.0, 5.0, 5.0]


def test_linear_grows_by_base_and_stops_at_cap() -> None:
    policy = RetryPolicy(backoff="linear", base_seconds=10.0, cap_seconds=35.0)
    assert delays(policy, 5, 0.5) == [10.0, 20.0, 30.0, 35.0, 35.0]


def test_exponential_jitter_doubles_then_caps() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=10.0)
    # random_unit 0 gives the floor, half the backoff; near 1 approaches the full backoff.
    assert delays(policy, 6, 0.0) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert delays(policy, 6, 0.5) == [0.75, 1.5, 3.0, 6.0, 7.5, 7.5]
    top = delays(policy, 6, math.nextafter(1.0, 0.0))
    assert top == pytest.approx([1, 2, 4, 8, 10, 10])
    assert all(d <= full for d, full in zip(top, [1, 2, 4, 8, 10, 10], strict=True))


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(0.001, 86_400.0),
    spread=st.floats(1.0, 1000.0),
    attempt=st.integers(1, 10_000),
    random_unit=st.floats(0.0, 1.0, exclude_max=True),
)
def test_exponential_jitter_stays_within_half_and_full_backoff(
    base: float, spread: float, attempt: int, random_unit: float
) -> None:
    cap = min(base * spread, 7 * 86_400.0)
    policy = validate_retry_policy(RetryPolicy(base_seconds=base, cap_seconds=max(cap, base)))
    full = min(policy.cap_seconds, base * 2.0 ** min(attempt - 1, 1000))
    delay = retry_delay(policy, attempt, random_unit)
    assert full / 2 * (1 - 1e-12) <= delay <= full * (1 + 1e-12)
    assert delay <= policy.cap_seconds


@pytest.mark.parametrize("backoff", ["exponential_jitter", "linear", "fixed"])
@pytest.mark.parametrize("attempt", [100, 1000, 10**6, 10**18])
def test_huge_attempts_do_not_overflow(backoff: str, attempt: int) -> None:
    policy = RetryPolicy(backoff=backoff, base_seconds=2.0, cap_seconds=600.0)  # type: ignore[arg-type]
    delay = retry_delay(policy, attempt, 0.999)
    assert math.isfinite(delay)
    assert delay <= 600.0


def test_tiny_base_still_reaches_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1e-300, cap_seconds=60.0)
    assert retry_delay(policy, 1100, 0.0) == 30.0
    assert retry_delay(policy, 1, 0.0) == 5e-301


@pytest.mark.parametrize(("attempt", "random_unit"), [(0, 0.5), (-1, 0.5), (1, 1.0), (1, -0.1)])
def test_bad_arguments_are_a_programming_error(attempt: int, random_unit: float) -> None:
    with pytest.raises(ValueError):
        retry_delay(RetryPolicy(), attempt, random_unit)


def test_should_retry_counts_retries_already_scheduled() -> None:
    policy = RetryPolicy(max_retries=3)
    assert [should_retry(policy, made) for made in range(5)] == [True, True, True, False, False]
    assert should_retry(RetryPolicy(max_retries=0), 0) is False
    with pytest.raises(ValueError):
        should_retry(policy, -1)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"max_retries": -1}, "max_retries", "from 0 to 100, got -1"),
        ({"max_retries": 101}, "max_retries", "got 101"),
        ({"max_retries": True}, "max_retries", "got True"),
        ({"backoff": "random"}, "backoff", "backoff must be one of"),
        ({"base_seconds": 0.0}, "base_seconds", "above 0"),
        ({"base_seconds": -1.0}, "base_seconds", "above 0"),
        ({"base_seconds": 86_401.0}, "base_seconds", "at most 86400"),
        ({"base_seconds": math.nan}, "base_seconds", "finite"),
        ({"base_seconds": math.inf}, "base_seconds", "finite"),
        ({"base_seconds": 10.0, "cap_seconds": 5.0}, "cap_seconds", "at least base_seconds"),
        ({"cap_seconds": 7 * 86_400.0 + 1}, "cap_seconds", "7 days"),
        ({"cap_seconds": math.nan}, "cap_seconds", "finite"),
    ],
)
def test_bad_policy_is_refused_naming_the_field(
    changes: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_retry_policy(RetryPolicy(**changes))  # type: ignore[arg-type]
    assert caught.value.field == f"retry_policy.{field}"
    assert fragment in caught.value.message


def test_whole_numbers_become_floats() -> None:
    policy = validate_retry_policy(RetryPolicy(base_seconds=2, cap_seconds=60))
    assert isinstance(policy.base_seconds, float)
    assert isinstance(policy.cap_seconds, float)
    assert validate_retry_policy(RetryPolicy(max_retries=0, cap_seconds=1.0)).max_retries == 0
