"""Verify the webhooks taskstream sends (Standard Webhooks v1, HMAC-SHA256).

    from taskstream_client import webhooks
    event = webhooks.verify(request_body, request_headers, [new_secret, old_secret])

The signed content is ``f"{webhook-id}.{webhook-timestamp}." + body``; the timestamp is inside
the MAC, so refusing stale timestamps stops replays. During a secret rotation pass both the new
and the old secret: a message signed with either is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from taskstream_client.errors import TaskstreamError

DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(TaskstreamError):
    """Missing headers, a timestamp outside the tolerance, or no valid signature."""


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not whsec_<base64>") from None
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(body: bytes, secret: str, msg_id: str, timestamp: int) -> dict[str, str]:
    """The headers taskstream would send with `body`: for testing your own receiver."""
    signature = base64.b64encode(_mac(_key(secret), msg_id, str(timestamp), body)).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """The decoded JSON payload if `headers` carry a fresh v1 signature of `body` made with any
    of `secrets`; else raise WebhookVerificationError. Pass the raw body, not re-encoded JSON."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    keys = [_key(s) for s in ([secrets] if isinstance(secrets, str) else secrets)]
    if not keys:
        raise ValueError("at least one secret is required")
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "").strip()
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (stamp.isascii() and stamp.isdigit()):
        raise WebhookVerificationError("webhook-timestamp is not an integer")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is more than {tolerance} s from now (replayed or clock skew)"
        )
    given = []
    for versioned in signatures.split():
        version, _, encoded = versioned.partition(",")
        if version == "v1":
            try:
                given.append(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                continue
    matched = False
    for key in keys:
        expected = _mac(key, msg_id, stamp, raw)
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookVerificationError("no valid v1 signature for any of the given secrets")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise WebhookVerificationError("the signed body is not JSON") from None
