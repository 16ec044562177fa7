"""Signed values for the dashboard: the session cookie and the CSRF token bound to it.

HMAC-SHA256 under the gateway's session key (TASKSTREAM_UI_SESSION_KEY). The CSRF token is
derived from the session id, so it needs no storage and is worthless with another session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(key: bytes, purpose: str, value: str) -> str:
    digest = hmac.new(key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign(key: bytes, value: str) -> str:
    """`value.signature`, for a cookie."""
    return f"{value}.{_mac(key, 'cookie', value)}"


def unsign(key: bytes, token: str | None) -> str | None:
    """The value of a token `sign` made with `key`, else None."""
    if not token or len(token) > 512:
        return None
    value, _, signature = token.rpartition(".")
    if not value or not hmac.compare_digest(signature, _mac(key, "cookie", value)):
        return None
    return value


def csrf_token(key: bytes, session_id: str) -> str:
    """The token every state-changing form of this session carries."""
    return _mac(key, "csrf", session_id)


def csrf_ok(key: bytes, session_id: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented), csrf_token(key, session_id))
