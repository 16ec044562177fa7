"""Every view the asynchronous projector keeps, by table name."""

from __future__ import annotations

from projections.metrics_view import METRICS_VIEW
from projections.view_projection import ViewProjection
from projections.worker_view import WORKER_VIEW

VIEWS: dict[str, ViewProjection] = {v.table: v for v in (WORKER_VIEW, METRICS_VIEW)}
