"""Bodies of the /api/webhooks endpoints."""

from __future__ import annotations

from datetime import datetime

import msgspec

from services.surfaces.api_surface.schemas import Body, PageMeta, PageSize
from services.surfaces.kit.paging import PageNumber
from services.webhooks.queries import AttemptRow, Redelivery


class WebhookCreate(Body):
    url: str
    events: list[str] = []
    description: str | None = None


class WebhookOut(msgspec.Struct, kw_only=True):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


class WebhookCreated(WebhookOut, kw_only=True):
    """Carries the signing secret: shown once, here."""

    secret: str


class WebhookCreatedEnvelope(msgspec.Struct, kw_only=True):
    data: WebhookCreated


class WebhookListEnvelope(msgspec.Struct, kw_only=True):
    data: list[WebhookOut]
    meta: PageMeta


class DeliveryAttemptOut(AttemptRow, frozen=True, kw_only=True):
    """One attempt of one delivery; `status` is the delivery's (pending, succeeded, failed)."""


class DeliveryAttemptsEnvelope(msgspec.Struct, kw_only=True):
    data: list[DeliveryAttemptOut]
    meta: PageMeta


class RedeliveryOut(Redelivery, frozen=True, kw_only=True):
    """The delivery, due again now."""


class RedeliveryEnvelope(msgspec.Struct, kw_only=True):
    data: RedeliveryOut


class WebhookDeleted(msgspec.Struct, kw_only=True):
    success: bool
    message: str


class WebhookDeletedEnvelope(msgspec.Struct, kw_only=True):
    data: WebhookDeleted


class PageQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    page: PageNumber = 1
    limit: PageSize = 20


class NotifySecret(msgspec.Struct, kw_only=True):
    secret: str


class NotifySecretEnvelope(msgspec.Struct, kw_only=True):
    data: NotifySecret
