"""Sealing decided events: header values leave the event for the secret store.

`decide` validates the values a caller gave (CR/LF/NUL, sizes), so it sees them; what is
appended must not. `seal_events` turns the decided events into the ones the log keeps (every
header value `***`, `secret_ref` naming the new encrypted entry) and says how the task's entry in
the secret store changes: written anew, destroyed, or left alone. The caller writes that change
in the same transaction as the events, so neither exists without the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain import events as ev
from domain.actions import Action, HttpAction
from domain.http_headers import REDACTED, redacted
from domain.task_definition import TaskDefinition


class SecretChange(msgspec.Struct, frozen=True, kw_only=True):
    """The task's header values from now on: `values` under `ref`, or none (`ref` None).

    Either way every older entry of the task is destroyed: an update replaces, a delete shreds.
    """

    ref: str | None
    values: dict[str, str] = {}


def seal_action(action: Action | None, ref: str) -> tuple[Action | None, SecretChange]:
    """The action as stored and its secret-store change; `ref` is used only if there are headers."""
    if not isinstance(action, HttpAction) or not action.headers:
        if isinstance(action, HttpAction) and action.secret_ref is not None:
            action = msgspec.structs.replace(action, secret_ref=None)
        return action, SecretChange(ref=None)
    stored = msgspec.structs.replace(action, headers=redacted(action.headers), secret_ref=ref)
    return stored, SecretChange(ref=ref, values=dict(action.headers))


def _sealed_definition(definition: TaskDefinition, ref: str) -> tuple[TaskDefinition, SecretChange]:
    action, change = seal_action(definition.action, ref)
    return msgspec.structs.replace(definition, action=action), change


def seal_events(
    events: Sequence[ev.TaskEvent], ref: str
) -> tuple[list[ev.TaskEvent], SecretChange | None]:
    """The events the log may keep, and the secret-store change they imply (None: no change).

    `ref` is a fresh, unguessable id the caller made for this append.
    """
    out: list[ev.TaskEvent] = []
    change: SecretChange | None = None
    for event in events:
        if isinstance(event, ev.TaskCreated):
            definition, created = _sealed_definition(event.definition, ref)
            event = msgspec.structs.replace(event, definition=definition)
            change = created if created.ref is not None else change  # nothing to destroy yet
        elif isinstance(event, ev.TaskUpdated) and (
            # An update of a task written before sealing carries its values on: move them.
            "action" in event.changed or unsealed_values(event.definition.action)
        ):
            definition, change = _sealed_definition(event.definition, ref)
            event = msgspec.structs.replace(event, definition=definition)
        elif isinstance(event, ev.TaskDeleted):
            change = SecretChange(ref=None)
        out.append(event)
    return out, change


def unsealed_values(action: Action | None) -> dict[str, str]:
    """Header values an event written before sealing still holds (what `secrets scrub` moves)."""
    if not isinstance(action, HttpAction) or action.secret_ref is not None:
        return {}
    return {k: v for k, v in action.headers.items() if v != REDACTED}
