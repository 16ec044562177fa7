"""taskstream_client.webhooks.verify against the server's signer and the standardwebhooks lib."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook
from taskstream_client import webhooks
from taskstream_client.webhooks import WebhookVerificationError

from domain import webhook_signing

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
BODY = json.dumps({"event": "task.completed", "task": {"id": "t1"}}).encode()
NOW = 1_700_000_000


def test_a_message_signed_by_the_server_verifies_and_decodes() -> None:
    headers = webhook_signing.headers(OLD, "msg_1", NOW, BODY)
    assert webhooks.verify(BODY, headers, OLD, now=NOW) == json.loads(BODY)


def test_rotation_accepts_either_secret_and_either_signing() -> None:
    by_old = webhook_signing.headers(OLD, "msg_1", NOW, BODY)
    by_both = webhook_signing.headers([NEW, OLD], "msg_1", NOW, BODY)
    for headers in (by_old, by_both):
        assert webhooks.verify(BODY, headers, [NEW, OLD], now=NOW)["task"]["id"] == "t1"
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(BODY, by_old, [NEW], now=NOW)


def test_timestamps_outside_the_tolerance_are_refused() -> None:
    headers = webhook_signing.headers(OLD, "msg_1", NOW, BODY)
    assert webhooks.verify(BODY, headers, OLD, now=NOW + 300)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(WebhookVerificationError, match="300 s"):
            webhooks.verify(BODY, headers, OLD, now=now)
    assert webhooks.verify(BODY, headers, OLD, now=NOW + 3000, tolerance=3600)


def test_tampering_and_missing_headers_are_refused() -> None:
    headers = webhook_signing.headers(OLD, "msg_1", NOW, BODY)
    with pytest.raises(WebhookVerificationError, match="no valid"):
        webhooks.verify(BODY + b" ", headers, OLD, now=NOW)
    with pytest.raises(WebhookVerificationError, match="no valid"):
        webhooks.verify(BODY, {**headers, "webhook-id": "msg_2"}, OLD, now=NOW)
    with pytest.raises(WebhookVerificationError, match="missing"):
        webhooks.verify(BODY, {"webhook-id": "msg_1"}, OLD, now=NOW)
    with pytest.raises(WebhookVerificationError, match="integer"):
        webhooks.verify(BODY, {**headers, "webhook-timestamp": "soon"}, OLD, now=NOW)
    with pytest.raises(ValueError):
        webhooks.verify(BODY, headers, "whsec_***", now=NOW)


def test_sign_agrees_with_the_standard_webhooks_library() -> None:
    headers = webhooks.sign(BODY, OLD, "msg_9", NOW)
    theirs = Webhook(OLD).sign("msg_9", datetime.fromtimestamp(NOW, UTC), BODY.decode())
    assert headers["webhook-signature"] == theirs
    mixed_case = {k.title(): v for k, v in headers.items()}
    assert webhooks.verify(BODY.decode(), mixed_case, OLD, now=NOW)
