"""Seed 002's system endpoints: `GET /api/system/status` and `GET /api/system/metrics` bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

# healthy / degraded (up but behind or short of capacity) / down; `disabled` and `unknown`
# (nothing to ask) never degrade the whole.
Health = Literal["healthy", "degraded", "down", "disabled", "unknown"]
Overall = Literal["healthy", "degraded", "unhealthy"]
Period = Literal["hour", "day", "week", "month"]
MetricName = Literal["task_completion_rate", "error_rate", "average_execution_time"]
METRIC_NAMES: tuple[MetricName, ...] = (
    "task_completion_rate",
    "error_rate",
    "average_execution_time",
)


class ApiServerOut(msgspec.Struct, kw_only=True):
    status: Health
    # Gateways do not register anywhere: null, not a guess.
    instance_count: int | None = None


class LogReaderOut(msgspec.Struct, kw_only=True):
    """A reader of the log (scheduler's pump, projector, Kafka relay) and how far behind it is."""

    status: Health
    lag_events: int | None = None
    lag_seconds: float | None = None


class SchedulerOut(LogReaderOut, kw_only=True):
    # Schedulers share due work through SKIP LOCKED: there is no leader.
    leader_id: str | None = None


class WorkersOut(msgspec.Struct, kw_only=True):
    status: Health
    active_count: int
    idle_count: int
    offline_count: int


class DatabaseOut(msgspec.Struct, kw_only=True):
    status: Health
    connection_count: int | None = None


class BrokerOut(msgspec.Struct, kw_only=True):
    status: Health
    kind: Literal["redis", "rabbitmq", "embedded"]


class ComponentsOut(msgspec.Struct, kw_only=True):
    api_server: ApiServerOut
    scheduler: SchedulerOut
    workers: WorkersOut
    database: DatabaseOut
    broker: BrokerOut
    kafka_relay: LogReaderOut
    projector: LogReaderOut


class TaskStatsOut(msgspec.Struct, kw_only=True):
    pending: int
    running: int
    completed_today: int
    failed_today: int


class QueueDepthsOut(msgspec.Struct, kw_only=True):
    high_priority: int
    normal_priority: int
    low_priority: int


class SystemStatusOut(msgspec.Struct, kw_only=True):
    status: Overall
    version: str
    uptime: int
    components: ComponentsOut
    task_stats: TaskStatsOut
    queue_depths: QueueDepthsOut


class SystemStatusEnvelope(msgspec.Struct, kw_only=True):
    data: SystemStatusOut


class MetricsQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    period: Period = "hour"
    # Comma-separated names from METRIC_NAMES; unset or empty: all of them.
    metrics: str | None = None


class PointOut(msgspec.Struct, kw_only=True):
    timestamp: datetime
    value: int | float


class MetricsMetaOut(msgspec.Struct, kw_only=True):
    period: Period
    start_time: datetime
    end_time: datetime


class MetricsEnvelope(msgspec.Struct, kw_only=True):
    data: dict[MetricName, list[PointOut]]
    meta: MetricsMetaOut
