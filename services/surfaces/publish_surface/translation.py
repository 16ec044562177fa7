"""Seed 000's publish request ⇄ the core's one-shot HTTP callback."""

from __future__ import annotations

from services.surfaces.kit.one_shot_callback import Callback
from services.surfaces.publish_surface.schemas import PublishIn

# The name a task gets when the client gave no taskTag.
DEFAULT_NAME = "publish"

# Core field → this surface's field, for error messages.
FIELD_NAMES = {
    "name": "body.taskTag",
    "schedule.expr": "timestamp",
    "action.url": "body.callbackUrl",
    "action.method": "body.method",
    "action.headers": "body.headers",
    "action.body": "body.body",
}


def callback_from(request: PublishIn) -> Callback:
    """The callback a publish request asks for; failures retry per the core's default policy."""
    spec = request.body
    return Callback(
        name=DEFAULT_NAME if spec.taskTag is None else spec.taskTag,
        url=spec.callbackUrl,
        at=request.timestamp,
        method=spec.method,
        headers=spec.headers,
        body=spec.body,
    )
