"""The Kafka envelope of a log event, its topic and record, and the subscriber's dedupe memory."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from infra.event_envelope import EventEnvelope, kafka_record, topic_for
from infra.event_store import RecordedEvent
from infra.json_codec import decode
from services.streaming.subscriber import SeenIds

EVENT = RecordedEvent(
    position=42,
    txid=7,
    stream_id="task-abc",
    version=3,
    event_id=uuid.UUID("0b6f3c2e-6a55-4a0e-9e2e-2b4a0f3e9d11"),
    type="task.updated",
    schema_version=2,
    project_id="p1",
    data='{"type": "task.updated", "priority": 7}',
    metadata='{"actor": "api_key:k1"}',
    recorded_at=datetime(2026, 12, 1, 14, 58, 3, 120553, tzinfo=UTC),
)


def test_each_event_family_has_its_topic() -> None:
    assert topic_for("task.created") == "taskstream.task"
    assert topic_for("worker.offline") == "taskstream.worker"
    assert topic_for("job.run.started") == "taskstream.job"


def test_record_is_keyed_by_stream_and_carries_type_and_id_headers() -> None:
    record = kafka_record(EVENT)
    assert record.topic == "taskstream.task"
    assert record.key == b"task-abc"
    assert record.headers == [
        ("type", b"task.updated"),
        ("id", b"0b6f3c2e-6a55-4a0e-9e2e-2b4a0f3e9d11"),
    ]


def test_envelope_holds_the_documented_fields_and_the_event_json_unchanged() -> None:
    value = json.loads(kafka_record(EVENT).value)
    assert value == {
        "id": "0b6f3c2e-6a55-4a0e-9e2e-2b4a0f3e9d11",
        "type": "task.updated",
        "schema": 2,
        "stream_id": "task-abc",
        "stream_version": 3,
        "position": 42,
        "project_id": "p1",
        "time": "2026-12-01T14:58:03.120553Z",
        "data": {"type": "task.updated", "priority": 7},
        "metadata": {"actor": "api_key:k1"},
    }
    back = decode(kafka_record(EVENT).value, EventEnvelope)
    assert back.id == EVENT.event_id and back.time == EVENT.recorded_at


def test_seen_ids_drop_repeats_and_forget_the_oldest_beyond_their_size() -> None:
    seen = SeenIds(2)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert seen.first_time(a) and seen.first_time(b)
    assert not seen.first_time(a)
    assert seen.first_time(c)  # forgets b, the least recently seen
    assert seen.first_time(b)
