"""A taskstream subscriber on confluent-kafka (librdkafka), the client most Kafka users run.

It assigns itself every partition of every `taskstream.*` topic instead of joining a consumer
group: no group coordination is needed, it starts reading at once, and it works on the
embedded tansu broker of `taskstream dev` (see docs/events.md, "Embedded broker limits").
It still keeps its offsets in Kafka under `group` (a commit needs no group membership), so a
restart resumes where it stopped. It dedupes by event `id` (delivery is at least once).

    pip install confluent-kafka
    python -m scripts.subscribers.confluent_tail --bootstrap 127.0.0.1:9092 --group my-app

Run one such process per group; for several processes sharing the partitions of one group,
use `consumer.subscribe([...])` against Apache Kafka (docker-compose.yml) instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

TOPIC_PREFIX = "taskstream."
Handle = Callable[[dict[str, Any]], None]


def consumer_for(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,  # names where the offsets are kept; we never join the group
            "enable.auto.commit": False,  # commit after handling, not before
            "auto.offset.reset": "earliest",
        }
    )


def assign_new_partitions(consumer: Consumer, assigned: set[tuple[str, int]]) -> int:
    """Add every `taskstream.*` partition not yet read, from its committed offset (else from
    the beginning); topics the relay creates later are picked up on the next call."""
    metadata = consumer.list_topics(timeout=10)
    fresh = [
        TopicPartition(topic, partition)
        for topic, meta in metadata.topics.items()
        if topic.startswith(TOPIC_PREFIX)
        for partition in meta.partitions
        if (topic, partition) not in assigned
    ]
    if not fresh:
        return 0
    starts = consumer.committed(fresh, timeout=10)
    for tp in starts:
        if tp.offset < 0:  # nothing committed for this group yet
            tp.offset = OFFSET_BEGINNING
    consumer.incremental_assign(starts)
    assigned.update((tp.topic, tp.partition) for tp in starts)
    return len(starts)


def run(
    bootstrap: str,
    group: str,
    handle: Handle,
    stop: threading.Event,
    *,
    refresh_seconds: float = 2.0,
) -> None:
    """Hand each new event to `handle`, once per id, until `stop` is set."""
    consumer = consumer_for(bootstrap, group)
    assigned: set[tuple[str, int]] = set()
    seen: set[str] = set()  # a real subscriber keeps these with its effects, in one transaction
    refreshed = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - refreshed > refresh_seconds:
                assign_new_partitions(consumer, assigned)
                refreshed = time.monotonic()
            messages = consumer.consume(num_messages=500, timeout=0.5)
            offsets: dict[tuple[str, int], int] = {}
            for message in messages:
                if message.error():
                    raise KafkaException(message.error())
                envelope = json.loads(message.value())
                if envelope["id"] not in seen:
                    handle(envelope)
                    seen.add(envelope["id"])
                offsets[(message.topic(), message.partition())] = message.offset() + 1
            if offsets:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    asynchronous=False,
                )
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap host:port")
    parser.add_argument("--group", default="confluent-tail", help="offsets kept under this id")
    args = parser.parse_args()
    stop = threading.Event()
    try:
        run(args.bootstrap, args.group, lambda e: print(json.dumps(e), flush=True), stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
