"""Scraping a real /metrics endpoint and reading it with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

# Every family taskstream exports: its type and its label names (histograms add `le`).
PROCESS_FAMILIES: Mapping[str, tuple[str, frozenset[str]]] = {
    "taskstream_http_request_duration_seconds": (
        "histogram",
        frozenset({"method", "route", "status"}),
    ),
    "taskstream_tasks_created": ("counter", frozenset()),
    "taskstream_tasks_dispatched": ("counter", frozenset()),
    "taskstream_tasks_started": ("counter", frozenset()),
    "taskstream_tasks_completed": ("counter", frozenset()),
    "taskstream_tasks_failed": ("counter", frozenset({"final"})),
    "taskstream_tasks_retried": ("counter", frozenset()),
    "taskstream_task_start_lateness_seconds": ("histogram", frozenset()),
    "taskstream_run_duration_seconds": ("histogram", frozenset({"outcome"})),
    "taskstream_webhook_delivery_attempts": ("counter", frozenset({"outcome"})),
    "taskstream_worker_heartbeats": ("counter", frozenset({"result"})),
    "taskstream_job_executions": ("counter", frozenset({"status"})),
    "taskstream_job_hop_seconds": ("histogram", frozenset()),
}
STATE_FAMILIES: Mapping[str, tuple[str, frozenset[str]]] = {
    "taskstream_queue_depth": ("gauge", frozenset({"queue"})),
    "taskstream_workers": ("gauge", frozenset({"state"})),
    "taskstream_worker_heartbeat_age_seconds": ("gauge", frozenset()),
    "taskstream_relay_lag_events": ("gauge", frozenset()),
    "taskstream_relay_lag_seconds": ("gauge", frozenset()),
    "taskstream_projection_lag_events": ("gauge", frozenset({"projection"})),
    "taskstream_projection_lag_seconds": ("gauge", frozenset({"projection"})),
}


class Scrape:
    """One parsed scrape: families by name and every sample."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of samples called `name` whose labels include `labels` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, family: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.families[family].samples if label in s.labels}

    def taskstream_label_values(self) -> set[str]:
        return {
            v for s in self.samples if s.name.startswith("taskstream_") for v in s.labels.values()
        }

    def check_shapes(self, expected: Mapping[str, tuple[str, frozenset[str]]]) -> None:
        """Each expected family is present with its type, and its samples carry its labels."""
        for name, (kind, labels) in expected.items():
            assert name in self.families, f"{name} missing"
            family = self.families[name]
            assert family.type == kind, (name, family.type)
            for sample in family.samples:
                names = set(sample.labels) - {"le"}
                assert names == labels, (sample.name, sample.labels)


async def scrape(url: str) -> Scrape:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return Scrape(await r.text())


async def scrape_until(url: str, ready: Callable[[Scrape], bool], timeout: float = 30.0) -> Scrape:
    """Scrape every quarter second until `ready` holds; fails with what the last scrape said."""
    deadline = time.monotonic() + timeout
    while True:
        last = await scrape(url)
        if ready(last):
            return last
        if time.monotonic() > deadline:
            moved = {s.name: s.value for s in last.samples if s.name.startswith("taskstream_")}
            raise AssertionError(f"{url} never got ready; last scrape: {moved}")
        await asyncio.sleep(0.25)
