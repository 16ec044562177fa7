"""The state gauges of services/metrics/catalog.py, read from PostgreSQL when /metrics is scraped.

Queue depths, workers and reader lag are facts about the database, not about one process, so
they are queried at scrape time (one round trip each, on indexed predicates) rather than kept
up to date by every process. Only the gateway and the scheduler serve them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.metrics import catalog as m
from services.streaming.relay import CHECKPOINT as RELAY_CHECKPOINT

# Each predicate matches an index: task_view_due, task_view_leases, webhook_deliveries_due.
# `due` is what a scheduler would claim now (the scheduler's own claim predicate).
_QUEUES = """
SELECT (SELECT count(*) FROM task_view
         WHERE lifecycle = 'active' AND next_run_at <= now()) AS due,
       (SELECT count(*) FROM task_view WHERE status = 'dispatched') AS dispatched,
       (SELECT count(*) FROM task_view WHERE status = 'running') AS running,
       (SELECT count(*) FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at <= now()) AS webhooks
"""

_WORKERS = """
SELECT count(*) FILTER (WHERE offline_at IS NULL) AS online,
       count(*) FILTER (WHERE offline_at IS NOT NULL) AS offline,
       COALESCE(EXTRACT(EPOCH FROM now() - min(last_heartbeat) FILTER (WHERE offline_at IS NULL)),
                0)::float8 AS heartbeat_age
  FROM workers
"""

# Lag in events is the distance in global position from the checkpoint to the head: one index
# probe however far behind a reader is (sequence gaps make it a slight over-estimate). Lag in
# seconds is the age of the first event the reader has not read, in its own (txid, position)
# order, so a late commit it is waiting for counts too.
_READERS = """
SELECT c.name,
       GREATEST(0, (SELECT COALESCE(max(position), 0) FROM events) - c.position)::float8
           AS behind,
       COALESCE(EXTRACT(EPOCH FROM now() - next.recorded_at), 0)::float8 AS seconds
  FROM checkpoints c
  LEFT JOIN LATERAL (
        SELECT e.recorded_at FROM events e
         WHERE (e.txid, e.position) > (c.txid, c.position)
         ORDER BY e.txid, e.position
         LIMIT 1) next ON true
 ORDER BY c.name
"""


def _family(gauge: m.StateGauge) -> GaugeMetricFamily:
    return GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels or None)


def _gauge(gauge: m.StateGauge, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(gauge.name, gauge.documentation, value=value)


async def read_state(conn: asyncpg.Connection) -> list[Metric]:
    """Every state gauge as it is now; the relay's only once its checkpoint exists."""
    queues = await conn.fetchrow(_QUEUES)
    workers = await conn.fetchrow(_WORKERS)
    readers = await conn.fetch(_READERS)
    depth = _family(m.QUEUE_DEPTH)
    for queue in ("due", "dispatched", "running", "webhooks"):
        depth.add_metric([queue], float(queues[queue]))
    live = _family(m.WORKERS)
    for state in ("online", "offline"):
        live.add_metric([state], float(workers[state]))
    families: list[Metric] = [depth, live, _gauge(m.WORKER_HEARTBEAT_AGE, workers["heartbeat_age"])]
    behind, seconds = _family(m.PROJECTION_LAG_EVENTS), _family(m.PROJECTION_LAG_SECONDS)
    for row in readers:
        if row["name"] == RELAY_CHECKPOINT:
            families.append(_gauge(m.RELAY_LAG_EVENTS, row["behind"]))
            families.append(_gauge(m.RELAY_LAG_SECONDS, row["seconds"]))
        else:
            behind.add_metric([row["name"]], row["behind"])
            seconds.add_metric([row["name"]], row["seconds"])
    return [*families, behind, seconds]


class _Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


async def state_exposition(conn: asyncpg.Connection) -> bytes:
    """The state gauges in Prometheus' text format, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await read_state(conn)))
    return generate_latest(registry)
