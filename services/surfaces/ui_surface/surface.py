"""The dashboard at /ui: its routes, static files and middlewares, as one sub-application."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.live.changes import ChangeFeed
from services.surfaces.kit.route_table import Route, add_routes
from services.surfaces.ui_surface import actions, pages
from services.surfaces.ui_surface.guard import MOUNT, SESSION_KEY, errors, security_headers, session
from services.surfaces.ui_surface.live import FEED, events

STATIC = Path(__file__).parent / "static"

_TASK = "/tasks/{id}"
ROUTES = [
    Route("GET", "/", pages.overview, "Overview, or the login form without a session", None),
    Route("POST", "/login", actions.login, "Open a session with a project API key", None),
    Route("POST", "/logout", actions.logout, "End the session", None),
    Route("GET", "/tasks", pages.tasks, "Tasks, filtered, in keyset pages", None),
    Route("GET", _TASK, pages.task, "One task: definition, fires, runs, events", None),
    Route("POST", _TASK + "/{action}", actions.task_action,
          "Run now, pause, resume, cancel or retry a task", None),
    Route("GET", "/workers", pages.workers, "Workers", None),
    Route("GET", "/webhooks", pages.webhooks, "Webhook endpoints and their deliveries", None),
    Route("POST", "/webhooks/{id}/deliveries/{delivery_id}/redeliver", actions.redeliver_one,
          "Send a delivery again", None),
    Route("GET", "/dead-letters", pages.dead_letter_page, "Tasks failed for good", None),
    Route("POST", "/dead-letters/retry", actions.retry_selected, "Retry the selected", None),
    Route("GET", "/live", events, "Server-sent change signals for this session's project", None),
]  # fmt: skip


def build_ui_app(session_key: bytes) -> web.Application:
    """The /ui sub-application; `session_key` signs its cookies and CSRF tokens."""
    app = web.Application(middlewares=[security_headers, errors, session])
    app[SESSION_KEY] = session_key
    feed = ChangeFeed()
    app[FEED] = feed

    async def stop_feed(_: web.Application) -> None:
        await feed.close()

    app.on_shutdown.append(stop_feed)
    add_routes(app, ROUTES)
    app.router.add_static("/static", STATIC, append_version=False)
    return app


__all__ = ["MOUNT", "build_ui_app"]
