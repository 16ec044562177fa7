"""What stands in front of every dashboard page: security headers, the session, CSRF, errors.

- Content-Security-Policy: scripts and styles only from /ui/static (no inline script, no inline
  event handler, no inline style), no framing, forms post only here.
- The session: a signed cookie naming a server-side session (services/sessions); its project
  becomes the request's principal, so every read below is that project's and nothing else's.
- CSRF: every POST carries `csrf_token`, derived from the session id (or, for the login form,
  from a pre-login nonce cookie). A post without it changes nothing and gets a 403.
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from services.sessions.store import session_owner
from services.surfaces.kit.auth import Principal
from services.surfaces.kit.context import context_of
from services.surfaces.kit.problems import HttpProblem
from services.surfaces.kit.route_table import Handler
from services.surfaces.kit.surface import PRINCIPAL, admit, problem_pages
from services.surfaces.ui_surface.rendering import render
from services.surfaces.ui_surface.signing import csrf_ok, csrf_token, sign, unsign

MOUNT = "/ui"
SESSION_COOKIE = "ts_session"
LOGIN_COOKIE = "ts_login"
CSRF_FIELD = "csrf_token"
SESSION_KEY = web.AppKey("ui_session_key", bytes)
SESSION_ID = web.RequestKey("ui_session_id", str)
# Who the form's CSRF token is bound to: the session, or before login the login nonce.
CSRF_SUBJECT = web.RequestKey("ui_csrf_subject", str)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_OPEN = frozenset({MOUNT + "/", MOUNT + "/login"})
_STATIC = MOUNT + "/static/"


def session_key(request: web.Request) -> bytes:
    return request.app[SESSION_KEY]


def signed_in(request: web.Request) -> bool:
    return request.get(PRINCIPAL) is not None


def page_context(request: web.Request, **values: object) -> dict[str, object]:
    """What every template may use: the CSRF token, the project, the page path."""
    subject = request.get(CSRF_SUBJECT)
    principal = request.get(PRINCIPAL)
    return {
        "csrf": csrf_token(session_key(request), subject) if subject else "",
        "project_id": principal.project_id if principal else None,
        "path": request.path,
        **values,
    }


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str,
               max_age: int) -> None:  # fmt: skip
    response.set_cookie(
        name, value, max_age=max_age, path=MOUNT, httponly=True, samesite="Strict",
        secure=request.secure,
    )  # fmt: skip


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            raise
        response = exc
    if response.prepared:  # a stream (the live feed) has sent its headers already
        return response
    response.headers.update(_SECURITY_HEADERS)
    # The page's own time on the server (scripts/bench/ui_pages.py reads it).
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    if not request.path.startswith(_STATIC):
        response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _error_page(request: web.Request, problem: HttpProblem) -> web.StreamResponse:
    """A failure as an HTML page with its status (never a stack trace)."""
    context = page_context(request, problem=problem, signed_in=signed_in(request))
    response = render("error.html", context, status=problem.status)
    response.headers.update(problem.headers)
    response.headers.update(_SECURITY_HEADERS)
    return response


errors = problem_pages(_error_page)


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(_STATIC):
        return await handler(request)
    key = session_key(request)
    session_id = unsign(key, request.cookies.get(SESSION_COOKIE))
    pool = context_of(request).pool
    owner = None if session_id is None else await session_owner(pool, session_id)
    new_nonce = None
    if owner is not None and session_id is not None:
        admit(request, Principal(owner.project_id, "ui", owner.key_id))
        request[SESSION_ID] = session_id
        request[CSRF_SUBJECT] = session_id
    else:
        nonce = unsign(key, request.cookies.get(LOGIN_COOKIE))
        if nonce is None:
            nonce = new_nonce = secrets.token_urlsafe(24)
        request[CSRF_SUBJECT] = nonce
        if request.path not in _OPEN:
            if request.method == "GET":
                raise web.HTTPSeeOther(MOUNT + "/")
            raise HttpProblem(401, "unauthorized", "sign in first")
    if request.method == "POST":
        form = await request.post()
        presented = form.get(CSRF_FIELD)
        token = presented if isinstance(presented, str) else None
        if not csrf_ok(key, request[CSRF_SUBJECT], token):
            raise HttpProblem(
                403, "csrf_refused", "the form's CSRF token is missing or invalid; reload the page",
                field=CSRF_FIELD,
            )  # fmt: skip
    response = await handler(request)
    if new_nonce is not None:
        set_cookie(response, request, LOGIN_COOKIE, sign(key, new_nonce), 3600)
    return response
