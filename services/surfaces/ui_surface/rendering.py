"""Templates (autoescaped: everything a user wrote is text) and the small views they draw."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.live.changes import task_topic

_env = Environment(
    loader=PackageLoader("services.surfaces.ui_surface", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(moment: datetime | None) -> str:
    """An instant as UTC text to the second."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def millis(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def pretty(value: Any) -> str:
    """JSON for a <pre> block (the template escapes it)."""
    return json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=True, default=str)


_env.filters.update(when=when, millis=millis, pretty=pretty, topic=task_topic)


def render(
    template: str, context: dict[str, Any], *, status: int = 200, part: str | None = None
) -> web.Response:
    """The page `template`, or only its fragment `parts/<page>_<part>.html` (a live refresh)."""
    name = f"parts/{template.removesuffix('.html')}_{part}.html" if part else template
    html = _env.get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


class Bar(msgspec.Struct, frozen=True):
    x: float
    y: float
    width: float
    height: float
    label: str


class Chart(msgspec.Struct, frozen=True):
    """A bar chart as SVG coordinates: the template draws it inline, no script involved."""

    width: int
    height: int
    completed: list[Bar]
    failed: list[Bar]
    peak: int
    total: int


def bar_chart(
    points: list[tuple[datetime, int, int]], *, width: int = 600, height: int = 120
) -> Chart:
    """Completed (and, stacked on them, failed) runs per point, scaled to the busiest point."""
    peak = max((c + f for _, c, f in points), default=0)
    step = width / max(len(points), 1)
    scale = (height - 4) / peak if peak else 0.0
    completed: list[Bar] = []
    failed: list[Bar] = []
    for i, (at, done, bad) in enumerate(points):
        x = round(i * step + 1, 2)
        w = round(max(step - 2, 1), 2)
        h_done, h_bad = round(done * scale, 2), round(bad * scale, 2)
        label = f"{at.astimezone(UTC):%H:%M} — {done} completed, {bad} failed"
        completed.append(Bar(x, round(height - h_done, 2), w, h_done, label))
        failed.append(Bar(x, round(height - h_done - h_bad, 2), w, h_bad, label))
    total = sum(c + f for _, c, f in points)
    return Chart(width, height, completed, failed, peak, total)
