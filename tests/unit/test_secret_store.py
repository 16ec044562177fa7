"""The keyring: AES-GCM sealing bound to an owner, key ids for rotation, key loading."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.secret_store import (
    Keyring,
    SecretsKeyError,
    SecretUnreadable,
    ensure_key_file,
    generate_key,
    is_sealed,
    load_keyring,
    parse_key,
)
from infra.settings import Settings


def _ring(*previous: str) -> tuple[Keyring, str]:
    key = generate_key()
    return Keyring(parse_key(key), [parse_key(p) for p in previous]), key


def test_sealed_values_open_only_for_their_owner_and_hide_the_plaintext() -> None:
    ring, _ = _ring()
    token = ring.seal(b"Bearer B-secret", "task-headers:p:t:sec_1")
    assert b"B-secret" not in token.encode() and "B-secret" not in token
    assert is_sealed(token)
    assert ring.open(token, "task-headers:p:t:sec_1") == b"Bearer B-secret"
    with pytest.raises(SecretUnreadable):
        ring.open(token, "task-headers:other:t:sec_1")
    assert ring.seal(b"x", "o") != ring.seal(b"x", "o")  # a fresh nonce each time


def test_a_tampered_token_does_not_open() -> None:
    ring, _ = _ring()
    token = ring.seal(b"value", "o")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SecretUnreadable):
        ring.open(flipped, "o")
    with pytest.raises(SecretUnreadable):
        ring.open("not-a-token", "o")


def test_rotation_opens_with_a_previous_key_and_marks_its_values_stale() -> None:
    old_ring, old_key = _ring()
    token = old_ring.seal(b"value", "o")
    new_ring, _ = _ring(old_key)
    assert new_ring.open(token, "o") == b"value"
    assert new_ring.is_stale(token)
    assert not new_ring.is_stale(new_ring.seal(b"value", "o"))
    alone, _ = _ring()
    with pytest.raises(SecretUnreadable, match="not configured"):
        alone.open(token, "o")


def test_legacy_plaintext_column_values_pass_through_until_sealed() -> None:
    ring, _ = _ring()
    assert ring.open_text("whsec_abc", "webhook:e") == "whsec_abc"
    assert ring.is_stale("whsec_abc")
    sealed = ring.seal_text("whsec_abc", "webhook:e")
    assert ring.open_text(sealed, "webhook:e") == "whsec_abc"


@pytest.mark.parametrize("bad", ["short", "!!!!", generate_key()[:-8]])
def test_a_malformed_key_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(SecretsKeyError, match="TASKSTREAM_SECRETS_KEY"):
        load_keyring(Settings(secrets_key=bad))


def test_without_a_key_or_key_file_loading_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(SecretsKeyError, match="TASKSTREAM_SECRETS_KEY is not set"):
        load_keyring(Settings(data_dir=str(tmp_path)))


def test_the_key_file_is_created_once_with_mode_0600_and_then_used(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    path = ensure_key_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert ensure_key_file(settings) == path and path.read_text() == first
    token = load_keyring(settings).seal(b"v", "o")
    assert Keyring(parse_key(first)).open(token, "o") == b"v"
