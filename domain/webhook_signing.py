"""Standard Webhooks v1 signing: sign outgoing webhook requests and verify incoming ones.

Scheme (https://www.standardwebhooks.com, "v1" = HMAC-SHA256):

    signed content = f"{webhook-id}.{webhook-timestamp}.".encode() + body
    signature      = "v1," + base64(HMAC-SHA256(key, signed content))

Every request carries three headers (names are case-insensitive on the receiving side):

- ``webhook-id``        - the message id; identical across retries of the same message, so the
                          receiver can deduplicate. It may not contain "." or whitespace (it is
                          the first field of the dot-separated signed content) and is at most 255
                          characters.
- ``webhook-timestamp`` - integer seconds since the Unix epoch at which the attempt was signed.
- ``webhook-signature`` - one or more space-separated ``<version>,<base64>`` signatures. During
                          secret rotation the sender signs with every active secret, so a receiver
                          that knows any one of them accepts the message. Unknown versions (for
                          example the asymmetric ``v1a``) are skipped, not rejected.

Secrets are ``"whsec_" + base64(key)`` with a key of at least 24 random bytes.

Why the id and timestamp are inside the MAC: signing only the body would let anyone who captured
one delivery replay it forever, or under a different id to slip past deduplication. Binding the
id and timestamp to the body means neither can be changed without the key, so the receiver can
trust the timestamp and refuse anything older (or newer) than ``tolerance`` seconds - 300 by
default, as the standard recommends - and deduplicate by id within that window.

This module is pure: the caller passes in the current time (``now``) and the random bytes for new
secrets, so it reads neither the clock nor a random source. Signatures are compared with
``hmac.compare_digest``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_MSG_ID_LENGTH = 255
DEFAULT_TOLERANCE_SECONDS = 300
SIGNATURE_VERSION = "v1"

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MIN_SECRET_BYTES",
    "SECRET_PREFIX",
    "SignatureError",
    "headers",
    "new_secret",
    "secret_key",
    "sign",
    "verify",
]


class SignatureError(Exception):
    """An incoming webhook whose headers are missing, stale, or carry no valid signature."""


def new_secret(random_bytes: bytes) -> str:
    """Return ``"whsec_" + base64(random_bytes)``; the caller supplies >= 24 random bytes."""
    if not isinstance(random_bytes, bytes | bytearray):
        raise ValueError("random_bytes must be bytes")
    if len(random_bytes) < MIN_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret needs at least {MIN_SECRET_BYTES} random bytes, "
            f"got {len(random_bytes)}"
        )
    return SECRET_PREFIX + base64.b64encode(bytes(random_bytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """Decode a ``whsec_``-prefixed (or bare) base64 secret into the HMAC key bytes."""
    if not isinstance(secret, str):
        raise ValueError("webhook secret must be a string")
    encoded = secret.removeprefix(SECRET_PREFIX)
    if not encoded:
        raise ValueError("webhook secret is empty")
    if not encoded.isascii():
        raise ValueError("webhook secret is not valid base64 (non-ASCII characters)")
    # Accept unpadded base64, as other Standard Webhooks libraries do.
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"webhook secret is not valid base64: {exc}") from None
    if not key:
        raise ValueError("webhook secret decodes to an empty key")
    return key


def _check_msg_id(msg_id: str) -> None:
    if not isinstance(msg_id, str) or not msg_id:
        raise ValueError("webhook id must be a non-empty string")
    if len(msg_id) > MAX_MSG_ID_LENGTH:
        raise ValueError(f"webhook id is longer than {MAX_MSG_ID_LENGTH} characters")
    if "." in msg_id:
        raise ValueError("webhook id may not contain '.'")
    if any(ch.isspace() for ch in msg_id):
        raise ValueError("webhook id may not contain whitespace")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValueError("webhook timestamp must be an integer number of seconds")
    if timestamp < 0:
        raise ValueError("webhook timestamp may not be negative")


def _digest(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return ``"v1," + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}." + body))``."""
    digest = _digest(secret_key(secret), msg_id, timestamp, bytes(body))
    return f"{SIGNATURE_VERSION}," + base64.b64encode(digest).decode("ascii")


def headers(
    secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; several secrets give one signature each."""
    _check_msg_id(msg_id)
    _check_timestamp(timestamp)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("at least one webhook secret is required")
    signatures = " ".join(sign(s, msg_id, timestamp, body) for s in secrets)
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: signatures,
    }


def verify(
    secret: str,
    header_map: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise `SignatureError` unless `header_map` carries a fresh, valid v1 signature of `body`.

    `now` is the receiver's current Unix time in seconds; the timestamp must be within
    ``now ± tolerance``. A malformed `secret` is the receiver's own error and raises ValueError.
    """
    if tolerance < 0:
        raise ValueError("tolerance may not be negative")
    key = secret_key(secret)
    lowered = {name.lower(): value for name, value in header_map.items()}
    msg_id = lowered.get(HEADER_ID)
    raw_timestamp = lowered.get(HEADER_TIMESTAMP)
    raw_signatures = lowered.get(HEADER_SIGNATURE)
    if not msg_id or not raw_timestamp or not raw_signatures:
        missing = [
            name
            for name, value in (
                (HEADER_ID, msg_id),
                (HEADER_TIMESTAMP, raw_timestamp),
                (HEADER_SIGNATURE, raw_signatures),
            )
            if not value
        ]
        raise SignatureError(f"missing webhook header(s): {', '.join(missing)}")

    raw_timestamp = raw_timestamp.strip()
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        raise SignatureError("webhook-timestamp is not an integer")
    timestamp = int(raw_timestamp)
    if timestamp < now - tolerance:
        raise SignatureError("webhook timestamp is too old")
    if timestamp > now + tolerance:
        raise SignatureError("webhook timestamp is too new")

    # Sign the timestamp exactly as it appeared in the header (the sender signed that text).
    expected = _digest(key, msg_id, raw_timestamp, bytes(body))
    matched = False
    for versioned in raw_signatures.split():
        version, sep, encoded = versioned.partition(",")
        if not sep or version != SIGNATURE_VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Keep looping after a match so timing does not reveal which signature matched.
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no matching v1 webhook signature")
