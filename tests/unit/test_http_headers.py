"""The one header rule every surface applies, and sealing header values out of decided events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import events as ev
from domain.action_secrets import SecretChange, seal_events, unsealed_values
from domain.actions import HttpAction
from domain.commands import CreateTask, DeleteTask, TaskPatch, UpdateTask
from domain.errors import ValidationError
from domain.http_headers import (
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    REDACTED,
    validate_headers,
    with_kept_values,
)
from domain.schedule import Schedule
from domain.task import decide, fold
from domain.task_definition import TaskDefinition

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FRAMING = [
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "transfer-encoding",
    "Connection",
    "Keep-Alive",
    "Upgrade",
    "TE",
    "Trailer",
    "Proxy-Authorization",
    "proxy-connection",
]


@pytest.mark.parametrize("name", FRAMING)
def test_framing_and_hop_by_hop_headers_are_refused_by_name(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_headers({name: "x"}, "action.headers")
    assert refused.value.field == "action.headers"
    assert repr(name) in refused.value.message


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "Ünï", "a(b)", "X\r\nY", "a/b", "{x}"])
def test_names_that_are_not_rfc9110_tokens_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="not an RFC 9110 token"):
        validate_headers({name: "x"}, "action.headers")


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\0b", "x\r\n\r\nGET / HTTP/1.1"])
def test_values_with_cr_lf_or_nul_are_refused_naming_the_header(value: str) -> None:
    with pytest.raises(ValidationError, match="'X-Token'"):
        validate_headers({"X-Token": value}, "action.headers")


def test_count_and_total_size_limits() -> None:
    validate_headers({f"X-{i}": "v" for i in range(MAX_HEADERS)}, "h")
    with pytest.raises(ValidationError, match=f"at most {MAX_HEADERS}"):
        validate_headers({f"X-{i}": "v" for i in range(MAX_HEADERS + 1)}, "h")
    validate_headers({"X-Big": "v" * (MAX_HEADER_BYTES - 5)}, "h")
    with pytest.raises(ValidationError, match="the limit is 8192"):
        validate_headers({"X-Big": "v" * (MAX_HEADER_BYTES - 4)}, "h")


def test_a_name_given_twice_in_different_case_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        validate_headers({"X-Key": "a", "x-key": "b"}, "h")


def test_ordinary_headers_pass() -> None:
    validate_headers(
        {"Authorization": "Bearer x", "Content-Type": "application/json", "X-A_b.c~!": "1"}, "h"
    )


def test_the_rule_is_applied_by_decide_with_the_action_field() -> None:
    definition = _definition({"Transfer-Encoding": "chunked"})
    with pytest.raises(ValidationError) as refused:
        decide(None, CreateTask(task_id="t", project_id="p", definition=definition), now=NOW)
    assert refused.value.field == "action.headers"


def _definition(headers: dict[str, str]) -> TaskDefinition:
    return TaskDefinition(
        name="n",
        schedule=Schedule(kind="once", expr="2026-01-02T00:00:00+00:00"),
        action=HttpAction(url="https://example.com/hook", headers=headers),
    )


def _created(headers: dict[str, str]) -> list[ev.TaskEvent]:
    command = CreateTask(task_id="t", project_id="p", definition=_definition(headers))
    return decide(None, command, now=NOW)


def test_sealed_create_keeps_names_and_a_reference_and_no_value() -> None:
    events, change = seal_events(_created({"Authorization": "Bearer B-secret"}), "sec_1")
    (created,) = events
    assert isinstance(created, ev.TaskCreated)
    action = created.definition.action
    assert isinstance(action, HttpAction)
    assert action.headers == {"Authorization": REDACTED}
    assert action.secret_ref == "sec_1"
    assert change == SecretChange(ref="sec_1", values={"Authorization": "Bearer B-secret"})
    assert "B-secret" not in repr(events)


def test_a_create_without_headers_changes_no_secret_and_drops_a_callers_reference() -> None:
    definition = _definition({})
    assert isinstance(definition.action, HttpAction)
    forged = HttpAction(url=definition.action.url, secret_ref="sec_someone_elses")
    command = CreateTask(
        task_id="t",
        project_id="p",
        definition=TaskDefinition(name="n", schedule=definition.schedule, action=forged),
    )
    events, change = seal_events(decide(None, command, now=NOW), "sec_new")
    assert change is None
    created = events[0]
    assert isinstance(created, ev.TaskCreated)
    assert isinstance(created.definition.action, HttpAction)
    assert created.definition.action.secret_ref is None


def test_an_update_of_the_action_replaces_and_one_elsewhere_leaves_the_secret() -> None:
    sealed, _ = seal_events(_created({"Authorization": "old"}), "sec_1")
    state = fold(sealed)
    assert state is not None
    new_action = HttpAction(url="https://example.com/hook", headers={"Authorization": "B-new"})
    updated = decide(state, UpdateTask(patch=TaskPatch(action=new_action)), now=NOW)
    events, change = seal_events(updated, "sec_2")
    assert change == SecretChange(ref="sec_2", values={"Authorization": "B-new"})
    assert "B-new" not in repr(events)
    assert isinstance(events[0], ev.TaskUpdated)
    assert events[0].definition.action == HttpAction(
        url="https://example.com/hook", headers={"Authorization": REDACTED}, secret_ref="sec_2"
    )
    renamed = decide(state, UpdateTask(patch=TaskPatch(name="other")), now=NOW)
    assert seal_events(renamed, "sec_3")[1] is None


def test_removing_the_headers_or_deleting_the_task_destroys_the_values() -> None:
    sealed, _ = seal_events(_created({"Authorization": "old"}), "sec_1")
    state = fold(sealed)
    assert state is not None
    bare = HttpAction(url="https://example.com/hook")
    removed = decide(state, UpdateTask(patch=TaskPatch(action=bare)), now=NOW)
    assert seal_events(removed, "sec_2")[1] == SecretChange(ref=None)
    deleted = decide(state, DeleteTask(), now=NOW)
    assert seal_events(deleted, "sec_2")[1] == SecretChange(ref=None)


def test_redacted_values_keep_what_is_stored_under_their_name() -> None:
    given = {"Authorization": REDACTED, "X-New": "n", "X-Unknown": REDACTED}
    stored = {"Authorization": "Bearer kept", "X-Old": "dropped"}
    assert with_kept_values(given, stored) == {
        "Authorization": "Bearer kept",
        "X-New": "n",
        "X-Unknown": REDACTED,
    }


def test_unsealed_values_are_those_of_actions_without_a_reference() -> None:
    legacy = HttpAction(url="https://e.com", headers={"A": "v", "B": REDACTED})
    assert unsealed_values(legacy) == {"A": "v"}
    sealed = HttpAction(url="https://e.com", headers={"A": REDACTED}, secret_ref="sec_1")
    assert unsealed_values(sealed) == {}
    assert unsealed_values(None) == {}


def test_any_update_of_a_task_stored_before_sealing_moves_its_values_out() -> None:
    legacy = fold(_created({"Authorization": "Bearer LEGACY"}))  # appended unsealed
    assert legacy is not None
    renamed = decide(legacy, UpdateTask(patch=TaskPatch(name="other")), now=NOW)
    events, change = seal_events(renamed, "sec_9")
    assert change == SecretChange(ref="sec_9", values={"Authorization": "Bearer LEGACY"})
    assert "LEGACY" not in repr(events)
