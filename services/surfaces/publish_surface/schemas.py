"""Seed 000's request and response bodies, in its own (camelCase) words."""

from __future__ import annotations

from datetime import datetime

import msgspec

from domain.actions import HttpMethod


class CallbackIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to call: the `body` object of a publish request."""

    callbackUrl: str
    method: HttpMethod = "POST"
    headers: dict[str, str] = {}
    # Sent as is (stringified JSON in the seed's example); at most 10 KB.
    body: str | None = None
    # The client's own label for the task; kept as the task's name.
    taskTag: str | None = None


class PublishIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timestamp: datetime
    projectId: str
    body: CallbackIn


class PublishOut(msgspec.Struct, frozen=True):
    message: str
    taskId: str


class DeleteIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    taskId: str
    projectId: str


class ErrorOut(msgspec.Struct, frozen=True, omit_defaults=True):
    """Seed 000's error shape (API Gateway's `{"message"}`), plus the field to blame if any."""

    message: str
    field: str | None = None
