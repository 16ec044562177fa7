"""What a subscriber receives from Kafka for one log event (documented in docs/events.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from infra.event_store import RecordedEvent
from infra.json_codec import encode

TOPIC_PREFIX = "taskstream."


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """One event as published: `id` is the dedupe key, `data` the event's own JSON."""

    id: uuid.UUID
    type: str
    schema: int
    stream_id: str
    stream_version: int
    position: int
    project_id: str
    time: datetime
    data: msgspec.Raw
    metadata: msgspec.Raw


def topic_for(event_type: str) -> str:
    """One topic per event family: `task.created` goes to `taskstream.task`."""
    return TOPIC_PREFIX + event_type.split(".", 1)[0]


def envelope_of(event: RecordedEvent) -> EventEnvelope:
    """The envelope of a log row; `data` and `metadata` are passed through unparsed."""
    return EventEnvelope(
        id=event.event_id,
        type=event.type,
        schema=event.schema_version,
        stream_id=event.stream_id,
        stream_version=event.version,
        position=event.position,
        project_id=event.project_id,
        time=event.recorded_at,
        data=msgspec.Raw(event.data.encode()),
        metadata=msgspec.Raw(event.metadata.encode()),
    )


class KafkaRecord(msgspec.Struct, frozen=True):
    """A log event ready to produce: keyed by stream, with type and id also in the headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def kafka_record(event: RecordedEvent) -> KafkaRecord:
    """The Kafka record for a log event (key = stream id, so one task's events stay in order)."""
    return KafkaRecord(
        topic=topic_for(event.type),
        key=event.stream_id.encode(),
        value=encode(envelope_of(event)),
        headers=[("type", event.type.encode()), ("id", str(event.event_id).encode())],
    )
