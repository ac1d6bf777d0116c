"""Charts drawn on the server as inline SVG: no script, no canvas, readable without JavaScript,
styled by the stylesheet (both themes) through classes, allowed by the content security policy.

- :func:`uptime` / :func:`uptime_bars`: one bar per day (the status page's 90-day bars),
  coloured by the day's worst status, with a tooltip (``<title>``) giving the date, the percent
  up and that status;
- :func:`line_chart`: values over time (a check's latency), one line per series, failed points
  marked.

Both return :class:`~markupsafe.Markup` with an accessible name summarising what they show
(``role="img"``); pages put the underlying numbers in a table as well. They are built as strings
rather than templates: a status page draws 9,000 bars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

__all__ = [
    "STATUS_LABELS",
    "Series",
    "Uptime",
    "chart_defs",
    "line_chart",
    "percent_text",
    "uptime",
    "uptime_bars",
    "uptime_percent",
]

#: The words a tooltip uses for a status.
STATUS_LABELS = {
    "healthy": "operational",
    "degraded": "degraded",
    "unhealthy": "down",
}
_BAR = 4  # viewBox units per day: a bar of 3 and a gap of 1
_HEIGHT = 24


def uptime_percent(figures: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Percent of runs up over the given days (``None`` without runs)."""
    runs = sum(int(f.get("runs") or 0) for f in figures.values())
    if not runs:
        return None
    up = sum(int(f.get("healthy") or 0) + int(f.get("degraded") or 0) for f in figures.values())
    return 100.0 * up / runs


def percent_text(value: float) -> str:
    """``99.95 %``: two decimals below 100, none at 100 (and never a rounded-up 100)."""
    if value >= 100:
        return "100 %"
    return f"{math.floor(value * 100) / 100:.2f} %"


_NO_DATA = ("up-none", "no data")
#: Tooltip words by (worst, percent): a page repeats few of them.
_LOOKS: dict[tuple[Any, Any], tuple[str, str]] = {}


def _day_text(figure: Mapping[str, Any]) -> tuple[str, str]:
    """A day's class and tooltip words (``("up-degraded", "99.30 % up, worst degraded")``)."""
    key = (figure.get("worst"), figure.get("percent"))
    look = _LOOKS.get(key)
    if look is None:
        worst = str(key[0] or "healthy")
        if worst not in STATUS_LABELS:
            worst = "healthy"
        percent = percent_text(float(key[1] or 0.0))
        look = (f"up-{worst}", f"{percent} up, worst {STATUS_LABELS[worst]}")
        if len(_LOOKS) > 10_000:
            _LOOKS.clear()
        _LOOKS[key] = look
    return look


@lru_cache(maxsize=8)
def _labels(today: date, days: int) -> tuple[str, ...]:
    first = today - timedelta(days=days - 1)
    return tuple((first + timedelta(days=i)).isoformat() for i in range(days))


@dataclass(frozen=True, slots=True)
class Uptime:
    """:func:`uptime`'s answer: the bars and the percent up over their days (``None``: no
    runs)."""

    bars: Markup
    percent: float | None

    @property
    def percent_text(self) -> str:
        return percent_text(self.percent) if self.percent is not None else "no data"


def uptime_bars(
    figures: Mapping[str, Mapping[str, Any]],
    *,
    today: date,
    days: int = 90,
    name: str = "",
) -> Markup:
    """The bars of :func:`uptime`."""
    return uptime(figures, today=today, days=days, name=name).bars


def uptime(
    figures: Mapping[str, Mapping[str, Any]],
    *,
    today: date,
    days: int = 90,
    name: str = "",
) -> Uptime:
    """Bars for the ``days`` UTC days up to ``today``: ``figures`` maps an ISO date to that
    day's ``{"runs", "healthy", "degraded", "percent", "worst"}`` (days absent: no data).

    Consecutive days that read alike (``100 % up, worst operational``; no data) are one element
    with one tooltip naming the dates: the bars are drawn by a pattern (:func:`chart_defs`,
    in every page), so a run of days still shows a bar per day. A status page of 100 systems is
    then about a thousand elements rather than nine thousand."""
    labels = _labels(today, days)
    looks: list[tuple[str, str]] = []
    runs = up = 0
    for label in labels:
        figure = figures.get(label)
        count = figure.get("runs") if figure is not None else None
        if not count or figure is None:
            looks.append(_NO_DATA)
            continue
        runs += count
        up += (figure.get("healthy") or 0) + (figure.get("degraded") or 0)
        looks.append(_day_text(figure))
    percent = 100.0 * up / runs if runs else None
    summary = (
        f"{percent_text(percent)} up over the last {days} days"
        if percent is not None
        else f"No data over the last {days} days"
    )
    parts = [
        f'<svg class="uptime-bars" viewBox="0 0 {days * _BAR - 1} {_HEIGHT}" '
        f'preserveAspectRatio="none" role="img" aria-label="',
        str(escape(f"{name}: {summary}" if name else summary)),
        '" focusable="false">',
    ]
    index = 0
    while index < days:
        look = looks[index]
        stop = index + 1
        while stop < days and looks[stop] is look:
            stop += 1
        css, words = look
        if stop == index + 1:
            when = labels[index]
        else:
            when = f"{labels[index]} to {labels[stop - 1]}"
            if css != "up-none":
                words = words.replace(" up,", " up each day,", 1)
        parts.append(
            f'<rect x="{index * _BAR}" width="{(stop - index) * _BAR - 1}" height="{_HEIGHT}" '
            f'class="{css}"><title>{when}: {words}</title></rect>'
        )
        index = stop
    parts.append("</svg>")
    return Uptime(Markup("".join(parts)), percent)


