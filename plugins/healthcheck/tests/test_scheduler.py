"""The scheduler: runs at each assignment's interval, follows edits at once, claims each slot in
one process only, runs an overdue check once, and never lets a hanging target delay others."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_healthcheck import service
from checkstack_healthcheck.models import AssignmentRow
from sqlmodel import col, select

from checkstack_core.db import utcnow


@pytest.fixture
def healthcheck_settings() -> dict[str, Any]:
    return {"scheduler": True, "poll_interval_seconds": 0.05, "max_concurrency": 4}


def executor(host: Any) -> Any:
    return host.services["healthcheck.runtime"].executor


async def assignment(host: Any, check_id: str) -> AssignmentRow:
    async with host.db.session() as session:
        row = (
            await session.exec(select(AssignmentRow).where(col(AssignmentRow.check_id) == check_id))
        ).one()
        session.expunge(row)
        return row


async def runs_of(admin: Any, check_id: str) -> int:
    return int((await admin.call("healthcheck", "getHistory", {"checkId": check_id}))["total"])


async def test_interval_change_pause_and_unassign_take_effect_at_once(
    admin, make_check, make_system, target, checkstack_host, until
):
    system = await make_system("api")
    check = await make_check({"url": target.url}, intervalSeconds=60)
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    # A new assignment runs at once, then waits its interval.
    await until(lambda: _at_least(admin, check["id"], 1))
    row = await assignment(checkstack_host, check["id"])
    assert row.next_run_ms is not None
    assert row.next_run_ms - service.now_ms() > 50_000

    await admin.call("healthcheck", "updateHealthCheck", {"id": check["id"], "intervalSeconds": 1})
    await until(lambda: _at_least(admin, check["id"], 3))
    assert (await assignment(checkstack_host, check["id"])).interval_ms == 1000

    await admin.call("healthcheck", "pauseHealthCheck", {"id": check["id"]})
    await executor(checkstack_host).drain()
    assert (await assignment(checkstack_host, check["id"])).next_run_ms is None
    await admin.call("healthcheck", "resumeHealthCheck", {"id": check["id"]})
    assert (await assignment(checkstack_host, check["id"])).next_run_ms is not None

    await admin.call("healthcheck", "unassignHealthCheck", {"id": check["id"], "systemId": system})
    await executor(checkstack_host).drain()
    async with checkstack_host.db.session() as session:
        claimed = await service.claim_due(session, 100)
        await session.rollback()
    assert claimed == []


async def _at_least(admin: Any, check_id: str, n: int) -> bool:
    return await runs_of(admin, check_id) >= n


async def test_an_overdue_check_runs_once_and_keeps_its_interval(
    admin, make_check, make_system, target, checkstack_host
):
    system = await make_system("api")
    check = await make_check({"url": target.url}, intervalSeconds=60, paused=True)
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    # As if the server had been down for an hour: the slot is long overdue.
    async with checkstack_host.db.session() as session:
        row = (await session.exec(select(AssignmentRow))).one()
        row.next_run_ms = service.now_ms() - 3_600_000
        await session.commit()
        first = await service.claim_due(session, 100)
        await session.commit()
        second = await service.claim_due(session, 100)
        await session.commit()
    assert [d.check_id for d in first] == []  # paused: the claimed slot is not run
    row = await assignment(checkstack_host, check["id"])
    assert row.next_run_ms is not None
    assert 55_000 < row.next_run_ms - service.now_ms() <= 60_000
    assert second == []


async def test_claims_never_hand_one_slot_out_twice(
    admin, make_check, make_system, target, checkstack_host
):
    system = await make_system("api")
    check = await make_check({"url": target.url}, intervalSeconds=60)
    # Stop this process's scheduler from taking the slot first.
    executor(checkstack_host)._stopping = True
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    async with checkstack_host.db.session() as one, checkstack_host.db.session() as two:
        first = await service.claim_due(one, 10)
        await one.commit()
        second = await service.claim_due(two, 10)
        await two.commit()
    assert len(first) + len(second) == 1


async def test_a_hanging_target_does_not_delay_other_checks(
    admin, make_check, make_system, target, tcp_target, checkstack_host, until
):
    system = await make_system("api")
    target.answer(delay=30)
    hanging = [
        await make_check({"url": target.url}, intervalSeconds=60, timeoutSeconds=20)
        for _ in range(3)
    ]
    quick = await make_check(
        {"host": "127.0.0.1", "port": tcp_target.port}, strategy="tcp", intervalSeconds=1
    )
    for check in (*hanging, quick):
        await admin.call(
            "healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system}
        )
    # Three slots of four hang; the quick check keeps running every second meanwhile.
    await until(lambda: _at_least(admin, quick["id"], 3))
    assert all([await runs_of(admin, c["id"]) == 0 for c in hanging])


async def test_schedules_resume_from_the_last_run_after_a_restart(
    admin, make_check, make_system, target, checkstack_host, until
):
    system = await make_system("api")
    check = await make_check({"url": target.url}, intervalSeconds=600)
    await admin.call("healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system})
    await until(lambda: _at_least(admin, check["id"], 1))
    row = await assignment(checkstack_host, check["id"])
    assert row.last_run_at is not None and row.last_run_at <= utcnow()
    # The schedule is in the database: a new process claims nothing before the next slot.
    async with checkstack_host.db.session() as session:
        assert await service.claim_due(session, 100) == []
        await session.rollback()
