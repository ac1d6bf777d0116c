"""History pages, filters, hourly aggregates, availability, retention and suppression."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from checkstack_healthcheck import service
from checkstack_healthcheck.models import DailyRow, HourlyRow, RunRow

from checkstack_core import BadRequest
from checkstack_core.db import utcnow

from .conftest import healthcheck_plugins


@pytest.fixture
async def assigned(admin, make_check, make_system, target) -> dict[str, str]:
    system = await make_system("api")
    check = await make_check({"url": target.url})
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    return {"system": system, "check": check["id"]}


async def run(admin: Any, assigned: dict[str, str]) -> dict[str, Any]:
    return dict(
        await admin.call(
            "healthcheck", "runNow", {"id": assigned["check"], "systemId": assigned["system"]}
        )
    )


async def test_pages_have_no_duplicates_or_gaps_while_runs_land(admin, assigned):
    existing = [(await run(admin, assigned))["id"] for _ in range(7)]
    seen: list[int] = []
    cursor = None
    landed = []
    while True:
        query: dict[str, Any] = {"systemId": assigned["system"], "limit": 3}
        if cursor:
            query["cursor"] = cursor
        page = await admin.call("healthcheck", "getHistory", query)
        # Every page, the first and the later ones, counts the whole filtered history.
        assert page["total"] == len(existing) + len(landed)
        seen += [r["id"] for r in page["runs"]]
        landed.append((await run(admin, assigned))["id"])  # a run lands between pages
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == sorted(existing, reverse=True)
    assert len(set(seen)) == len(seen)
    newest = await admin.call("healthcheck", "getHistory", {"systemId": assigned["system"]})
    assert newest["total"] == len(existing) + len(landed)
    assert [r["id"] for r in newest["runs"][: len(landed)]] == sorted(landed, reverse=True)


async def test_filters_and_order(admin, assigned, target):
    await run(admin, assigned)
    target.answer(status=503)
    failed = await run(admin, assigned)
    page = await admin.call(
        "healthcheck", "getHistory", {"checkId": assigned["check"], "status": "unhealthy"}
    )
    assert [r["id"] for r in page["runs"]] == [failed["id"]] and page["total"] == 1
    both = await admin.call(
        "healthcheck", "getHistory", {"status": ["healthy", "unhealthy"], "order": "asc"}
    )
    assert [r["status"] for r in both["runs"]] == ["healthy", "unhealthy"]
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    empty = await admin.call("healthcheck", "getHistory", {"from": later})
    assert empty == {"runs": [], "total": 0, "nextCursor": None}
    with pytest.raises(BadRequest):
        await admin.call("healthcheck", "getHistory", {"cursor": "not-a-cursor"})


async def test_hourly_aggregates_and_availability(admin, assigned, target):
    for status in (200, 200, 200, 500):
        target.answer(status=status)
        await run(admin, assigned)
    stats = await admin.call("healthcheck", "getHourlyStats", {"systemId": assigned["system"]})
    [bucket] = stats["buckets"]
    assert (bucket["runs"], bucket["healthy"], bucket["unhealthy"]) == (4, 3, 1)
    assert bucket["avgLatencyMs"] > 0 and bucket["p95LatencyMs"] > 0
    availability = await admin.call(
        "healthcheck", "getAvailability", {"systemId": assigned["system"]}
    )
    assert list(availability["windows"]) == ["24h", "7d", "30d", "90d"]
    assert availability["windows"]["24h"] == availability["windows"]["90d"]
    assert availability["windows"]["24h"] == {"percent": 75.0, "runs": 4}
    other = await admin.call(
        "healthcheck", "getAvailability", {"systemId": assigned["system"], "checkId": "nope"}
    )
    assert other["windows"]["24h"] == {"percent": None, "runs": 0}


async def test_daily_availability_counts_runs_per_utc_day(admin, assigned, target, make_check):
    for status in (200, 200, 500):
        target.answer(status=status)
        await run(admin, assigned)
    # A second check on the same system counts into the same day.
    other = await make_check({"url": target.url})
    await admin.call(
        "healthcheck", "assignHealthCheck", {"id": other["id"], "systemId": assigned["system"]}
    )
    target.answer(status=200)
    await admin.call("healthcheck", "runNow", {"id": other["id"], "systemId": assigned["system"]})
    answer = await admin.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [assigned["system"], "unknown"]}
    )
    [today] = answer["systems"][assigned["system"]]
    assert today == {
        "day": utcnow().date().isoformat(),
        "runs": 4,
        "healthy": 3,
        "degraded": 0,
        "unhealthy": 1,
        "percent": 75.0,
        "worst": "unhealthy",
    }
    assert answer["systems"]["unknown"] == []
    # A test run (no system) counts for no system's day.
    await admin.call("healthcheck", "runNow", {"id": assigned["check"]})
    again = await admin.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [assigned["system"]], "days": 1}
    )
    assert again["systems"][assigned["system"]][0]["runs"] == 4
    with pytest.raises(BadRequest):
        await admin.call(
            "healthcheck", "getDailyAvailability", {"systemIds": [assigned["system"]], "days": 91}
        )
    # Deleting the check takes its days with it.
    await admin.call("healthcheck", "deleteHealthCheck", {"id": other["id"]})
    left = await admin.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [assigned["system"]]}
    )
    assert left["systems"][assigned["system"]][0]["runs"] == 3


def test_p95_from_the_histogram():
    histogram: dict[str, int] = {}
    for latency in range(1, 101):
        key = str(service._bucket(float(latency)))
        histogram[key] = histogram.get(key, 0) + 1
    p95 = service._percentile(histogram, 0.95)
    assert p95 is not None and 93 <= p95 <= 100


async def test_retention_drops_old_runs_and_aggregates(admin, assigned, checkstack_host):
    await run(admin, assigned)
    old = utcnow() - timedelta(days=120)
    async with checkstack_host.db.session() as session:
        session.add(
            RunRow(
                check_id=assigned["check"],
                system_id=assigned["system"],
                status="healthy",
                message="old",
                started_at=old,
            )
        )
        session.add(
            HourlyRow(
                check_id=assigned["check"],
                system_id=assigned["system"],
                bucket_start=old.replace(minute=0, second=0, microsecond=0),
                runs=1,
                healthy=1,
            )
        )
        session.add(
            DailyRow(
                check_id=assigned["check"],
                system_id=assigned["system"],
                day=old.date(),
                runs=1,
                healthy=1,
            )
        )
        await session.commit()
    async with checkstack_host.service_context("healthcheck") as ctx:
        removed = await service.apply_retention(ctx)
    assert (removed["runs"], removed["hourly"], removed["daily"]) == (1, 1, 1)
    page = await admin.call("healthcheck", "getHistory", {"systemId": assigned["system"]})
    assert page["total"] == 1


@pytest.fixture
def checkstack_plugins(recorder: Any) -> list[Any]:
    from checkstack_incident import plugin as incident
    from checkstack_maintenance import plugin as maintenance

    return [*healthcheck_plugins(), maintenance, incident, recorder.plugin]


async def test_changes_under_a_suppressing_incident_say_so(
    admin, assigned, target, recorder, checkstack_host
):
    target.answer(status=500)
    await admin.call(
        "healthcheck",
        "assignHealthCheck",
        {
            "id": assigned["check"],
            "systemId": assigned["system"],
            "thresholds": {"mode": "consecutive", "degradedAfter": 1},
        },
    )
    await admin.call(
        "incident",
        "createIncident",
        {
            "title": "Known outage",
            "severity": "major",
            "systemIds": [assigned["system"]],
            "suppressNotifications": True,
        },
    )
    await run(admin, assigned)
    await checkstack_host.events.drain()
    assert recorder.names() == ["degraded"]
    assert recorder.seen[0][1]["suppressed"] is True
    changes = await admin.call("healthcheck", "getStatusChanges", {"systemId": assigned["system"]})
    assert changes["changes"][0]["suppressed"] is True
