"""Concurrent transitions of one window: exactly one wins, on every database.

Each round sends the same change many times at once through the HTTP app. The winner answers
200; every other caller answers 409 naming the transition it found already made. The timeline
and the events record the change once, whatever the database's isolation level.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, func, select

from checkstack_core import Context, Event, Plugin

CALLERS = 16


@pytest.fixture
def seen() -> list[Event]:
    return []


@pytest.fixture
def checkstack_plugins(checkstack_plugins: list[Plugin], seen: list[Event]) -> list[Plugin]:
    listener = Plugin(id="listener", name="Listener", depends_on=["maintenance"])

    async def record(ctx: Context, event: Event) -> None:
        seen.append(event)

    for name in ("status_changed", "completed", "cancelled", "updated"):
        listener.on_event(f"maintenance.window.{name}")(record)
    return [*checkstack_plugins, listener]


async def _at_once(
    http: Any, headers: dict[str, str], procedure: str, body: dict[str, Any]
) -> list[Any]:
    return list(
        await asyncio.gather(
            *(
                http.post("/api/maintenance/", json={procedure: body}, headers=headers)
                for _ in range(CALLERS)
            )
        )
    )


async def _status_entries(host: Any, window_id: str) -> list[tuple[str | None, str | None]]:
    from checkstack_maintenance.models import TimelineRow

    async with host.db.session() as session:
        rows = await session.exec(
            select(TimelineRow.from_status, TimelineRow.to_status)
            .where(col(TimelineRow.window_id) == window_id, col(TimelineRow.kind) == "status")
            .order_by(col(TimelineRow.seq))
        )
        return list(rows.all())


def _one_winner(responses: list[Any], message: str) -> None:
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (CALLERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "CONFLICT"
            assert response.json()["message"] == message


async def test_concurrent_completions_let_exactly_one_win(
    schedule, later, manager_caller, checkstack_http, checkstack_host, seen
):
    window = await schedule(startAt=later(minutes=-1))
    assert window["status"] == "in_progress"
    await checkstack_host.events.drain()
    seen.clear()

    responses = await _at_once(
        checkstack_http, manager_caller.headers, "completeWindow", {"id": window["id"]}
    )

    _one_winner(responses, "Cannot complete a completed maintenance window")
    assert await _status_entries(checkstack_host, window["id"]) == [
        ("scheduled", "in_progress"),
        ("in_progress", "completed"),
    ]
    await checkstack_host.events.drain()
    names = [e.name for e in seen]
    assert names.count("maintenance.window.completed") == 1, names


async def test_concurrent_cancellations_let_exactly_one_win(
    schedule, manager_caller, checkstack_http, checkstack_host, seen
):
    window = await schedule()
    await checkstack_host.events.drain()
    seen.clear()

    responses = await _at_once(
        checkstack_http, manager_caller.headers, "cancelWindow", {"id": window["id"]}
    )

    _one_winner(responses, "Cannot cancel a cancelled maintenance window")
    assert await _status_entries(checkstack_host, window["id"]) == [("scheduled", "cancelled")]
    await checkstack_host.events.drain()
    assert sorted(e.name for e in seen) == [
        "maintenance.window.cancelled",
        "maintenance.window.status_changed",
    ]


async def test_concurrent_status_updates_let_exactly_one_win(
    schedule, manager_caller, checkstack_http, checkstack_host, seen
):
    window = await schedule()
    await checkstack_host.events.drain()
    seen.clear()

    responses = await _at_once(
        checkstack_http,
        manager_caller.headers,
        "addUpdate",
        {"id": window["id"], "message": "Starting early", "status": "in_progress"},
    )

    _one_winner(responses, "Cannot start an in-progress maintenance window")
    assert await _status_entries(checkstack_host, window["id"]) == [("scheduled", "in_progress")]
    await checkstack_host.events.drain()
    assert [e.name for e in seen] == ["maintenance.window.status_changed"]


async def test_concurrent_messages_are_all_kept(
    schedule, manager_caller, checkstack_http, checkstack_host, seen
):
    """Messages without a status change do not conflict: each is one entry and one event."""
    from checkstack_maintenance.models import TimelineRow

    window = await schedule()
    await checkstack_host.events.drain()
    seen.clear()

    responses = await _at_once(
        checkstack_http, manager_caller.headers, "addUpdate", {"id": window["id"], "message": "m"}
    )

    assert [r.status_code for r in responses] == [200] * CALLERS
    async with checkstack_host.db.session() as session:
        count = (
            await session.exec(
                select(func.count())
                .select_from(TimelineRow)
                .where(
                    col(TimelineRow.window_id) == window["id"], col(TimelineRow.kind) == "update"
                )
            )
        ).one()
    assert count == CALLERS
    await checkstack_host.events.drain()
    assert [e.name for e in seen] == ["maintenance.window.updated"] * CALLERS


async def test_a_due_job_racing_manual_completions_records_one_completion(
    schedule, later, manager_caller, checkstack_http, checkstack_host, seen
):
    """The automatic end runs through the same guarded transition as ``completeWindow``: when
    both race, the window is completed once."""
    from checkstack_maintenance import service
    from checkstack_maintenance.models import WindowRow

    window = await schedule(startAt=later(minutes=-1))
    # Make the end due without waiting for it: the job and the callers now race for it.
    async with checkstack_host.db.session() as session:
        row = await session.get(WindowRow, window["id"])
        assert row is not None
        row.end_at = row.start_at
        session.add(row)
        await session.commit()
    # (The scheduler's own jobs and sweep may join the race too: whoever wins, the window must
    # be completed exactly once, so the events are counted over the whole test.)

    async def job() -> None:
        # What the ``maintenance.transition`` job runs, in its own transaction.
        async with checkstack_host.service_context("maintenance") as ctx:
            await service.run_transition(ctx, window["id"])

    results = await asyncio.gather(
        job(),
        *_requests(checkstack_http, manager_caller.headers, window["id"]),
        job(),
        return_exceptions=True,
    )

    assert not [r for r in results if isinstance(r, BaseException)], results
    codes = [r.status_code for r in results if r is not None]
    assert set(codes) <= {200, 409} and codes.count(200) <= 1
    assert await _status_entries(checkstack_host, window["id"]) == [
        ("scheduled", "in_progress"),
        ("in_progress", "completed"),
    ]
    await checkstack_host.events.drain()
    names = [e.name for e in seen]
    assert names.count("maintenance.window.completed") == 1, names


def _requests(http: Any, headers: dict[str, str], window_id: str) -> list[Any]:
    return [
        http.post("/api/maintenance/", json={"completeWindow": {"id": window_id}}, headers=headers)
        for _ in range(CALLERS // 2)
    ]
