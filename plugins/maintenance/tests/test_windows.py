"""Scheduling, reading and listing windows; the suppression service; events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from checkstack_maintenance.contract import MAINTENANCE_STATUS

from checkstack_core import Context, Event, Plugin
from checkstack_core.db import utcnow


async def test_the_documented_calls(checkstack_http, manager_caller, systems, later):
    start, end = later(hours=1), later(hours=3)
    scheduled = await checkstack_http.post(
        "/api/maintenance/",
        json={
            "scheduleWindow": {
                "title": "Database upgrade",
                "description": "PostgreSQL 17",
                "startAt": start,
                "endAt": end,
                "systemIds": [systems[1], systems[0], systems[1]],
                "suppressNotifications": True,
            }
        },
        headers=manager_caller.headers,
    )
    assert scheduled.status_code == 200, scheduled.text
    window = scheduled.json()["scheduleWindow"]
    assert window == {
        "id": window["id"],
        "title": "Database upgrade",
        "description": "PostgreSQL 17",
        "startAt": start,
        "endAt": end,
        "systemIds": sorted(systems[:2]),
        "suppressNotifications": True,
        "status": "scheduled",
        "createdAt": window["createdAt"],
        "updatedAt": window["createdAt"],
        "createdBy": {"kind": "user", "id": manager_caller.principal.id, "name": "Max Manager"},
    }
    listed = await checkstack_http.post("/api/maintenance/", json={"getWindows": {}})
    assert listed.status_code == 200
    assert listed.json() == {"getWindows": {"windows": [window], "total": 1}}


async def test_list_order_filters_and_pages(schedule, manager, systems, anonymous, later):
    a = await schedule(title="A", startAt=later(hours=1), endAt=later(hours=2))
    b = await schedule(
        title="B", startAt=later(hours=5), endAt=later(hours=6), systemIds=[systems[1]]
    )
    c = await schedule(title="C", startAt=later(minutes=-10), endAt=later(hours=1))
    d = await schedule(title="D", startAt=later(hours=3), endAt=later(hours=4))
    await manager.call("maintenance", "cancelWindow", {"id": d["id"]})

    async def titles(**filters: Any) -> tuple[list[str], int]:
        page = await anonymous.call("maintenance", "getWindows", filters)
        return [w["title"] for w in page["windows"]], page["total"]

    assert await titles() == (["B", "D", "A", "C"], 4)  # newest startAt first
    assert await titles(status="scheduled") == (["B", "A"], 2)
    assert await titles(status=["in_progress", "cancelled"]) == (["D", "C"], 2)
    assert await titles(systemId=systems[1]) == (["B"], 1)
    assert await titles(systemId=systems[2]) == ([], 0)
    assert await titles(systemId="not-a-system") == ([], 0)
    assert await titles(**{"from": later(hours=2.5), "to": later(hours=5.5)}) == (["B", "D"], 2)
    assert await titles(**{"from": later(hours=4.5)}) == (["B"], 1)
    assert await titles(to=later(minutes=30)) == (["C"], 1)
    assert await titles(limit=2) == (["B", "D"], 4)
    assert await titles(limit=2, offset=2) == (["A", "C"], 4)
    assert await titles(limit=2, offset=4) == ([], 4)
    assert {a["id"], b["id"], c["id"]} <= {
        w["id"] for w in (await anonymous.call("maintenance", "getWindows"))["windows"]
    }


async def test_active_windows_for_a_system(schedule, systems, anonymous, later):
    running = await schedule(
        title="Running", startAt=later(minutes=-5), systemIds=[systems[0], systems[1]]
    )
    await schedule(title="Later", systemIds=[systems[0]])
    await schedule(title="Elsewhere", startAt=later(minutes=-5), systemIds=[systems[2]])
    active = await anonymous.call(
        "maintenance", "getActiveWindowsForSystem", {"systemId": systems[0]}
    )
    assert [w["id"] for w in active["windows"]] == [running["id"]]
    assert active["windows"][0]["systemIds"] == sorted(systems[:2])
    none = await anonymous.call("maintenance", "getActiveWindowsForSystem", {"systemId": "x"})
    assert none == {"windows": []}


async def test_delete_removes_the_window_and_its_timeline(schedule, manager, checkstack_http):
    window = await schedule()
    assert await manager.call("maintenance", "deleteWindow", {"id": window["id"]}) == {
        "id": window["id"]
    }
    response = await checkstack_http.post(
        "/api/maintenance/", json={"getWindow": {"id": window["id"]}}
    )
    assert response.status_code == 404
    assert response.json()["message"] == f"Maintenance window not found: {window['id']}"
    assert (await manager.call("maintenance", "getWindows"))["total"] == 0


# -- suppression -----------------------------------------------------------------------------------


async def test_suppression_follows_the_status(schedule, manager, systems, checkstack_host, later):
    suppressing = await schedule(
        startAt=later(minutes=-1), systemIds=[systems[0]], suppressNotifications=True
    )
    await schedule(startAt=later(minutes=-1), systemIds=[systems[1]])  # not suppressing
    await schedule(systemIds=[systems[2]], suppressNotifications=True)  # not started

    status = checkstack_host.services[MAINTENANCE_STATUS.id]
    assert [await status.suppressed(s) for s in systems] == [True, False, False]

    async with checkstack_host.service_context("healthcheck") as ctx:
        service = ctx.service(MAINTENANCE_STATUS)
        assert await service.suppressed(systems[0]) is True
        answer: Any = await ctx.call("maintenance", "isSuppressed", {"systemId": systems[0]})
        assert answer.suppressed is True

    # By plan: the future window suppresses during its planned time only.
    assert await status.suppressed(systems[2], at=utcnow() + timedelta(hours=1.5)) is True
    assert await status.suppressed(systems[2], at=utcnow() + timedelta(hours=3)) is False

    # Given a call's context, the service answers from that call's transaction (its own
    # connection), so it sees the call's uncommitted change; without, the committed state.
    async with checkstack_host.service_context("healthcheck") as ctx:
        await ctx.call("maintenance", "completeWindow", {"id": suppressing["id"]}, as_service=True)
        assert await ctx.service(MAINTENANCE_STATUS).suppressed(systems[0], ctx=ctx) is False
        assert await status.suppressed(systems[0]) is True
        await ctx.uow.rollback()
    assert await status.suppressed(systems[0]) is True

    await manager.call("maintenance", "completeWindow", {"id": suppressing["id"]})
    assert await status.suppressed(systems[0]) is False


# -- events ----------------------------------------------------------------------------------------


class TestEvents:
    """A listener plugin, loaded beside maintenance for these tests only, records the events."""

    @pytest.fixture
    def seen(self) -> list[Event]:
        return []

    @pytest.fixture
    def checkstack_plugins(self, checkstack_plugins: list[Plugin], seen: list[Event]) -> list[Any]:
        listener = Plugin(id="listener", name="Listener", depends_on=["maintenance"])
        names = [
            "maintenance.window.created",
            "maintenance.window.updated",
            "maintenance.window.status_changed",
            "maintenance.window.completed",
            "maintenance.window.cancelled",
            "maintenance.window.deleted",
        ]

        async def record(ctx: Context, event: Event) -> None:
            seen.append(event)

        for name in names:
            listener.on_event(name)(record)
        return [*checkstack_plugins, listener]

    async def test_each_change_emits_its_event_after_commit(
        self, schedule, manager, checkstack_host, seen, systems, later
    ):
        first = await schedule(systemIds=[systems[0]])
        await manager.call("maintenance", "updateWindow", {"id": first["id"], "title": "Renamed"})
        await manager.call("maintenance", "addUpdate", {"id": first["id"], "message": "note"})
        await manager.call("maintenance", "cancelWindow", {"id": first["id"]})
        second = await schedule(startAt=later(minutes=-1))
        await manager.call("maintenance", "completeWindow", {"id": second["id"]})
        await manager.call("maintenance", "deleteWindow", {"id": second["id"]})
        await checkstack_host.events.drain()

        rows = [(e.name.removeprefix("maintenance.window."), e.payload["windowId"]) for e in seen]
        assert rows == [
            ("created", first["id"]),
            ("updated", first["id"]),
            ("updated", first["id"]),
            ("status_changed", first["id"]),
            ("cancelled", first["id"]),
            ("created", second["id"]),
            ("status_changed", second["id"]),
            ("status_changed", second["id"]),
            ("completed", second["id"]),
            ("deleted", second["id"]),
        ]
        changes = [
            (e.payload["fromStatus"], e.payload["toStatus"])
            for e in seen
            if e.name.endswith("status_changed")
        ]
        assert changes == [
            ("scheduled", "cancelled"),
            ("scheduled", "in_progress"),
            ("in_progress", "completed"),
        ]
        assert seen[0].payload == {
            "windowId": first["id"],
            "title": first["title"],
            "status": "scheduled",
            "startAt": seen[0].payload["startAt"],
            "endAt": seen[0].payload["endAt"],
            "systemIds": [systems[0]],
            "suppressNotifications": False,
        }
        assert seen[1].payload["kind"] == "edited" and seen[1].payload["changed"] == ["title"]
        assert seen[2].payload["kind"] == "update"
        assert all(e.payload["systemIds"] == [systems[0]] for e in seen)

    async def test_a_rolled_back_change_emits_nothing(
        self, checkstack_http, admin_caller, checkstack_host, seen, systems, later
    ):
        body = {
            "title": "x",
            "startAt": later(hours=1),
            "endAt": later(hours=2),
            "systemIds": [systems[0]],
        }
        response = await checkstack_http.post(
            "/api/maintenance/",
            json={"scheduleWindow": body, "deleteWindow": {"id": "missing"}},
            headers=admin_caller.headers,
        )
        assert response.status_code == 404
        await checkstack_host.events.drain()
        assert seen == []
        jobs = await checkstack_host.jobs.list("maintenance:")
        assert [job.key for job in jobs] == ["maintenance:sweep"]
