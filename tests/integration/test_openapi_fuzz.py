"""Schema fuzzing (schemathesis) of every operation in /openapi.json against a real gateway.

A bounded number of cases per operation keeps it in the default run: the document's own
examples first (they must succeed, so creates are reached and not only refusals), then
generated ones. Every answer must be a non-5xx that the document describes: a documented
status, its content type and its schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.gateway_process import Gateway, running_gateway

GENERATED_PER_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CREATES = {
    "POST /api/tasks",
    "POST /api/webhooks",
    "POST /tasks",
    "POST /events",
    "POST /publish",
    "POST /messages",
}


@pytest.fixture
def gateway(tmp_path: Path, fresh_dsn: str) -> Iterator[Gateway]:
    # Limits that would turn cases into 429s are off: what is fuzzed is the answers' shape.
    with running_gateway(
        tmp_path / "data",
        fresh_dsn,
        TASKSTREAM_RATE_LIMIT_PER_SECOND="0",
        TASKSTREAM_AUTH_FAILURE_PER_SECOND="0",
    ) as g:
        yield g


def test_every_operation_answers_as_documented(gateway: Gateway) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"ApiKey {gateway.key}"
    document = session.get(gateway.base + "/openapi.json", timeout=10).json()
    statuses: dict[str, set[int]] = {}
    failures: list[str] = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        examples = operation.get_strategies_from_examples()
        runs: list[tuple[Any, int]] = [(st.one_of(examples), 4 * len(examples))] if examples else []
        runs.append((operation.as_strategy(), GENERATED_PER_OPERATION))
        for strategy, count in runs:
            try:
                fuzz(gateway, session, strategy, count, statuses.setdefault(label, set()))
            except (Exception, BaseExceptionGroup) as exc:  # collect all findings, then fail
                failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(statuses) >= 35, sorted(statuses)
    unreached = sorted(c for c in CREATES if not any(200 <= s < 300 for s in statuses.get(c, ())))
    assert not unreached, {c: statuses.get(c) for c in unreached}


def fuzz(
    gateway: Gateway, session: requests.Session, strategy: Any, count: int, seen: set[int]
) -> None:
    """Call the server with `count` cases of `strategy` and check each answer; no shrinking."""

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: Any) -> None:
        if case.operation.path in ("/publish", "/delete") and isinstance(case.body, dict):
            case.body["projectId"] = gateway.project_id  # the caller's own, as the seed requires
        response = case.call(base_url=gateway.base, session=session, timeout=15)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    exercise()
