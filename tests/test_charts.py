"""Charts drawn on the server: uptime bars (a tooltip per day or per run of alike days, the
percent up) and the latency line chart (axes, failed runs marked, an accessible summary)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from checkstack_core.ui.charts import Series, chart_defs, line_chart, uptime


def day(offset: int, today: date) -> str:
    return (today - timedelta(days=offset)).isoformat()


def test_uptime_bars_say_each_day_its_figures():
    today = date(2026, 12, 2)
    figures = {
        day(2, today): {"runs": 100, "healthy": 100, "percent": 100.0, "worst": "healthy"},
        day(1, today): {"runs": 100, "healthy": 100, "percent": 100.0, "worst": "healthy"},
        day(0, today): {
            "runs": 100,
            "healthy": 90,
            "degraded": 5,
            "unhealthy": 5,
            "percent": 95.0,
            "worst": "unhealthy",
        },
    }
    drawn = uptime(figures, today=today, days=5, name="API")
    titles = re.findall(r"<title>([^<]+)</title>", drawn.bars)
    assert titles == [
        "2026-11-28 to 2026-11-29: no data",
        "2026-11-30 to 2026-12-01: 100 % up each day, worst operational",
        "2026-12-02: 95.00 % up, worst down",
    ]
    assert 'class="up-unhealthy"' in drawn.bars and 'class="up-none"' in drawn.bars
    assert drawn.percent is not None and round(drawn.percent, 2) == 98.33
    assert 'aria-label="API: 98.33 % up over the last 5 days"' in drawn.bars
    # Widths cover the days each element stands for (4 units a day, less the last gap).
    assert re.findall(r'width="(\d+)"', drawn.bars) == ["7", "7", "3"]
    assert all(f'id="up-{s}"' in chart_defs() for s in ("healthy", "degraded", "unhealthy"))


def test_99_995_percent_is_not_shown_as_100():
    today = date(2026, 12, 2)
    figures = {today.isoformat(): {"runs": 20_000, "healthy": 19_999, "percent": 99.995}}
    assert uptime(figures, today=today, days=1).percent_text == "99.99 %"


def test_the_latency_chart_marks_failed_runs_and_summarises():
    start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    series = Series(
        "Shop",
        [(start + timedelta(minutes=i), 10.0 * (i + 1), i == 2) for i in range(4)]
        + [(start + timedelta(minutes=5), None, True)],
    )
    svg = line_chart([series])
    assert svg.count('class="point-failed"') == 2 and "<polyline" in svg
    assert "lowest 10 ms, median 30 ms, highest 40 ms" in svg
    assert ">50 ms</text>" in svg  # the axis top, a round number above the highest value
    assert "Shop" in svg
    assert "no runs to draw yet" in line_chart([])
