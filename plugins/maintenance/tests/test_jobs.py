"""Automatic transitions at ``startAt`` and ``endAt`` through the core's job scheduler, while the
host runs and across restarts (the embedded scheduler keeps nothing: startup catches up).

Tests poll the database with a deadline and make no request in between; they assert no timing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from checkstack_maintenance.models import TimelineRow, WindowRow
from checkstack_maintenance.service import end_key, start_key
from sqlalchemy import update
from sqlmodel import col, select

from checkstack_core.db import utcnow
from checkstack_core.host import Host

SYSTEM_AUTHOR = {"kind": "system", "id": "maintenance", "name": "Maintenance scheduler"}


async def stored_timeline(host: Host, window_id: str) -> list[tuple[str, str | None, str | None]]:
    async with host.db.session() as session:
        rows = (
            await session.exec(
                select(TimelineRow)
                .where(col(TimelineRow.window_id) == window_id)
                .order_by(col(TimelineRow.created_at), col(TimelineRow.seq))
            )
        ).all()
    return [(r.kind, r.from_status, r.to_status) for r in rows]


AUTOMATIC = [
    ("created", None, None),
    ("status", "scheduled", "in_progress"),
    ("status", "in_progress", "completed"),
]


async def test_a_window_starts_and_completes_on_its_own(
    schedule, stored_status, until, later, checkstack_host, manager
):
    window = await schedule(startAt=later(seconds=1), endAt=later(seconds=2.5))
    assert window["status"] == "scheduled"

    async def status_is(expected: str) -> bool:
        return await stored_status(window["id"]) == expected

    await until(lambda: status_is("in_progress"))
    await until(lambda: status_is("completed"))
    assert await stored_timeline(checkstack_host, window["id"]) == AUTOMATIC
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    started, completed = detail["timeline"][1:]
    assert started["author"] == completed["author"] == SYSTEM_AUTHOR
    assert started["message"] == "Maintenance started automatically"
    assert completed["message"] == "Maintenance completed automatically"
    await checkstack_host.events.drain()
    assert await checkstack_host.jobs.get(start_key(window["id"])) is None
    assert await checkstack_host.jobs.get(end_key(window["id"])) is None


async def test_a_window_whose_start_has_passed_starts_at_once(schedule, later, manager):
    window = await schedule(startAt=later(minutes=-5), endAt=later(hours=1))
    assert window["status"] == "in_progress"
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    assert [(e["kind"], e["toStatus"]) for e in detail["timeline"]] == [
        ("created", None),
        ("status", "in_progress"),
    ]


async def test_jobs_follow_reschedules_and_cancellation(schedule, later, manager, checkstack_host):
    window = await schedule()
    wid = window["id"]
    await checkstack_host.events.drain()
    start_job = await checkstack_host.jobs.get(start_key(wid))
    end_job = await checkstack_host.jobs.get(end_key(wid))
    assert start_job is not None and end_job is not None
    assert start_job.payload == {"windowId": wid}

    moved = await manager.call(
        "maintenance",
        "updateWindow",
        {"id": wid, "startAt": later(hours=3), "endAt": later(hours=4)},
    )
    await checkstack_host.events.drain()
    start_job = await checkstack_host.jobs.get(start_key(wid))
    assert start_job is not None
    assert start_job.next_run_at.isoformat().replace("+00:00", "Z") == moved["startAt"]

    await manager.call("maintenance", "cancelWindow", {"id": wid})
    await checkstack_host.events.drain()
    assert await checkstack_host.jobs.get(start_key(wid)) is None
    assert await checkstack_host.jobs.get(end_key(wid)) is None


async def test_moving_the_start_into_the_past_starts_the_window(schedule, later, manager):
    window = await schedule()
    moved = await manager.call(
        "maintenance", "updateWindow", {"id": window["id"], "startAt": later(minutes=-1)}
    )
    assert moved["status"] == "in_progress"
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    assert [(e["kind"], e["toStatus"]) for e in detail["timeline"]] == [
        ("created", None),
        ("edited", None),
        ("status", "in_progress"),
    ]


async def test_an_in_progress_window_ends_when_its_new_end_comes(
    schedule, later, manager, stored_status, until
):
    window = await schedule(startAt=later(minutes=-1))
    await manager.call(
        "maintenance", "updateWindow", {"id": window["id"], "endAt": later(seconds=1)}
    )

    async def completed() -> bool:
        return await stored_status(window["id"]) == "completed"

    await until(completed)


async def test_a_cancelled_window_ignores_its_jobs(
    schedule, later, manager, checkstack_host, stored_status
):
    """A job that fires anyway (e.g. scheduled by another process) re-reads and does nothing."""
    from checkstack_maintenance.service import run_transition

    window = await schedule()
    await manager.call("maintenance", "cancelWindow", {"id": window["id"]})
    await move_times(
        checkstack_host, window["id"], start_at=timedelta(hours=-2), end_at=timedelta(hours=-1)
    )
    async with checkstack_host.service_context("maintenance") as ctx:
        await run_transition(ctx, window["id"])
        await run_transition(ctx, "no-such-window")
    assert await stored_status(window["id"]) == "cancelled"


async def test_a_job_firing_early_changes_nothing_and_reschedules(
    schedule, manager, checkstack_host, stored_status
):
    from checkstack_maintenance.service import run_transition

    window = await schedule()
    async with checkstack_host.service_context("maintenance") as ctx:
        await run_transition(ctx, window["id"])
    assert await stored_status(window["id"]) == "scheduled"
    assert await checkstack_host.jobs.get(start_key(window["id"])) is not None


# -- restarts --------------------------------------------------------------------------------------


@pytest.fixture
async def hosts(checkstack_settings, checkstack_plugins):
    """Start hosts on the test database as a deployer would (stopped at the end)."""
    started: list[Host] = []

    async def start() -> Host:
        host = Host(checkstack_settings, plugins=checkstack_plugins, discover_installed=False)
        await host.start()
        started.append(host)
        return host

    yield start
    for host in started:
        await host.stop()


async def schedule_as_service(host: Host, **times: Any) -> str:
    async with host.service_context("maintenance") as ctx:
        system = await ctx.call("catalog", "createSystem", {"name": f"sys-{utcnow().timestamp()}"})
        window = await ctx.call(
            "maintenance",
            "scheduleWindow",
            {"title": "Overnight", "systemIds": [system.id], **times},
        )
        return window.id


async def move_times(host: Host, window_id: str, **delta: timedelta) -> None:
    """Pretend time passed while the server was down: move the stored times into the past."""
    async with host.db.session() as session:
        await session.exec(
            update(WindowRow)
            .where(col(WindowRow.id) == window_id)
            .values(**{k: utcnow() + v for k, v in delta.items()})
        )
        await session.commit()


async def test_a_window_missed_while_down_is_completed_right_after_startup(hosts):
    first = await hosts()
    now = utcnow()
    window_id = await schedule_as_service(
        first,
        startAt=(now + timedelta(hours=1)).isoformat(),
        endAt=(now + timedelta(hours=2)).isoformat(),
    )
    await first.stop()
    await move_times(first, window_id, start_at=timedelta(hours=-2), end_at=timedelta(hours=-1))

    second = await hosts()
    # Right after startup, before any job ran or any request arrived.
    async with second.db.session() as session:
        row = await session.get(WindowRow, window_id)
        assert row is not None and row.status == "completed"
    assert await stored_timeline(second, window_id) == AUTOMATIC
    assert await second.jobs.get(start_key(window_id)) is None
    assert await second.jobs.get(end_key(window_id)) is None


async def test_a_window_started_while_down_is_in_progress_and_its_end_is_scheduled(hosts):
    first = await hosts()
    now = utcnow()
    window_id = await schedule_as_service(
        first,
        startAt=(now + timedelta(hours=1)).isoformat(),
        endAt=(now + timedelta(hours=2)).isoformat(),
    )
    await first.stop()
    await move_times(first, window_id, start_at=timedelta(minutes=-5))

    second = await hosts()
    async with second.db.session() as session:
        row = await session.get(WindowRow, window_id)
        assert row is not None and row.status == "in_progress"
    assert await stored_timeline(second, window_id) == AUTOMATIC[:2]
    assert await second.jobs.get(start_key(window_id)) is None
    end_job = await second.jobs.get(end_key(window_id))
    assert end_job is not None and end_job.next_run_at == row.end_at


async def test_future_transitions_are_rescheduled_after_a_restart(hosts, until):
    first = await hosts()
    now = utcnow()
    window_id = await schedule_as_service(
        first,
        startAt=(now + timedelta(hours=1)).isoformat(),
        endAt=(now + timedelta(hours=2)).isoformat(),
    )
    await first.stop()

    second = await hosts()
    assert await second.jobs.get(start_key(window_id)) is not None
    assert await second.jobs.get(end_key(window_id)) is not None
    assert await stored_timeline(second, window_id) == AUTOMATIC[:1]
