"""The public status page with 100 systems, rendered on the server, against the JSON reads it
is made of, in the same run.

    uv run python bench/status_page.py [--systems 100] [--rounds 60] [--db sqlite|postgres]

One ``checkstack serve`` process with every installed plugin; a deployer's setup (``_stack``:
onboarding, 100 systems, incidents, maintenance) plus 10 groups of 10 systems, and 90 days of
health history per system (the healthcheck plugin's daily aggregates, written straight into its
table: one check per system, a run a minute, a few failed days), so every system shows its
90-day uptime bars. Then, one request at a time over a keep-alive connection, as an anonymous
visitor:

- **page**: ``GET /`` — every section rendered to HTML (systems by group with their uptime
  bars, 9,000 bars in all, open incidents and maintenance with their timelines, history);
- **reads** (the baseline): the same procedures the page calls, through the documented protocol
  as JSON (``getSystems`` + ``getGroups``, ``getBulkSystemHealth`` and
  ``getDailyAvailability`` when the healthcheck plugin is installed, ``getIncidents`` twice and
  ``getIncident`` per open incident, ``getWindows`` twice and ``getWindow`` per active window).
  The page asks for 90 days only every few minutes (it keeps past days) and for today
  otherwise; the reads ask for 90 days every time.

Rounds alternate between the two, so machine noise hits both alike. It prints the median and
p95 milliseconds of each and the ratio page / reads (what rendering adds to reading); the
target is a page under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _harness import percentile, server
from _stack import ADMIN, call, database, prepare
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

TARGET_MS = 100.0


def add_groups(url: str, system_ids: list[str], size: int = 10) -> None:
    response = httpx.post(f"{url}/api/auth/", json={"login": ADMIN}, timeout=60)
    admin = {"Cookie": f"checkstack_session={response.cookies['checkstack_session']}"}
    for start in range(0, len(system_ids), size):
        group = call(url, "catalog", "createGroup", {"name": f"Region {start // size}"}, admin)
        for system_id in system_ids[start : start + size]:
            call(
                url,
                "catalog",
                "addSystemToGroup",
                {"groupId": group["id"], "systemId": system_id},
                admin,
            )


def seed_history(database_url: str, system_ids: list[str], days: int = 90) -> int:
    """90 days of daily aggregates per system (1,440 runs a day; every 7th day of every 3rd
    system had failures), as the healthcheck plugin's writer would have left them."""
    today = datetime.now(UTC).date()
    rows = []
    for index, system_id in enumerate(system_ids):
        check_id = str(uuid.uuid4())
        for back in range(days):
            bad = index % 3 == 0 and back % 7 == 3
            unhealthy, degraded = (12, 30) if bad else (0, 0)
            rows.append(
                {
                    "system_id": system_id,
                    "day": today - timedelta(days=back),
                    "check_id": check_id,
                    "runs": 1440,
                    "healthy": 1440 - unhealthy - degraded,
                    "degraded": degraded,
                    "unhealthy": unhealthy,
                }
            )

    async def insert() -> None:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO healthcheck_daily (system_id, day, check_id, runs, healthy, "
                        "degraded, unhealthy) VALUES (:system_id, :day, :check_id, :runs, "
                        ":healthy, :degraded, :unhealthy)"
                    ),
                    rows,
                )
        finally:
            await engine.dispose()

    asyncio.run(insert())
    return len(rows)


def page(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "Region 9" in response.text, response.status_code
    if HEALTH_INPUT is not None:
        # Systems in two groups are shown (with their bars) twice.
        assert response.text.count('class="uptime-bars"') >= len(HEALTH_INPUT["systemIds"])


#: ``{"systemIds": [...]}`` for ``getBulkSystemHealth``, or ``None`` without healthcheck.
HEALTH_INPUT: dict[str, list[str]] | None = None


def reads(client: httpx.Client) -> None:
    def post(plugin: str, calls: dict[str, object]) -> dict[str, object]:
        response = client.post(f"/api/{plugin}/", json=calls)
        assert response.status_code == 200, response.text
        return dict(response.json())

    post("catalog", {"getSystems": {}, "getGroups": {}})
    if HEALTH_INPUT is not None:
        post("healthcheck", {"getBulkSystemHealth": HEALTH_INPUT})
        post("healthcheck", {"getDailyAvailability": HEALTH_INPUT})
    open_incidents = post("incident", {"getIncidents": {"limit": 50}})["getIncidents"]
    for incident in open_incidents["incidents"][:10]:  # type: ignore[index]
        post("incident", {"getIncident": {"id": incident["id"]}})
    post("incident", {"getIncidents": {"status": "resolved", "limit": 10}})
    active = post("maintenance", {"getWindows": {"status": ["in_progress", "scheduled"]}})
    for window in active["getWindows"]["windows"][:10]:  # type: ignore[index]
        post("maintenance", {"getWindow": {"id": window["id"]}})
    post("maintenance", {"getWindows": {"status": ["completed", "cancelled"], "limit": 10}})


def measure(client: httpx.Client, work: Callable[[httpx.Client], None]) -> float:
    started = time.perf_counter()
    work(client)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="checkstack-status-"))
    with database(args.db, workdir) as database_url:
        env = {"CHECKSTACK_DATABASE_URL": database_url, "CHECKSTACK_STRICT_PLUGINS": "1"}
        with server(
            "checkstack_core.app:_factory", env, ready_path="/readyz", log=workdir / "server.log"
        ) as url:
            stack = prepare(url, systems=args.systems)
            add_groups(url, stack.system_ids)
            global HEALTH_INPUT
            health = {"systemIds": stack.system_ids}
            probe = httpx.post(
                f"{url}/api/healthcheck/", json={"getBulkSystemHealth": health}, timeout=60
            )
            HEALTH_INPUT = health if probe.status_code == 200 else None
            if HEALTH_INPUT is not None:
                seed_history(database_url, stack.system_ids)
            timings: dict[str, list[float]] = {"page": [], "reads": []}
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(5):  # warm up both paths
                    page(client)
                    reads(client)
                for _ in range(args.rounds):
                    timings["page"].append(measure(client, page))
                    timings["reads"].append(measure(client, reads))

    health = "with health and 90-day bars" if HEALTH_INPUT is not None else "no healthcheck plugin"
    print(
        f"status page, {args.systems} systems in 10 groups ({health}), {args.db}, "
        f"{args.rounds} rounds"
    )
    for name, values in timings.items():
        print(
            f"  {name:6} median {statistics.median(values):7.1f} ms"
            f"   p95 {percentile(values, 95) or 0:7.1f} ms"
        )
    page_ms = statistics.median(timings["page"])
    ratio = page_ms / statistics.median(timings["reads"])
    print(f"  ratio page / reads: {ratio:.2f}")
    verdict = "meets" if page_ms < TARGET_MS else "MISSES"
    print(f"  page median {page_ms:.1f} ms {verdict} the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
