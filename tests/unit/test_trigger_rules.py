"""Trigger rules with Airflow's meanings, decided as soon as the upstream states allow."""

from __future__ import annotations

import pytest

from domain.trigger_rules import verdict

S, F, U, K, R = "SUCCEEDED", "FAILED", "UPSTREAM_FAILED", "SKIPPED", "RUNNING"


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    [
        ("all_success", [], "run"),
        ("all_success", [S, S], "run"),
        ("all_success", [S, R], "wait"),
        ("all_success", [F, R], "upstream_failed"),
        ("all_success", [U, S], "upstream_failed"),
        ("all_success", [K, S], "skipped"),
        ("all_done", [S, F], "run"),
        ("all_done", [K, U], "run"),
        ("all_done", [S, R], "wait"),
        ("one_success", [R, S], "run"),
        ("one_success", [R, F], "wait"),
        ("one_success", [F, U], "upstream_failed"),
        ("one_success", [K, K], "skipped"),
        ("one_failed", [R, F], "run"),
        ("one_failed", [U, S], "run"),
        ("one_failed", [S, R], "wait"),
        ("one_failed", [S, K], "skipped"),
        ("none_failed", [S, K], "run"),
        ("none_failed", [S, R], "wait"),
        ("none_failed", [F, R], "upstream_failed"),
    ],
)
def test_verdict(rule: str, upstream: list[str], expected: str) -> None:
    assert verdict(rule, upstream) == expected


def test_an_unknown_rule_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown trigger rule"):
        verdict("always", ["SUCCEEDED"])
