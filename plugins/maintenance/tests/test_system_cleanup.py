"""Deleting a catalog system removes it from every window (``catalog.system.deleted``): nothing
dangles, the timeline says what happened, and a window left without systems is cancelled."""

from __future__ import annotations

from checkstack_maintenance.models import WindowSystemRow
from sqlmodel import col, select

SYSTEM_AUTHOR = {"kind": "system", "id": "maintenance", "name": "Maintenance scheduler"}


async def test_a_deleted_system_leaves_every_window(
    schedule, systems, admin, manager, checkstack_host, later
):
    doomed, kept, _ = systems
    shared = await schedule(title="Shared", systemIds=[doomed, kept])
    alone = await schedule(title="Alone", systemIds=[doomed], startAt=later(minutes=-1))
    finished = await schedule(title="Finished", systemIds=[doomed])
    await manager.call("maintenance", "cancelWindow", {"id": finished["id"]})
    untouched = await schedule(title="Untouched", systemIds=[kept])
    untouched_before = await manager.call("maintenance", "getWindow", {"id": untouched["id"]})

    await admin.call("catalog", "deleteSystem", {"id": doomed})
    await checkstack_host.events.drain()

    async with checkstack_host.db.session() as session:
        left = (
            await session.exec(
                select(WindowSystemRow).where(col(WindowSystemRow.system_id) == doomed)
            )
        ).all()
    assert left == []

    shared_now = await manager.call("maintenance", "getWindow", {"id": shared["id"]})
    assert (shared_now["systemIds"], shared_now["status"]) == ([kept], "scheduled")
    note = shared_now["timeline"][-1]
    assert note["kind"] == "edited" and note["author"] == SYSTEM_AUTHOR
    assert note["message"] == (
        f"System api ({doomed}) was deleted from the catalog and removed from this window"
    )

    alone_now = await manager.call("maintenance", "getWindow", {"id": alone["id"]})
    assert (alone_now["systemIds"], alone_now["status"]) == ([], "cancelled")
    assert [(e["kind"], e["toStatus"]) for e in alone_now["timeline"][-2:]] == [
        ("edited", None),
        ("status", "cancelled"),
    ]
    assert alone_now["timeline"][-1]["author"] == SYSTEM_AUTHOR

    finished_now = await manager.call("maintenance", "getWindow", {"id": finished["id"]})
    assert (finished_now["systemIds"], finished_now["status"]) == ([], "cancelled")
    assert finished_now["timeline"][-1]["kind"] == "edited"

    untouched_after = await manager.call("maintenance", "getWindow", {"id": untouched["id"]})
    assert untouched_after == untouched_before

    # Windows without systems are guarded by the global read rule alone.
    listed = await manager.call("maintenance", "getWindows")
    assert listed["total"] == 4
    # The cancelled window has no pending transition left.
    assert await checkstack_host.jobs.get(f"maintenance:{alone['id']}:end") is None


async def test_a_redelivered_deletion_changes_nothing(
    schedule, systems, admin, manager, checkstack_host
):
    from checkstack_maintenance.service import forget_system

    window = await schedule(systemIds=systems[:2])
    await admin.call("catalog", "deleteSystem", {"id": systems[0]})
    await checkstack_host.events.drain()
    before = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    async with checkstack_host.service_context("maintenance") as ctx:
        assert await forget_system(ctx, systems[0], "api") == 0
    assert await manager.call("maintenance", "getWindow", {"id": window["id"]}) == before
    assert len(before["timeline"]) == 2
