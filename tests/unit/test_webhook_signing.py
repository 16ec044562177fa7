"""Standard Webhooks v1 signing: interop with the reference `standardwebhooks` package,
a known-answer vector, rotation, replay tolerance, and property-based round trips."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from domain.webhook_signing import (
    SignatureError,
    headers,
    new_secret,
    secret_key,
    sign,
    verify,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_SECRET = new_secret(bytes(range(100, 132)))
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
TS = 1_700_000_000
BODY = b'{"task_id":"t_1","status":"succeeded"}'


# --- interop with the reference implementation -------------------------------------------


def test_our_headers_verify_with_reference_package() -> None:
    now = int(time.time())  # the package checks against the real clock
    hdrs = headers(SECRET, MSG_ID, now, BODY)
    assert Webhook(SECRET).verify(BODY, hdrs) == {"task_id": "t_1", "status": "succeeded"}
    # Header names are matched case-insensitively by both sides.
    upper = {k.upper(): v for k, v in hdrs.items()}
    Webhook(SECRET).verify(BODY, upper, json_parse=False)
    verify(SECRET, upper, BODY, now=now)


def test_reference_package_rejects_tampering() -> None:
    now = int(time.time())
    hdrs = headers(SECRET, MSG_ID, now, BODY)
    wh = Webhook(SECRET)
    with pytest.raises(WebhookVerificationError):
        wh.verify(BODY.replace(b"succeeded", b"failed"), hdrs, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        wh.verify(BODY, {**hdrs, "webhook-id": "msg_other"}, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        wh.verify(BODY, {**hdrs, "webhook-timestamp": str(now - 1)}, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(BODY, hdrs, json_parse=False)


def test_our_verify_rejects_tampering() -> None:
    hdrs = headers(SECRET, MSG_ID, TS, BODY)
    verify(SECRET, hdrs, BODY, now=TS)
    with pytest.raises(SignatureError, match="no matching"):
        verify(SECRET, hdrs, BODY + b" ", now=TS)
    with pytest.raises(SignatureError, match="no matching"):
        verify(SECRET, {**hdrs, "webhook-id": "msg_other"}, BODY, now=TS)
    with pytest.raises(SignatureError, match="no matching"):
        verify(SECRET, {**hdrs, "webhook-timestamp": str(TS + 1)}, BODY, now=TS)
    with pytest.raises(SignatureError, match="no matching"):
        verify(OTHER_SECRET, hdrs, BODY, now=TS)


def test_timestamp_301_seconds_old_is_rejected_by_both() -> None:
    now = int(time.time())
    hdrs = headers(SECRET, MSG_ID, now - 301, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(BODY, hdrs, json_parse=False)
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, hdrs, BODY, now=now)


def test_tolerance_window_edges() -> None:
    verify(SECRET, headers(SECRET, MSG_ID, TS - 300, BODY), BODY, now=TS)
    verify(SECRET, headers(SECRET, MSG_ID, TS + 300, BODY), BODY, now=TS)
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, headers(SECRET, MSG_ID, TS - 301, BODY), BODY, now=TS)
    with pytest.raises(SignatureError, match="too new"):
        verify(SECRET, headers(SECRET, MSG_ID, TS + 301, BODY), BODY, now=TS)
    verify(SECRET, headers(SECRET, MSG_ID, TS - 3600, BODY), BODY, now=TS, tolerance=3600)


def test_reference_package_signature_verifies_with_ours() -> None:
    stamp = datetime.fromtimestamp(TS, tz=UTC)
    signature = Webhook(SECRET).sign(MSG_ID, stamp, BODY.decode())
    assert signature == sign(SECRET, MSG_ID, TS, BODY)
    hdrs = {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(TS), "Webhook-Signature": signature}
    verify(SECRET, hdrs, BODY, now=TS + 10)


# --- known answer ------------------------------------------------------------------------


def test_known_answer_vector() -> None:
    signed = f"{MSG_ID}.{TS}.".encode() + BODY
    expected = "v1," + base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert sign(SECRET, MSG_ID, TS, BODY) == expected
    # The bare base64 form of the secret is the same key.
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TS, BODY) == expected
    assert headers(SECRET, MSG_ID, TS, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": expected,
    }


# --- rotation and signature-list parsing -------------------------------------------------


def test_rotation_either_secret_verifies() -> None:
    hdrs = headers([SECRET, OTHER_SECRET], MSG_ID, TS, BODY)
    sigs = hdrs["webhook-signature"].split(" ")
    assert sigs == [sign(SECRET, MSG_ID, TS, BODY), sign(OTHER_SECRET, MSG_ID, TS, BODY)]
    verify(SECRET, hdrs, BODY, now=TS)
    verify(OTHER_SECRET, hdrs, BODY, now=TS)
    with pytest.raises(SignatureError):
        verify(new_secret(b"\xff" * 24), hdrs, BODY, now=TS)


def test_rotation_with_reference_package() -> None:
    now = int(time.time())
    hdrs = headers((OTHER_SECRET, SECRET), MSG_ID, now, BODY)
    Webhook(SECRET).verify(BODY, hdrs, json_parse=False)
    Webhook(OTHER_SECRET).verify(BODY, hdrs, json_parse=False)


def test_unknown_versions_and_garbage_are_ignored() -> None:
    good = sign(SECRET, MSG_ID, TS, BODY)
    v1a = "v1a," + good.removeprefix("v1,")
    base = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS)}
    verify(
        SECRET, {**base, "webhook-signature": f"v1a,abc v2,xyz nocomma v1,!!! {good}"}, BODY, now=TS
    )
    with pytest.raises(SignatureError, match="no matching"):
        verify(SECRET, {**base, "webhook-signature": v1a}, BODY, now=TS)


def test_empty_header_list_has_no_secrets() -> None:
    with pytest.raises(ValueError, match="at least one"):
        headers([], MSG_ID, TS, BODY)


# --- header validation -------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_rejected(missing: str) -> None:
    hdrs = headers(SECRET, MSG_ID, TS, BODY)
    del hdrs[missing]
    with pytest.raises(SignatureError, match=f"missing webhook header.*{missing}"):
        verify(SECRET, hdrs, BODY, now=TS)
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, {**hdrs, missing: ""}, BODY, now=TS)


@pytest.mark.parametrize("bad", ["abc", "1.5", "-5", "1e9", "", " "])
def test_non_integer_timestamp_is_rejected(bad: str) -> None:
    hdrs = {**headers(SECRET, MSG_ID, TS, BODY), "webhook-timestamp": bad}
    with pytest.raises(SignatureError):
        verify(SECRET, hdrs, BODY, now=TS)


@pytest.mark.parametrize("bad_id", ["a.b", "a b", "a\tb", "a\nb", "", "x" * 256])
def test_bad_message_ids_are_refused(bad_id: str) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        headers(SECRET, bad_id, TS, BODY)


def test_longest_message_id_is_accepted() -> None:
    msg_id = "x" * 255
    verify(SECRET, headers(SECRET, msg_id, TS, BODY), BODY, now=TS)


@pytest.mark.parametrize("bad_ts", [-1, True, 1.5])
def test_bad_timestamps_are_refused(bad_ts: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        headers(SECRET, MSG_ID, bad_ts, BODY)  # type: ignore[arg-type]


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, headers(SECRET, MSG_ID, TS, BODY), BODY, now=TS, tolerance=-1)


# --- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [24, 32, 64])
def test_new_secret_format_and_length(size: int) -> None:
    raw = bytes(range(size))
    secret = new_secret(raw)
    assert secret.startswith("whsec_")
    assert len(secret) == len("whsec_") + 4 * ((size + 2) // 3)
    assert secret_key(secret) == raw
    assert Webhook(secret)._whsecret == raw


@pytest.mark.parametrize("size", [0, 1, 23])
def test_new_secret_needs_24_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="at least 24"):
        new_secret(b"\x00" * size)


def test_secret_key_accepts_unpadded_base64() -> None:
    raw = bytes(range(25))  # 25 bytes -> base64 ends in "=="
    encoded = base64.b64encode(raw).decode()
    assert encoded.endswith("==")
    assert secret_key("whsec_" + encoded.rstrip("=")) == raw


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "empty"),
        ("whsec_", "empty"),
        ("whsec_not base64!", "not valid base64"),
        ("whsec_abc$", "not valid base64"),
        ("whsec_ÄÖÜ", "not valid base64"),
        ("whsec_====", "not valid base64|empty"),
        ("whsec_a", "not valid base64"),
    ],
)
def test_bad_secrets_raise_value_error(bad: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        secret_key(bad)
    with pytest.raises(ValueError):
        sign(bad, MSG_ID, TS, BODY)
    with pytest.raises(ValueError):
        verify(bad, headers(SECRET, MSG_ID, TS, BODY), BODY, now=TS)


# --- properties --------------------------------------------------------------------------

msg_ids = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="."),
    min_size=1,
    max_size=255,
).filter(lambda s: not any(ch.isspace() for ch in s))


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2048),
    msg_id=msg_ids,
    timestamp=st.integers(min_value=0, max_value=2**40),
    key=st.binary(min_size=24, max_size=64),
)
def test_sign_verify_round_trip(body: bytes, msg_id: str, timestamp: int, key: bytes) -> None:
    secret = new_secret(key)
    hdrs = headers(secret, msg_id, timestamp, body)
    verify(secret, hdrs, body, now=timestamp)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(min_size=1, max_size=1024), data=st.data())
def test_one_bit_flip_in_body_fails(body: bytes, data: st.DataObject) -> None:
    hdrs = headers(SECRET, MSG_ID, TS, body)
    bit = data.draw(st.integers(min_value=0, max_value=len(body) * 8 - 1))
    flipped = bytearray(body)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError, match="no matching"):
        verify(SECRET, hdrs, bytes(flipped), now=TS)
