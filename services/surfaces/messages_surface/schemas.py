"""Seed 001's request and response bodies, in its own (camelCase) words."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

# Client-chosen and addressed as a path segment in DELETE /messages/{id}: RFC 3986 unreserved
# characters and ":", never starting with "." (so neither "." nor ".." can be one), 1-128 long.
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_~:-][A-Za-z0-9._~:-]{0,127}$"
MessageId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=MESSAGE_ID_PATTERN,
        description="letters, digits and - _ ~ : . (not first), 1-128 characters",
    ),
]


class MessageIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: MessageId
    scheduleTo: datetime
    # Any JSON value; POSTed as the webhook's JSON body (at most 10 KB encoded).
    payload: Any
    webhookUrl: str


class MessageStatus(msgspec.Struct, frozen=True):
    """The answer to a schedule (`scheduled`) or a delete (`deleted`)."""

    status: str
    messageId: str


class ScheduledJob(msgspec.Struct, frozen=True):
    messageId: str
    nextRun: datetime | None
    webhookUrl: str


class ScheduledJobs(msgspec.Struct, frozen=True):
    scheduledJobs: list[ScheduledJob]
    count: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    database: str
    broker: str
    # The document's own key, present when the broker is Redis (unset: left out).
    redis: str | msgspec.UnsetType = msgspec.UNSET


class Issue(msgspec.Struct, frozen=True):
    """One rejected field, as FastAPI (the seed's framework) reports it."""

    loc: list[str]
    msg: str
    type: str


class ErrorOut(msgspec.Struct, frozen=True):
    """Seed 001's error shape: FastAPI's `{"detail": …}`; a list of issues for a 422."""

    detail: str | list[Issue]