def chart_defs() -> Markup:
    """The patterns :func:`uptime_bars` fills with (a bar of 3 and a gap of 1 per day), once a
    page; the core's page layout includes them."""
    patterns = "".join(
        f'<pattern id="{css}" width="{_BAR}" height="{_HEIGHT}" patternUnits="userSpaceOnUse">'
        f'<rect width="3" height="{_HEIGHT}" class="bar-{css}"/></pattern>'
        for css in ("up-healthy", "up-degraded", "up-unhealthy", "up-none")
    )
    return Markup(
        '<svg class="chart-defs" width="0" height="0" aria-hidden="true" focusable="false">'
        f"<defs>{patterns}</defs></svg>"
    )


@dataclass
class Series:
    """One line of a :func:`line_chart`: ``points`` are ``(time, value or None, failed)``."""

    label: str
    points: list[tuple[datetime, float | None, bool]] = field(default_factory=list)


def _nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"


def line_chart(
    series: Sequence[Series],
    *,
    unit: str = "ms",
    name: str = "Latency",
    width: int = 720,
    height: int = 220,
) -> Markup:
    """Values over time, one line per series (classes ``series-0``..``series-5``), points whose
    run failed drawn as ``point-failed`` marks; axes labelled in ``unit`` and UTC time."""
    values = [v for s in series for (_t, v, _f) in s.points if v is not None]
    times = [t for s in series for (t, _v, _f) in s.points]
    if not times:
        return Markup(f'<p class="empty">{escape(name)}: no runs to draw yet.</p>')
    left, right, top, bottom = 56, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    start, end = min(times), max(times)
    span = (end - start).total_seconds() or 1.0
    top_value = _nice_max(max(values) if values else 1.0)

    def x_of(moment: datetime) -> float:
        return left + plot_w * ((moment - start).total_seconds() / span if span else 0.5)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - value / top_value)

    if values:
        low, high = min(values), max(values)
        middle = sorted(values)[len(values) // 2]
        summary = (
            f"{name} of {len(times)} runs from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} "
            f"UTC: lowest {_number(round(low, 1))} {unit}, median {_number(round(middle, 1))} "
            f"{unit}, highest {_number(round(high, 1))} {unit}"
        )
    else:
        summary = f"{name}: {len(times)} runs without a measured value"
    parts = [
        f'<svg class="line-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(summary)}" focusable="false">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_number(top_value * fraction)} {escape(unit)}</text>"
        )
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text class="axis" x="{x_of(moment):.1f}" y="{height - 8}" '
            f'text-anchor="{anchor}">{moment:%m-%d %H:%M}</text>'
        )
    for index, line in enumerate(series):
        points = sorted(line.points, key=lambda p: p[0])
        drawn = [f"{x_of(t):.1f},{y_of(v):.1f}" for (t, v, _f) in points if v is not None]
        css = f"series-{index % 6}"
        if len(drawn) > 1:
            parts.append(f'<polyline class="{css}" points="{" ".join(drawn)}"/>')
        elif drawn:
            cx, cy = drawn[0].split(",")
            parts.append(f'<circle class="{css} dot" cx="{cx}" cy="{cy}" r="3"/>')
        for moment, value, failed in points:
            if failed:
                y = y_of(value) if value is not None else top + plot_h
                parts.append(
                    f'<circle class="point-failed" cx="{x_of(moment):.1f}" cy="{y:.1f}" r="3.5">'
                    f"<title>{escape(line.label)}: failed at {moment:%Y-%m-%d %H:%M:%S} UTC"
                    f"</title></circle>"
                )
    parts.append("</svg>")
    if len(series) > 1 or any(s.label for s in series):
        parts.append('<ul class="chart-legend">')
        for index, line in enumerate(series):
            parts.append(
                f'<li><span class="swatch series-{index % 6}" aria-hidden="true"></span>'
                f"{escape(line.label)}</li>"
            )
        parts.append(
            '<li><span class="swatch point-failed" aria-hidden="true"></span>failed run</li></ul>'
        )
    return Markup("".join(parts))
