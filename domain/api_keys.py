"""API keys `ts_<key id>_<secret>` (hex); only a SHA-256 digest is kept, compared in constant time.

The key id is public and finds the stored row; the secret carries 256 random bits, so a plain
SHA-256 suffices (a slow hash protects low-entropy passwords, not random keys).
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

PREFIX = "ts"
KEY_ID_BYTES = 6
SECRET_BYTES = 32


class IssuedKey(msgspec.Struct, frozen=True):
    key_id: str
    api_key: str
    digest: bytes


class ParsedKey(msgspec.Struct, frozen=True):
    key_id: str
    api_key: str


def issue_key(random_bytes: bytes) -> IssuedKey:
    """Make a key from KEY_ID_BYTES + SECRET_BYTES of randomness supplied by the caller."""
    if len(random_bytes) != KEY_ID_BYTES + SECRET_BYTES:
        raise ValueError(f"need {KEY_ID_BYTES + SECRET_BYTES} random bytes")
    # Hex keeps `_` out of both parts, so the key splits unambiguously and survives any shell.
    key_id = random_bytes[:KEY_ID_BYTES].hex()
    api_key = f"{PREFIX}_{key_id}_{random_bytes[KEY_ID_BYTES:].hex()}"
    return IssuedKey(key_id, api_key, digest(api_key))


def digest(api_key: str) -> bytes:
    """The stored form of a key."""
    return hashlib.sha256(api_key.encode()).digest()


def parse_key(text: str) -> ParsedKey | None:
    """Split a presented key; None if it is not shaped like one of ours."""
    parts = text.split("_", 2)
    if (
        len(parts) != 3
        or parts[0] != PREFIX
        or len(parts[1]) != 2 * KEY_ID_BYTES
        or len(parts[2]) != 2 * SECRET_BYTES
        or not _is_hex(parts[1] + parts[2])
    ):
        return None
    return ParsedKey(parts[1], text)


def matches(api_key: str, stored_digest: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(digest(api_key), stored_digest)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
