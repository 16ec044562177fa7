"""The encrypted store: AES-256-GCM under the key from TASKSTREAM_SECRETS_KEY.

Three kinds of secret are kept here or sealed the same way (docs/secrets.md):

* a task's outbound header values, one `task_secrets` row per reference, written and destroyed
  in the same transaction as the task events that set or drop them (`TaskSecretStore.write`);
* webhook endpoint signing secrets and each project's notify secret, sealed in their own
  columns (`Keyring.seal_text` / `open_text`).

A sealed value is `ts1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The associated data
binds it to its owner (`task-headers:<project>:<task>:<ref>`, `webhook:<endpoint>`,
`notify:<project>`), so a value copied to another row or project does not open. The key id
lets several keys be read at once while `taskstream secrets rekey` moves values to the current
one (rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.action_secrets import SecretChange
from infra.group_commit import InlineWrite
from infra.settings import Settings, data_path

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_PREFIX_VERSION = "ts1"
KEY_FILE = "secrets.key"


class SecretsKeyError(ValueError):
    """The key is missing or malformed; the message says which variable to set."""


class SecretUnreadable(Exception):
    """A sealed value no configured key opens, or one bound to another owner."""


def generate_key() -> str:
    """A fresh key as TASKSTREAM_SECRETS_KEY takes it (base64url of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str, variable: str = "TASKSTREAM_SECRETS_KEY") -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise SecretsKeyError(f"{variable} is not base64url") from None
    if len(key) != KEY_BYTES:
        raise SecretsKeyError(f"{variable} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"taskstream-secrets-key-id:" + key).hexdigest()[:12]


class Keyring:
    """Seals with the current key; opens with the current or any previous one."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self.current_id = _key_id(current)
        self._ciphers = {_key_id(k): AESGCM(k) for k in (*previous, current)}

    def seal(self, plaintext: bytes, owner: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.current_id].encrypt(nonce, plaintext, owner.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{SEALED_PREFIX_VERSION}.{self.current_id}.{blob}"

    def open(self, token: str, owner: str) -> bytes:
        try:
            version, key_id, blob = token.split(".", 2)
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except (ValueError, binascii.Error):
            raise SecretUnreadable("not a sealed value") from None
        cipher = self._ciphers.get(key_id)
        if version != SEALED_PREFIX_VERSION or cipher is None:
            raise SecretUnreadable(f"sealed under key {key_id!r}, which is not configured")
        try:
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], owner.encode())
        except InvalidTag:
            raise SecretUnreadable("sealed value does not open for this owner") from None

    def is_stale(self, stored: str) -> bool:
        """Not sealed under the current key (sealed under an older one, or legacy plaintext)."""
        return not stored.startswith(f"{SEALED_PREFIX_VERSION}.{self.current_id}.")

    def seal_text(self, value: str, owner: str) -> str:
        return self.seal(value.encode(), owner)

    def open_text(self, stored: str, owner: str) -> str:
        """The value of a sealed column; a value from before sealing is returned as it is.

        Such legacy values (`whsec_…`) are what `taskstream secrets scrub` seals.
        """
        if not is_sealed(stored):
            return stored
        return self.open(stored, owner).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX_VERSION + ".")


def key_file(settings: Settings) -> Path:
    return data_path(settings) / KEY_FILE


def ensure_key_file(settings: Settings) -> Path:
    """Create the data dir's key file (mode 0600) unless it exists; `taskstream dev` calls it."""
    path = key_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as out:
        out.write(generate_key() + "\n")
    return path


def load_keyring(settings: Settings) -> Keyring:
    """The keyring from TASKSTREAM_SECRETS_KEY, else from the data dir's key file.

    Every process that seals or opens (gateway, worker, scheduler) must see the same key:
    set the variable for all of them, or give them the same data dir.
    """
    text = settings.secrets_key
    if text is None:
        path = key_file(settings)
        if not path.exists():
            raise SecretsKeyError(
                "TASKSTREAM_SECRETS_KEY is not set and there is no key file at"
                f" {path} (`taskstream dev` creates one; `taskstream secrets generate-key`"
                " prints a new key)"
            )
        text = path.read_text(encoding="utf-8")
    previous = [
        parse_key(k, "TASKSTREAM_SECRETS_PREVIOUS_KEYS")
        for k in settings.secrets_previous_keys.split(",")
        if k.strip()
    ]
    return Keyring(parse_key(text), previous)


def task_owner(project_id: str, task_id: str, ref: str) -> str:
    return f"task-headers:{project_id}:{task_id}:{ref}"


def webhook_owner(endpoint_id: str) -> str:
    return f"webhook:{endpoint_id}"


def notify_owner(project_id: str) -> str:
    return f"notify:{project_id}"


def new_ref() -> str:
    """An unguessable reference for one set of header values."""
    return "sec_" + secrets.token_urlsafe(18)


class _SecretRow(msgspec.Struct, frozen=True):
    project_id: str
    task_id: str
    ref: str | None
    token: str | None


# One statement per group-commit batch (at most one row per task): each row destroys every
# older entry of its task and, unless `ref` is null (a delete, or headers removed), writes the
# new one. It runs in the append's transaction, so values exist exactly when their event does.
WRITE_SQL = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS r(project_id text, task_id text, ref text, token text)
), shredded AS (
    DELETE FROM task_secrets s USING input i
     WHERE s.task_id = i.task_id AND s.project_id = i.project_id
       AND s.ref IS DISTINCT FROM i.ref
)
INSERT INTO task_secrets (ref, project_id, task_id, token)
SELECT ref, project_id, task_id, token FROM input WHERE ref IS NOT NULL
"""


class TaskSecretStore:
    """Header values of tasks' outbound calls, by reference."""

    def __init__(self, pool: asyncpg.Pool, keyring: Keyring) -> None:
        self.pool = pool
        self.keyring = keyring

    def write(self, project_id: str, task_id: str, change: SecretChange) -> InlineWrite:
        """The row to write with the append that made `change`."""
        token = None
        if change.ref is not None:
            plaintext = msgspec.json.encode(change.values)
            token = self.keyring.seal(plaintext, task_owner(project_id, task_id, change.ref))
        return InlineWrite(WRITE_SQL, _SecretRow(project_id, task_id, change.ref, token))

    async def values(self, project_id: str, task_id: str, ref: str) -> dict[str, str] | None:
        """The header values under `ref`, or None once they were replaced or destroyed."""
        token = await self.pool.fetchval(
            "SELECT token FROM task_secrets WHERE ref = $1 AND task_id = $2 AND project_id = $3",
            ref,
            task_id,
            project_id,
        )
        if token is None:
            return None
        plaintext = self.keyring.open(token, task_owner(project_id, task_id, ref))
        return msgspec.json.decode(plaintext, type=dict[str, str])
