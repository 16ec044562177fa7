"""Seed 003 at /jobs: every route with the document's shapes, each rejection, tenant isolation.

These run the gateway only (no scheduler): executions are created but their tasks do not run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from openapi_spec_validator import validate

from tests.integration.api_harness import Api, running_api

URL = "https://example.com/hook"


def task(task_id: str, *deps: str, **extra: object) -> dict:
    return {
        "id": task_id,
        "name": task_id.upper(),
        "dependencies": list(deps),
        "action": {"kind": "http", "url": URL},
        **extra,
    }


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool) as api:
        yield api


async def create(api: Api, *tasks: dict, **fields: object) -> str:
    status, body, _ = await api.call(
        "POST", "/jobs", json={"name": "nightly", "tasks": list(tasks), **fields}
    )
    assert status == 201, body
    assert set(body) == {"id", "message"}
    return str(body["id"])


async def test_job_crud_and_task_routes_answer_the_documents_shapes(api: Api) -> None:
    job_id = await create(
        api,
        task("extract"),
        task("load", "extract", retryPolicy={"type": "NONE", "maxRetries": 0}),
        schedule="0 9 * * 1-5",
        timezone="Europe/Paris",
        retryPolicy={
            "type": "ALWAYS",
            "maxRetries": 2,
            "backoff": {"strategy": "linear", "delaySeconds": 5, "maxDelaySeconds": 60},
        },
    )
    status, jobs, response = await api.call("GET", "/jobs")
    assert status == 200 and response.headers["X-Total-Count"] == "1"
    (summary,) = jobs
    assert summary["id"] == job_id and summary["taskCount"] == 2 and summary["version"] == 1
    status, job, _ = await api.call("GET", f"/jobs/{job_id}")
    assert status == 200
    assert job["schedule"] == "0 9 * * 1-5" and job["timezone"] == "Europe/Paris"
    assert job["nextFireAt"] is not None and job["paused"] is False
    assert job["retryPolicy"] == {
        "type": "ALWAYS",
        "maxRetries": 2,
        "backoff": {"strategy": "linear", "delaySeconds": 5.0, "maxDelaySeconds": 60.0},
    }
    assert job["dag"] == {"nodes": ["extract", "load"], "edges": [["extract", "load"]]}
    load = job["tasks"][1]
    assert load["dependencies"] == ["extract"] and load["triggerRule"] == "all_success"
    assert load["retryPolicy"]["type"] == "NONE" and load["timeoutSeconds"] == 3600
    assert job["tasks"][0]["retryPolicy"] is None  # the job's applies

    status, body, _ = await api.call("PUT", f"/jobs/{job_id}", json={"description": "daily"})
    assert (status, body["version"]) == (200, 2) and "message" in body
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/tasks", json=task("report", "load"))
    assert status == 201 and body["id"] == "report" and "message" in body
    status, tasks, _ = await api.call("GET", f"/jobs/{job_id}/tasks")
    assert status == 200 and [t["id"] for t in tasks] == ["extract", "load", "report"]
    assert tasks[1]["dependents"] == ["report"]
    status, body, _ = await api.call(
        "PUT", f"/jobs/{job_id}/tasks/report", json={"name": "Report", "triggerRule": "all_done"}
    )
    assert (status, body["version"]) == (200, 4)
    status, tasks, _ = await api.call("GET", f"/jobs/{job_id}/tasks")
    assert tasks[2]["name"] == "Report" and tasks[2]["triggerRule"] == "all_done"
    status, body, _ = await api.call("DELETE", f"/jobs/{job_id}/tasks/report")
    assert (status, body["version"]) == (200, 5)

    status, body, _ = await api.call("POST", f"/jobs/{job_id}/pause")
    assert status == 200 and body["paused"] is True
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/trigger")
    assert status == 409 and "paused" in body["error"]["message"]
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/resume")
    assert status == 200 and body["paused"] is False and body["nextFireAt"] is not None

    status, body, _ = await api.call("GET", f"/jobs/{job_id}/status")
    assert status == 404 and body["error"]["code"] == "no_executions"
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/trigger", json={"params": {"day": 1}})
    assert status == 202 and set(body) == {"executionId", "message", "status"}
    execution_id = body["executionId"]
    status, latest, _ = await api.call("GET", f"/jobs/{job_id}/status")
    assert status == 200 and latest["executionId"] == execution_id
    assert latest["status"] in ("PENDING", "RUNNING") and latest["definitionVersion"] == 5
    assert latest["params"] == {"day": 1}
    assert set(latest["tasks"][0]) == {
        "id",
        "status",
        "attempts",
        "startedAt",
        "finishedAt",
        "error",
    }
    status, history, response = await api.call("GET", f"/jobs/{job_id}/history?limit=5")
    assert status == 200 and response.headers["X-Total-Count"] == "1"
    assert history[0]["executionId"] == execution_id and history[0]["trigger"] == "manual"
    assert history[0]["definitionVersion"] == 5

    status, body, _ = await api.call("DELETE", f"/jobs/{job_id}")
    assert status == 200 and "message" in body
    status, body, _ = await api.call("GET", f"/jobs/{job_id}")
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("tasks", "message", "field"),
    [
        (
            [task("a", "c"), task("b", "a"), task("c", "b")],
            "dependency cycle: a → b → c → a",
            "dependencies",
        ),
        ([task("a"), task("b", "ghost")], "b depends on unknown tasks: ghost", "dependencies"),
        ([task("a"), task("a")], "duplicate task ids: a", "tasks"),
        ([task(f"t{i}") for i in range(501)], "at most 500 tasks", "tasks"),
        (
            [{**task("a"), "action": {"kind": "http", "url": "ftp://x"}}],
            "scheme",
            "tasks[0].action.url",
        ),
        ([{**task("a"), "triggerRule": "sometimes"}], "triggerRule", "tasks[0].triggerRule"),
        ([task("a", retryPolicy={"type": "MAYBE"})], "MAYBE", "tasks[0].retryPolicy.type"),
    ],
)
async def test_each_invalid_dag_is_a_422_naming_the_problem_and_changes_nothing(
    api: Api, tasks: list[dict], message: str, field: str
) -> None:
    before = await api.event_count()
    status, body, _ = await api.call("POST", "/jobs", json={"name": "j", "tasks": tasks})
    assert status == 422, body
    assert message in body["error"]["message"] and body["error"]["field"] == field
    assert await api.event_count() == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"maxActiveRuns": 0}, "maxActiveRuns"),
        ({"overlapPolicy": "sometimes"}, "overlapPolicy"),
        ({"retryPolicy": {"maxRetries": -1}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"backoff": {"delaySeconds": 0}}}, "retryPolicy.backoff.delaySeconds"),
        ({"surprise": 1}, "surprise"),
        ({"name": ""}, "name"),
    ],
)
async def test_invalid_job_fields(api: Api, fields: dict, field: str) -> None:
    status, body, _ = await api.call(
        "POST", "/jobs", json={"name": "j", "tasks": [task("a")], **fields}
    )
    assert status == 422, body
    assert body["error"]["field"] == field


async def test_task_edits_are_validated_and_deleting_a_dependency_names_its_dependents(
    api: Api,
) -> None:
    job_id = await create(api, task("a"), task("b", "a"), task("c", "a"))
    before = await api.event_count()
    status, body, _ = await api.call("DELETE", f"/jobs/{job_id}/tasks/a")
    assert status == 409 and "a is a dependency of b, c" in body["error"]["message"]
    status, body, _ = await api.call("PUT", f"/jobs/{job_id}/tasks/a", json={"dependencies": ["c"]})
    assert status == 422 and "a → c → a" in body["error"]["message"]
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/tasks", json=task("a"))
    assert status == 409 and "already exists" in body["error"]["message"]
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/tasks", json=task("d", "zz"))
    assert status == 422 and body["error"]["field"] == "dependencies"
    status, body, _ = await api.call(
        "POST", f"/jobs/{job_id}/tasks", json={**task("e"), "timeoutSeconds": 0}
    )
    assert status == 422 and body["error"]["field"] == "timeoutSeconds"
    status, body, _ = await api.call("PUT", f"/jobs/{job_id}/tasks/a", json={"id": "other"})
    assert status == 422 and body["error"]["field"] == "id"
    status, body, _ = await api.call("PUT", f"/jobs/{job_id}/tasks/nope", json={"name": "x"})
    assert status == 404
    assert await api.event_count() == before


async def test_bad_requests_answer_the_surface_error_shape(api: Api) -> None:
    job_id = await create(api, task("a"))
    status, body, _ = await api.call(
        "POST", "/jobs", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and body["error"]["code"] == "invalid_json"
    status, body, _ = await api.call(
        "POST", "/jobs", data=b"x", headers={"Content-Type": "text/plain"}
    )
    assert status == 415 and set(body["error"]) == {"code", "message", "field"}
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/trigger", json={"params": [1]})
    assert status == 422 and body["error"]["field"] == "params"
    big = {"params": {"blob": "x" * 11_000}}
    status, body, _ = await api.call("POST", f"/jobs/{job_id}/trigger", json=big)
    assert status == 422 and body["error"]["field"] == "params"
    status, body, _ = await api.call(
        "POST", f"/jobs/{job_id}/trigger", headers={"Idempotency-Key": "k" * 201}
    )
    assert status == 422 and body["error"]["field"] == "Idempotency-Key"
    status, body, _ = await api.call("GET", "/jobs?limit=0")
    assert status == 422 and body["error"]["field"] == "limit"
    status, body, _ = await api.call("GET", "/jobs?page=0")
    assert status == 422 and body["error"]["field"] == "page"
    status, body, _ = await api.call("GET", "/jobs?sort=name")
    assert status == 422 and body["error"]["field"] == "sort"
    status, page_two, response = await api.call("GET", "/jobs?page=2&limit=1")
    assert status == 200 and page_two == [] and response.headers["X-Offset"] == "1"
    status, body, _ = await api.call("GET", "/jobs", key="wrong")
    assert status == 401 and "error" in body


async def test_an_idempotency_key_gives_the_same_execution(api: Api) -> None:
    job_id = await create(api, task("a"))
    key = {"Idempotency-Key": "run-2026-12-01"}
    first = await api.call("POST", f"/jobs/{job_id}/trigger", headers=key)
    second = await api.call("POST", f"/jobs/{job_id}/trigger", headers=key)
    other = await api.call("POST", f"/jobs/{job_id}/trigger", headers={"Idempotency-Key": "x"})
    assert first[0] == second[0] == 202
    assert first[1]["executionId"] == second[1]["executionId"] != other[1]["executionId"]
    assert second[1]["message"] == "execution already triggered"
    _, history, _ = await api.call("GET", f"/jobs/{job_id}/history")
    assert len(history) == 2
    # The same key on another project's job of its own is another execution.
    job_b = (
        await api.call("POST", "/jobs", key=api.key_b, json={"name": "b", "tasks": [task("a")]})
    )[1]["id"]
    b = await api.call("POST", f"/jobs/{job_b}/trigger", key=api.key_b, headers=key)
    assert b[1]["executionId"] != first[1]["executionId"]


async def test_another_projects_job_is_not_found_everywhere(api: Api) -> None:
    job_id = await create(api, task("a"))
    execution_id = (await api.call("POST", f"/jobs/{job_id}/trigger"))[1]["executionId"]
    before = await api.event_count()
    for method, path, body in [
        ("GET", f"/jobs/{job_id}", None),
        ("PUT", f"/jobs/{job_id}", {"name": "mine"}),
        ("DELETE", f"/jobs/{job_id}", None),
        ("GET", f"/jobs/{job_id}/tasks", None),
        ("POST", f"/jobs/{job_id}/tasks", task("b")),
        ("PUT", f"/jobs/{job_id}/tasks/a", {"name": "x"}),
        ("DELETE", f"/jobs/{job_id}/tasks/a", None),
        ("POST", f"/jobs/{job_id}/trigger", None),
        ("GET", f"/jobs/{job_id}/status", None),
        ("GET", f"/jobs/{job_id}/history", None),
        ("POST", f"/jobs/{job_id}/pause", None),
        ("POST", f"/jobs/{job_id}/resume", None),
        ("GET", f"/jobs/{job_id}/executions/{execution_id}", None),
        ("POST", f"/jobs/{job_id}/executions/{execution_id}/cancel", None),
        ("POST", f"/jobs/{job_id}/executions/{execution_id}/retry", None),
    ]:
        status, answer, _ = await api.call(method, path, key=api.key_b, json=body)
        assert status == 404, (method, path, answer)
        assert answer["error"]["code"] == "not_found"
    status, jobs, _ = await api.call("GET", "/jobs", key=api.key_b)
    assert status == 200 and jobs == []
    assert await api.event_count() == before


async def test_the_openapi_document_is_valid_and_lists_every_route(api: Api) -> None:
    status, document, _ = await api.call("GET", "/jobs/openapi.json")
    assert status == 200
    validate(document)
    paths = document["paths"]
    for path, methods in {
        "/jobs": {"get", "post"},
        "/jobs/{id}": {"get", "put", "delete"},
        "/jobs/{id}/tasks": {"get", "post"},
        "/jobs/{id}/tasks/{taskId}": {"put", "delete"},
        "/jobs/{id}/trigger": {"post"},
        "/jobs/{id}/status": {"get"},
        "/jobs/{id}/history": {"get"},
        "/jobs/{id}/pause": {"post"},
        "/jobs/{id}/resume": {"post"},
        "/jobs/{id}/executions/{executionId}/cancel": {"post"},
        "/jobs/{id}/executions/{executionId}/retry": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
