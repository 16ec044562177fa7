"""Creates made repeatable by an `Idempotency-Key`: the first request with a key reserves the
task id (in PostgreSQL, so restarts keep it), and every repeat within 24 hours creates or finds
that same task.

There is no "in flight" state to get stuck in: a request that died after reserving the id
leaves a reservation that its retry completes, and two repeats racing each other both end on
the one task the event store let through. Only a digest of the body is kept, never the body,
which may carry secrets (action headers); a repeat answers with the task as it is now.
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec

from domain.errors import InvalidState, NotFound
from domain.idempotency import check_key, check_repeat
from domain.task_definition import TaskDefinition
from infra import idempotency_store
from services.tasks.service import Actor, Created, TaskService


class Outcome(msgspec.Struct, frozen=True):
    created: Created
    replayed: bool  # True: a repeat of an earlier request with this key


def fingerprint(body: msgspec.Struct) -> bytes:
    """The digest a repeat must match: of the decoded body, so JSON spacing does not count."""
    return hashlib.sha256(msgspec.json.encode(body)).digest()


async def create_once(
    tasks: TaskService,
    project_id: str,
    definition: TaskDefinition,
    *,
    key: str,
    digest: bytes,
    scope: str,
    actor: Actor,
) -> Outcome:
    """Create the task `definition` describes unless this key already did, within the window."""
    claim = await idempotency_store.claim(
        tasks.pool, project_id, scope, check_key(key), digest, str(uuid.uuid4())
    )
    if not claim.first:
        check_repeat(claim.fingerprint, digest)
        try:
            return Outcome(Created(await tasks.get(project_id, claim.resource_id), True), True)
        except NotFound:
            pass  # the first request died before creating, or a dedupe key matched instead
    try:
        created = await tasks.create_or_match(
            project_id, definition, actor=actor, task_id=claim.resource_id
        )
    except InvalidState:
        # A racing repeat created it first, or the task this key made has been deleted since.
        try:
            state = await tasks.get(project_id, claim.resource_id)
        except NotFound:
            raise InvalidState(
                f"the task this Idempotency-Key created ({claim.resource_id}) was deleted;"
                " use a new key"
            ) from None
        return Outcome(Created(state, True), True)
    return Outcome(created, replayed=not claim.first)
