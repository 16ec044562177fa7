"""/api/webhooks: per-project endpoints for signed lifecycle webhooks, and their delivery log."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from domain.webhook_policy import SUPPORTED_EVENTS
from infra.egress_guard import check_destination, parse_allow_list
from infra.secret_store import webhook_owner
from services.surfaces.api_surface import webhook_schemas as w
from services.surfaces.api_surface.schemas import check_page, page_meta
from services.surfaces.kit.context import context_of
from services.surfaces.kit.http_json import read_query, respond
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.request_body import read_json
from services.surfaces.kit.route_table import Route
from services.surfaces.kit.surface import project_of
from services.webhooks.notify_secrets import fresh_secret, notify_secret
from services.webhooks.queries import (
    ENDPOINT_COLUMNS,
    EndpointRow,
    delivery_attempts,
    endpoint_row,
    list_endpoints,
    owns_endpoint,
    redeliver,
)

MAX_ENDPOINTS_PER_PROJECT = 50


def _out(row: EndpointRow) -> w.WebhookOut:
    return w.WebhookOut(
        id=row.endpoint_id,
        url=row.url,
        events=row.events,
        description=row.description,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


def _page(query: w.PageQuery) -> tuple[int, int]:
    return query.limit, check_page(query.page, query.limit)


async def create_handler(request: web.Request) -> web.Response:
    body = await read_json(request, w.WebhookCreate)
    ctx = context_of(request)
    unknown = sorted(set(body.events) - SUPPORTED_EVENTS)
    if unknown:
        raise HttpProblem(
            422,
            "validation_error",
            f"unknown events: {', '.join(unknown)}; known: {', '.join(sorted(SUPPORTED_EVENTS))}",
            field="events",
        )
    check_destination(body.url, parse_allow_list(ctx.settings.egress_allow_cidrs), field="url")
    project = project_of(request)
    count = await ctx.pool.fetchval(
        "SELECT count(*) FROM webhook_endpoints"
        " WHERE project_id = $1 AND disabled_at IS NULL AND task_id IS NULL",
        project,
    )
    if count >= MAX_ENDPOINTS_PER_PROJECT:
        raise HttpProblem(409, "limit_reached", f"at most {MAX_ENDPOINTS_PER_PROJECT} endpoints")
    secret, endpoint_id = fresh_secret(), f"wh_{uuid.uuid4().hex}"
    row = await ctx.pool.fetchrow(
        f"INSERT INTO webhook_endpoints (endpoint_id, project_id, url, secret, events, description)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}",
        endpoint_id,
        project,
        body.url,
        ctx.keyring.seal_text(secret, webhook_owner(endpoint_id)),
        sorted(set(body.events)),
        body.description,
    )
    out = _out(endpoint_row(row))
    created = w.WebhookCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, secret=secret)
    return respond(w.WebhookCreatedEnvelope(data=created), status=201)


async def list_handler(request: web.Request) -> web.Response:
    query = read_query(request, w.PageQuery)
    limit, offset = _page(query)
    rows, total = await list_endpoints(
        context_of(request).pool, project_of(request), limit=limit, offset=offset
    )
    meta = page_meta(query.page, limit, total)
    return respond(w.WebhookListEnvelope(data=[_out(r) for r in rows], meta=meta))


async def delete_handler(request: web.Request) -> web.Response:
    ctx = context_of(request)
    deleted = await ctx.pool.fetchval(
        "DELETE FROM webhook_endpoints"
        " WHERE endpoint_id = $1 AND project_id = $2 AND task_id IS NULL RETURNING 1",
        request.match_info["id"],
        project_of(request),
    )
    if deleted is None:
        raise HttpProblem(404, "not_found", "webhook endpoint not found")
    return respond(
        w.WebhookDeletedEnvelope(
            data=w.WebhookDeleted(success=True, message="Webhook endpoint deleted successfully")
        )
    )


async def deliveries_handler(request: web.Request) -> web.Response:
    query = read_query(request, w.PageQuery)
    limit, offset = _page(query)
    ctx = context_of(request)
    endpoint = request.match_info["id"]
    if not await owns_endpoint(ctx.pool, project_of(request), endpoint):
        raise HttpProblem(404, "not_found", "webhook endpoint not found")
    rows, total = await delivery_attempts(ctx.pool, endpoint, limit=limit, offset=offset)
    meta = page_meta(query.page, limit, total)
    return respond(
        w.DeliveryAttemptsEnvelope(
            data=[w.DeliveryAttemptOut(**msgspec.structs.asdict(r)) for r in rows], meta=meta
        )
    )


async def redeliver_handler(request: web.Request) -> web.Response:
    queued = await redeliver(
        context_of(request).pool,
        project_of(request),
        request.match_info["id"],
        request.match_info["delivery_id"],
    )
    if queued is None:
        raise HttpProblem(404, "not_found", "webhook delivery not found")
    return respond(
        w.RedeliveryEnvelope(data=w.RedeliveryOut(**msgspec.structs.asdict(queued))),
        status=202,
    )


async def notify_secret_handler(request: web.Request) -> web.Response:
    """The project's secret for per-task notify_url deliveries, created on first use."""
    ctx = context_of(request)
    secret = await notify_secret(ctx.pool, ctx.keyring, project_of(request))
    return respond(w.NotifySecretEnvelope(data=w.NotifySecret(secret=secret)))


async def rotate_notify_secret_handler(request: web.Request) -> web.Response:
    ctx = context_of(request)
    secret = await notify_secret(ctx.pool, ctx.keyring, project_of(request), rotate=True)
    return respond(w.NotifySecretEnvelope(data=w.NotifySecret(secret=secret)))


WEBHOOK_ROUTES = [
    Route("POST", "/webhooks", create_handler, "Create a webhook endpoint (secret shown once)",
          w.WebhookCreatedEnvelope, status=201, body=w.WebhookCreate,
          example={"url": "https://example.com/hooks/taskstream", "events": ["task.completed"]},
          errors=(400, 401, 409, 415, 422), tags=("webhooks",)),
    Route("GET", "/webhooks", list_handler, "List webhook endpoints", w.WebhookListEnvelope,
          query=w.PageQuery, errors=(401, 422), tags=("webhooks",)),
    Route("DELETE", "/webhooks/{id}", delete_handler, "Delete a webhook endpoint",
          w.WebhookDeletedEnvelope, errors=(401, 404), tags=("webhooks",)),
    Route("GET", "/webhooks/{id}/deliveries", deliveries_handler,
          "Delivery attempts to one endpoint, newest first", w.DeliveryAttemptsEnvelope,
          query=w.PageQuery, errors=(401, 404, 422), tags=("webhooks",)),
    Route("POST", "/webhooks/{id}/deliveries/{delivery_id}/redeliver", redeliver_handler,
          "Queue one more attempt of a delivery now (same webhook-id and payload)",
          w.RedeliveryEnvelope, status=202, errors=(401, 404), tags=("webhooks",)),
    Route("GET", "/webhooks/notify-secret", notify_secret_handler,
          "The secret that signs per-task notify_url deliveries", w.NotifySecretEnvelope,
          errors=(401,), tags=("webhooks",)),
    Route("POST", "/webhooks/notify-secret/rotate", rotate_notify_secret_handler,
          "Replace the notify_url signing secret", w.NotifySecretEnvelope,
          errors=(401,), tags=("webhooks",)),
]  # fmt: skip
