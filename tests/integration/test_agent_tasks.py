"""Seed 004's `/tasks` surface (tasks for agents) against a real gateway and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.surfaces.agent_tasks_surface.schemas import AgentTaskOut
from tests.integration.api_harness import Api, running_api

AGENT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
OTHER_AGENT = "0f8fad5b-d9cb-469f-a165-70867728950e"
TASK_FIELDS = set(AgentTaskOut.__struct_fields__)
ERROR_FIELDS = {"error", "message", "field"}


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(pool, max_body_bytes=16 * 1024) as a:
        yield a


def agent_task(**extra: Any) -> dict[str, Any]:
    """A task-definition.json with every required field of the document; None drops a field."""
    body = {
        "title": "Daily digest",
        "description": "Summarise yesterday's tickets for the team",
        "schedule_kind": "cron",
        "schedule_expr": "0 9 * * *",
        "payload": {"steps": ["fetch", "summarise", "post"]},
        "created_by": AGENT,
        **extra,
    }
    return {k: v for k, v in body.items() if v is not None}


async def create(api: Api, body: dict[str, Any] | None = None, key: str | None = None) -> dict:
    status, task, _ = await api.call("POST", "/tasks", json=body or agent_task(), key=key)
    assert status == 201, task
    return dict(task)


async def test_example_create_request_as_written(api: Api) -> None:
    # The document's curl: Content-Type JSON, `Authorization: Bearer <agent token>`, a full file.
    definition = agent_task(
        timezone="Europe/Chisinau",
        priority=2,
        max_retries=5,
        backoff_strategy="linear",
        dedupe_key="digest-2026-12-01",
        dedupe_window_seconds=3600,
        concurrency_key="digests",
    )
    status, task, _ = await api.call(
        "POST",
        "/tasks",
        json=definition,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.key_a}"},
    )
    assert status == 201, task
    assert set(task) == TASK_FIELDS
    assert {k: task[k] for k in definition} == definition
    assert (task["status"], task["run_status"]) == ("active", "pending")
    due = datetime.fromisoformat(task["next_run_at"])
    assert due > datetime.now(UTC)
    assert due.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Chisinau")).hour == 9
    # Priority 2 of 1-9 (1 highest) is the core's 8 of 1-10 (10 highest).
    _, core, _ = await api.call("GET", f"/api/tasks/{task['id']}")
    assert core["data"]["priority"] == 8
    status, got, _ = await api.call("GET", f"/tasks/{task['id']}")
    assert (status, got) == (200, task)


async def test_defaults_follow_the_document(api: Api) -> None:
    task = await create(api)
    assert (task["timezone"], task["priority"], task["max_retries"]) == ("UTC", 5, 3)
    assert task["backoff_strategy"] == "exponential_jitter"
    assert task["dedupe_key"] is None and task["concurrency_key"] is None


async def test_each_schedule_kind_is_accepted(api: Api) -> None:
    once_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    rrule = await create(
        api, agent_task(schedule_kind="rrule", schedule_expr="FREQ=WEEKLY;BYDAY=MO")
    )
    once = await create(api, agent_task(schedule_kind="once", schedule_expr=once_at.isoformat()))
    named = await create(api, agent_task(schedule_kind="event", schedule_expr="invoice.paid"))
    unnamed = await create(api, agent_task(schedule_kind="event", schedule_expr=None))
    assert rrule["next_run_at"] is not None
    assert datetime.fromisoformat(once["next_run_at"]) == once_at
    assert (named["schedule_expr"], named["next_run_at"]) == ("invoice.paid", None)
    # Without an expression an event task listens for an event named by its own id.
    assert unnamed["schedule_expr"] == unnamed["id"]


async def test_a_dedupe_key_within_its_window_answers_with_the_holder(api: Api) -> None:
    first = await create(api, agent_task(dedupe_key="k1", dedupe_window_seconds=600))
    status, again, _ = await api.call(
        "POST", "/tasks", json=agent_task(title="again", dedupe_key="k1")
    )
    assert (status, again["id"], again["title"]) == (200, first["id"], "Daily digest")


async def test_list_filters_by_status_created_by_and_kind_with_limit_and_offset(api: Api) -> None:
    crons = [await create(api, agent_task(title=f"cron {i}")) for i in range(3)]
    event = await create(
        api, agent_task(schedule_kind="event", schedule_expr="e", created_by=OTHER_AGENT)
    )
    await api.call("POST", f"/tasks/{crons[0]['id']}/pause")
    await api.call("POST", f"/tasks/{crons[1]['id']}/cancel")
    await create(api, key=api.key_b)  # another project's task is never listed

    async def ids(query: str) -> list[str]:
        status, page, _ = await api.call("GET", "/tasks" + query)
        assert status == 200, page
        assert set(page) == {"tasks", "total", "limit", "offset"}
        return [t["id"] for t in page["tasks"]]

    _, page, _ = await api.call("GET", "/tasks")
    assert (page["total"], page["limit"], page["offset"]) == (4, 50, 0)
    assert await ids("?status=active") == [event["id"], crons[2]["id"]]
    assert await ids("?status=paused") == [crons[0]["id"]]
    assert await ids("?status=canceled") == [crons[1]["id"]]
    assert await ids(f"?created_by={OTHER_AGENT}") == [event["id"]]
    assert await ids("?schedule_kind=event") == [event["id"]]
    assert await ids("?schedule_kind=cron&limit=2&offset=1") == [crons[1]["id"], crons[0]["id"]]


async def test_put_changes_only_the_fields_given(api: Api) -> None:
    task = await create(api)
    status, updated, _ = await api.call(
        "PUT",
        f"/tasks/{task['id']}",
        json={"title": "Weekly digest", "schedule_expr": "0 9 * * 1", "priority": 1},
    )
    assert status == 200, updated
    assert (updated["title"], updated["schedule_expr"], updated["priority"]) == (
        "Weekly digest",
        "0 9 * * 1",
        1,
    )
    unchanged = ("description", "payload", "created_by", "schedule_kind", "timezone", "max_retries")
    assert {k: updated[k] for k in unchanged} == {k: task[k] for k in unchanged}
    assert datetime.fromisoformat(updated["next_run_at"]).weekday() == 0
    status, moved, _ = await api.call(
        "PUT", f"/tasks/{task['id']}", json={"schedule_kind": "event", "backoff_strategy": "fixed"}
    )
    assert status == 200, moved
    assert (moved["schedule_expr"], moved["next_run_at"]) == (task["id"], None)
    assert (moved["backoff_strategy"], moved["max_retries"]) == ("fixed", 3)


async def test_pause_resume_cancel_and_the_status_words_of_both_surfaces(api: Api) -> None:
    task = await create(api)
    path = f"/tasks/{task['id']}"
    status, paused, _ = await api.call("POST", path + "/pause")
    assert (status, paused["status"]) == (200, "paused")
    status, resumed, _ = await api.call("POST", path + "/resume")
    assert (status, resumed["status"], resumed["next_run_at"]) == (
        200,
        "active",
        task["next_run_at"],
    )
    status, canceled, _ = await api.call("POST", path + "/cancel")
    assert (status, canceled["status"], canceled["next_run_at"]) == (200, "canceled", None)
    # One task, one canonical state, each surface in its own words.
    _, core, _ = await api.call("GET", f"/api{path}")
    assert core["data"]["status"] == "cancelled"
    _, listed, _ = await api.call("GET", "/api/tasks?status=cancelled")
    assert [t["id"] for t in listed["data"]] == [task["id"]]
    _, listed, _ = await api.call("GET", "/tasks?status=canceled")
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]


async def test_run_now_makes_the_task_due_now_and_snooze_moves_the_next_run(api: Api) -> None:
    task = await create(api)
    before = datetime.now(UTC)
    status, ran, _ = await api.call("POST", f"/tasks/{task['id']}/run_now")
    assert status == 202, ran
    assert before <= datetime.fromisoformat(ran["next_run_at"]) <= datetime.now(UTC)

    other = await create(api)
    status, snoozed, _ = await api.call(
        "POST", f"/tasks/{other['id']}/snooze", json={"delay_seconds": 900, "reason": "busy"}
    )
    assert status == 200, snoozed
    moved = datetime.fromisoformat(snoozed["next_run_at"]) - datetime.fromisoformat(
        other["next_run_at"]
    )
    assert moved == timedelta(seconds=900)
    reason = await api.pool.fetchval(
        "SELECT data->>'reason' FROM events WHERE type = 'task.snoozed'"
    )
    assert reason == "busy"


async def test_events_answer_with_the_tasks_they_triggered(api: Api) -> None:
    listener = await create(api, agent_task(schedule_kind="event", schedule_expr="deploy.done"))
    await create(api, agent_task(schedule_kind="event", schedule_expr="something.else"))
    status, fired, _ = await api.call(
        "POST", "/events", json={"name": "deploy.done", "payload": {"sha": "abc"}}
    )
    assert status == 202, fired
    assert fired == {"triggered": [listener["id"]], "skipped": []}
    data = await api.pool.fetchval("SELECT data::text FROM events WHERE type = 'task.triggered'")
    assert '"event":"deploy.done"' in data.replace(" ", "") and '"sha"' in data


# --- refusals: each in this surface's error shape, naming the field, and writing nothing ------


async def refused(
    api: Api, method: str, path: str, status: int, code: str, field: str | None, **kwargs: Any
) -> dict:
    before = await api.event_count()
    got_status, body, _ = await api.call(method, path, **kwargs)
    assert (got_status, body["error"], body["field"]) == (status, code, field), body
    assert set(body) == ERROR_FIELDS and body["message"]
    assert await api.event_count() == before, "a refused request must write nothing"
    return dict(body)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"schedule_kind": "once", "schedule_expr": "next tuesday"}, "schedule_expr"),
        ({"schedule_kind": "once", "schedule_expr": "2099-01-01T09:00:00"}, "schedule_expr"),
        # (A past `once` is accepted and runs at once, late: test_new_user_bugs.py.)
        ({"schedule_kind": "once", "schedule_expr": "9999-01-01T09:00:00Z"}, "schedule_expr"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"schedule_expr": "61 * * * *"}, "schedule_expr"),
        ({"schedule_kind": "rrule", "schedule_expr": "FREQ=FORTNIGHTLY"}, "schedule_expr"),
        ({"schedule_expr": None}, "schedule_expr"),
        ({"priority": 0}, "priority"),
        ({"priority": 10}, "priority"),
        ({"backoff_strategy": "random"}, "backoff_strategy"),
        ({"max_retries": 101}, "max_retries"),
        ({"schedule_kind": "hourly"}, "schedule_kind"),
        ({"created_by": "agent-7"}, "created_by"),
        ({"title": " "}, "title"),
        ({"color": "blue"}, "color"),
        ({"payload": {"action": {"kind": "teleport"}}}, "payload.action"),
        ({"payload": {"action": {"kind": "http", "url": "http://169.254.169.254/"}}},
         "payload.action.url"),
        ({"dedupe_window_seconds": 60}, "dedupe_window_seconds"),
    ],
)  # fmt: skip
async def test_bad_create_fields_are_422_naming_the_field(
    api: Api, extra: dict[str, Any], field: str
) -> None:
    await refused(api, "POST", "/tasks", 422, "validation_error", field, json=agent_task(**extra))


@pytest.mark.parametrize(
    "missing", ["title", "description", "schedule_kind", "payload", "created_by"]
)
async def test_each_required_field_is_required(api: Api, missing: str) -> None:
    body = {k: v for k, v in agent_task().items() if k != missing}
    await refused(api, "POST", "/tasks", 422, "validation_error", missing, json=body)


async def test_oversize_body_is_413(api: Api) -> None:
    body = agent_task(payload={"blob": "x" * 20_000})
    await refused(api, "POST", "/tasks", 413, "payload_too_large", None, json=body)


async def test_malformed_json_is_400(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    await refused(
        api, "POST", "/tasks", 400, "invalid_json", None, data=b'{"title":', headers=headers
    )


async def test_non_json_body_is_415(api: Api) -> None:
    headers = {"Content-Type": "text/plain"}
    await refused(
        api, "POST", "/tasks", 415, "unsupported_media_type", None, data=b"x", headers=headers
    )


async def test_missing_credentials_are_401(api: Api) -> None:
    body = await refused(
        api, "GET", "/tasks", 401, "unauthorized", None, headers={"Authorization": ""}
    )
    assert "Authorization" in body["message"]


@pytest.mark.parametrize(
    ("method", "suffix", "json"),
    [
        ("GET", "", None),
        ("PUT", "", {"title": "mine now"}),
        ("POST", "/run_now", None),
        ("POST", "/snooze", {"delay_seconds": 60}),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("POST", "/cancel", None),
    ],
)
async def test_another_projects_task_is_404_everywhere(
    api: Api, method: str, suffix: str, json: dict | None
) -> None:
    theirs = await create(api, key=api.key_b)
    path = f"/tasks/{theirs['id']}{suffix}"
    await refused(api, method, path, 404, "not_found", None, json=json)


async def test_unknown_task_is_404(api: Api) -> None:
    await refused(api, "GET", "/tasks/00000000-0000-4000-8000-000000000000", 404, "not_found", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delay_seconds": 604_801}, "delay_seconds"),
        ({"delay_seconds": 0}, "delay_seconds"),
        ({"delay_seconds": "soon"}, "delay_seconds"),
        ({"reason": "no delay"}, "delay_seconds"),
    ],
)
async def test_bad_snooze_is_422(api: Api, body: dict[str, Any], field: str) -> None:
    task = await create(api)
    path = f"/tasks/{task['id']}/snooze"
    await refused(api, "POST", path, 422, "validation_error", field, json=body)


@pytest.mark.parametrize(
    ("setup", "action", "json"),
    [
        ("/pause", "/run_now", None),
        ("/cancel", "/snooze", {"delay_seconds": 60}),
        ("/cancel", "/resume", None),
        ("/cancel", "/run_now", None),
    ],
)
async def test_commands_that_do_not_apply_now_are_409(
    api: Api, setup: str, action: str, json: dict | None
) -> None:
    task = await create(api)
    await api.call("POST", f"/tasks/{task['id']}{setup}")
    await refused(
        api, "POST", f"/tasks/{task['id']}{action}", 409, "invalid_state", None, json=json
    )


async def test_snooze_of_an_event_task_with_nothing_scheduled_is_409(api: Api) -> None:
    task = await create(api, agent_task(schedule_kind="event", schedule_expr=None))
    path = f"/tasks/{task['id']}/snooze"
    await refused(api, "POST", path, 409, "invalid_state", None, json={"delay_seconds": 60})


async def test_bad_put_is_422_and_changes_nothing(api: Api) -> None:
    task = await create(api)
    path = f"/tasks/{task['id']}"
    await refused(api, "PUT", path, 422, "validation_error", "schedule_expr",
                  json={"schedule_kind": "rrule"})  # fmt: skip
    await refused(api, "PUT", path, 422, "validation_error", "priority", json={"priority": 10})
    _, got, _ = await api.call("GET", path)
    assert got == task


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=cancelled", "status"),
        ("?limit=0", "limit"),
        ("?offset=-1", "offset"),
        ("?created_by=someone", "created_by"),
        ("?schedule_kind=weekly", "schedule_kind"),
        ("?sort=title", "sort"),
    ],
)
async def test_bad_list_queries_are_422(api: Api, query: str, field: str) -> None:
    await refused(api, "GET", "/tasks" + query, 422, "validation_error", field)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": "has spaces"}, "name"), ({"payload": {}}, "name"), ({"name": "x", "n": 1}, "n")],
)
async def test_bad_events_are_422(api: Api, body: dict[str, Any], field: str) -> None:
    await refused(api, "POST", "/events", 422, "validation_error", field, json=body)
