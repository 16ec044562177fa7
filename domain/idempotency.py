"""Idempotency keys (the `Idempotency-Key` request header): what a valid key is, and what a
repeat of a keyed request means.

Within the window the same key with the same body answers with what the first request made;
the same key with a different body is the client's mistake and is refused (422), following
the IETF draft "The Idempotency-Key HTTP Header Field" (409 there is for a request still in
flight, which cannot happen here: the first request reserves the id before it creates).
"""

from __future__ import annotations

from datetime import timedelta

from domain.errors import ValidationError

HEADER = "Idempotency-Key"
WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def check_key(key: str) -> str:
    """`key` if it is 1-255 visible ASCII characters, else a ValidationError naming the header."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationError(f"must be 1-{MAX_KEY_LENGTH} characters", field=HEADER)
    if not all("!" <= ch <= "~" for ch in key):
        raise ValidationError("must be visible ASCII without spaces", field=HEADER)
    return key


def check_repeat(stored: bytes, given: bytes) -> None:
    """A repeat of a key must carry the same body as the request that first used it."""
    if stored != given:
        raise ValidationError(
            "this key was used with a different request body in the last 24 hours;"
            " use a new key for a new request",
            field=HEADER,
        )
