"""An incident's life: create, update, resolve, reopen, edit, delete; ordering and pages; events;
suppression; cleanup after a catalog system is deleted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from checkstack_core import Conflict, Context, Event, Forbidden, NotFound, Plugin


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- lifecycle ------------------------------------------------------------------------------------


async def test_create_update_resolve_reopen(admin, make_system, checkstack_auth):
    db = await make_system("Database")
    created = await admin.call(
        "incident",
        "createIncident",
        {
            "title": "  Database down ",
            "description": "Writes fail",
            "severity": "critical",
            "systemIds": [db],
            "message": "Looking into it",
        },
    )
    assert created["title"] == "Database down"
    assert created["status"] == "investigating"
    assert created["systemIds"] == [db]
    assert created["resolvedAt"] is None
    assert created["suppressNotifications"] is False
    assert created["createdBy"]["name"] == "Ada Admin"
    assert created["createdAt"] == created["updatedAt"]
    incident_id = created["id"]

    identified = await admin.call(
        "incident", "addUpdate", {"id": incident_id, "message": "Disk full", "status": "identified"}
    )
    assert identified["incident"]["status"] == "identified"
    assert identified["entry"]["kind"] == "update"
    assert identified["entry"]["status"] == "identified"
    assert identified["entry"]["fromStatus"] == "investigating"
    assert identified["entry"]["author"]["name"] == "Ada Admin"

    note = await admin.call("incident", "addUpdate", {"id": incident_id, "message": "Cleaning up"})
    assert note["entry"]["status"] is None and note["entry"]["fromStatus"] is None
    assert note["incident"]["status"] == "identified"

    resolved = await admin.call("incident", "resolveIncident", {"id": incident_id})
    assert resolved["incident"]["status"] == "resolved"
    resolved_at = resolved["incident"]["resolvedAt"]
    assert resolved_at is not None and ts(resolved_at) >= ts(created["createdAt"])
    assert resolved["entry"]["kind"] == "resolved"
    assert resolved["entry"]["message"] == "Incident resolved"
    assert resolved["entry"]["fromStatus"] == "identified"

    with pytest.raises(Conflict) as again:
        await admin.call("incident", "resolveIncident", {"id": incident_id})
    assert again.value.status == 409
    assert again.value.message == f"Incident already resolved: {incident_id}"

    reopened = await admin.call(
        "incident",
        "addUpdate",
        {"id": incident_id, "message": "Back again", "status": "monitoring"},
    )
    assert reopened["incident"]["status"] == "monitoring"
    assert reopened["incident"]["resolvedAt"] is None
    assert reopened["entry"]["kind"] == "reopened"
    assert reopened["entry"]["fromStatus"] == "resolved"
    assert reopened["entry"]["status"] == "monitoring"

    # An update naming the status the incident already has changes no status.
    same = await admin.call(
        "incident", "addUpdate", {"id": incident_id, "message": "Still", "status": "monitoring"}
    )
    assert same["entry"]["kind"] == "update" and same["entry"]["status"] is None

    # Resolving through addUpdate sets resolvedAt like resolveIncident does.
    done = await admin.call(
        "incident", "addUpdate", {"id": incident_id, "message": "Fixed", "status": "resolved"}
    )
    assert done["incident"]["resolvedAt"] is not None
    assert done["entry"]["kind"] == "resolved"

    detail = await admin.call("incident", "getIncident", {"id": incident_id})
    assert detail["timelineTotal"] == 7
    assert [(e["kind"], e["status"], e["fromStatus"]) for e in detail["timeline"]] == [
        ("created", "investigating", None),
        ("update", "identified", "investigating"),
        ("update", None, None),
        ("resolved", "resolved", "identified"),
        ("reopened", "monitoring", "resolved"),
        ("update", None, None),
        ("resolved", "resolved", "monitoring"),
    ]
    assert detail["timeline"][0]["message"] == "Looking into it"
    assert {e["incidentId"] for e in detail["timeline"]} == {incident_id}
    times = [ts(e["createdAt"]) for e in detail["timeline"]]
    assert times == sorted(times)
    assert detail["description"] == "Writes fail"
    assert detail["resolvedAt"] == done["incident"]["resolvedAt"]


async def test_created_with_a_status_and_default_message(make_system, make_incident, admin):
    system = await make_system("API")
    created = await make_incident([system], status="identified", suppressNotifications=True)
    assert created["status"] == "identified" and created["suppressNotifications"] is True
    detail = await admin.call("incident", "getIncident", {"id": created["id"]})
    [entry] = detail["timeline"]
    assert (entry["kind"], entry["message"], entry["status"]) == (
        "created",
        "Incident created",
        "identified",
    )


async def test_update_changes_only_the_given_fields(make_system, make_incident, admin):
    a, b, c = [await make_system(n) for n in ("A", "B", "C")]
    created = await make_incident([a, b], description="first")
    incident_id = created["id"]

    unchanged = await admin.call("incident", "updateIncident", {"id": incident_id})
    assert unchanged == created

    updated = await admin.call(
        "incident",
        "updateIncident",
        {
            "id": incident_id,
            "title": "Renamed",
            "severity": "minor",
            "systemIds": [c, b, c],
            "suppressNotifications": True,
        },
    )
    assert updated["title"] == "Renamed"
    assert updated["severity"] == "minor"
    assert updated["systemIds"] == sorted([b, c])
    assert updated["suppressNotifications"] is True
    assert updated["description"] == "first"
    assert ts(updated["updatedAt"]) >= ts(created["updatedAt"])

    cleared = await admin.call(
        "incident", "updateIncident", {"id": incident_id, "description": None}
    )
    assert cleared["description"] is None
    assert cleared["title"] == "Renamed"
    # Editing is not a timeline event: the timeline still holds only the creation.
    detail = await admin.call("incident", "getIncident", {"id": incident_id})
    assert detail["timelineTotal"] == 1


async def test_delete_removes_the_incident_and_its_timeline(
    make_system, make_incident, admin, checkstack_host
):
    from checkstack_incident.models import IncidentRow, IncidentSystem, TimelineRow

    system = await make_system("Queue")
    incident_id = (await make_incident([system]))["id"]
    await admin.call("incident", "addUpdate", {"id": incident_id, "message": "note"})
    assert await admin.call("incident", "deleteIncident", {"id": incident_id}) == {
        "id": incident_id
    }
    with pytest.raises(NotFound, match=f"Incident not found: {incident_id}"):
        await admin.call("incident", "getIncident", {"id": incident_id})
    with pytest.raises(NotFound):
        await admin.call("incident", "deleteIncident", {"id": incident_id})
    async with checkstack_host.db.session() as session:
        for model in (IncidentRow, IncidentSystem, TimelineRow):
            rows = (await session.exec(select(model))).all()
            assert rows == [], model.__tablename__


# -- ordering and pages ---------------------------------------------------------------------------


async def test_lists_are_newest_first_and_paginated(make_system, make_incident, admin):
    system = await make_system("Web")
    ids = [(await make_incident([system], title=f"Incident {n}"))["id"] for n in range(5)]
    newest_first = list(reversed(ids))

    page = await admin.call("incident", "getIncidents", {})
    assert [i["id"] for i in page["incidents"]] == newest_first and page["total"] == 5

    seen: list[str] = []
    for offset in (0, 2, 4):
        page = await admin.call("incident", "getIncidents", {"limit": 2, "offset": offset})
        assert page["total"] == 5
        seen += [i["id"] for i in page["incidents"]]
    assert seen == newest_first
    beyond = await admin.call("incident", "getIncidents", {"offset": 10})
    assert beyond == {"incidents": [], "total": 5}


async def test_filters(make_system, make_incident, admin):
    a, b = await make_system("A"), await make_system("B")
    open_a = (await make_incident([a], severity="minor"))["id"]
    open_ab = (await make_incident([a, b], severity="critical", status="monitoring"))["id"]
    resolved_b = (await make_incident([b], severity="critical"))["id"]
    await admin.call("incident", "resolveIncident", {"id": resolved_b})

    async def ids(**query: Any) -> list[str]:
        page = await admin.call("incident", "getIncidents", query)
        assert page["total"] == len(page["incidents"])
        return [i["id"] for i in page["incidents"]]

    assert await ids() == [open_ab, open_a]
    assert await ids(includeResolved=True) == [resolved_b, open_ab, open_a]
    assert await ids(status="resolved") == [resolved_b]
    assert await ids(status=["resolved", "monitoring"]) == [resolved_b, open_ab]
    assert await ids(systemId=b) == [open_ab]
    assert await ids(systemId=b, includeResolved=True) == [resolved_b, open_ab]
    assert await ids(severity="critical") == [open_ab]
    assert await ids(severity=["critical", "minor"], includeResolved=True) == [
        resolved_b,
        open_ab,
        open_a,
    ]
    assert await ids(systemId="no-such-system") == []


async def test_timeline_is_chronological_and_paginated(make_system, make_incident, admin):
    system = await make_system("Cache")
    incident_id = (await make_incident([system], message="m0"))["id"]
    for n in range(1, 5):
        await admin.call("incident", "addUpdate", {"id": incident_id, "message": f"m{n}"})

    detail = await admin.call("incident", "getIncident", {"id": incident_id})
    assert [e["message"] for e in detail["timeline"]] == ["m0", "m1", "m2", "m3", "m4"]
    page = await admin.call(
        "incident", "getIncident", {"id": incident_id, "timelineLimit": 2, "timelineOffset": 1}
    )
    assert [e["message"] for e in page["timeline"]] == ["m1", "m2"]
    assert page["timelineTotal"] == 5
    last = await admin.call(
        "incident", "getIncident", {"id": incident_id, "timelineLimit": 2, "timelineOffset": 4}
    )
    assert [e["message"] for e in last["timeline"]] == ["m4"]


# -- notification suppression ---------------------------------------------------------------------


async def test_is_suppressed(make_system, make_incident, admin, checkstack_host, checkstack_client):
    from checkstack_incident.contract import INCIDENT_STATUS

    quiet, loud, other = [await make_system(n) for n in ("Quiet", "Loud", "Other")]
    before = datetime.now(UTC)
    suppressing = (await make_incident([quiet], suppressNotifications=True))["id"]
    await make_incident([loud])
    while_open = datetime.now(UTC)

    async def answers(system_id: str) -> tuple[bool, bool]:
        async with checkstack_host.service_context("healthcheck-test") as ctx:
            procedure = await ctx.call(
                "incident", "isSuppressed", {"systemId": system_id}, as_service=True
            )
            service = await ctx.service(INCIDENT_STATUS).suppressed(system_id)
        return procedure.suppressed, service

    assert await answers(quiet) == (True, True)
    assert await answers(loud) == (False, False)
    assert await answers(other) == (False, False)
    await admin.call("incident", "resolveIncident", {"id": suppressing})
    assert await answers(quiet) == (False, False)
    while_resolved = datetime.now(UTC)
    await admin.call(
        "incident", "addUpdate", {"id": suppressing, "message": "again", "status": "investigating"}
    )
    assert await answers(quiet) == (True, True)
    # Asking about a past moment follows the timeline's status history.
    status = checkstack_host.services[INCIDENT_STATUS.id]
    assert await status.suppressed(quiet, before) is False
    assert await status.suppressed(quiet, while_open) is True
    assert await status.suppressed(quiet, while_resolved) is False
    assert await status.suppressed(quiet, datetime.now(UTC)) is True
    # Given a call's context, the service answers from that call's transaction.
    async with checkstack_host.service_context("healthcheck-test") as ctx:
        await ctx.call("incident", "resolveIncident", {"id": suppressing}, as_service=True)
        assert await ctx.service(INCIDENT_STATUS).suppressed(quiet, ctx=ctx) is False
        assert await status.suppressed(quiet) is True
        await ctx.uow.rollback()
    assert await status.suppressed(quiet) is True
    await admin.call(
        "incident", "updateIncident", {"id": suppressing, "suppressNotifications": False}
    )
    assert await answers(quiet) == (False, False)

    # Service only: not callable over HTTP, even by an administrator.
    with pytest.raises(Forbidden, match="for services only"):
        await admin.call("incident", "isSuppressed", {"systemId": quiet})


# -- events ---------------------------------------------------------------------------------------


class TestEvents:
    """A listener plugin, loaded beside catalog and incident, records the incident events."""

    @pytest.fixture
    def seen(self) -> list[tuple[str, dict[str, Any]]]:
        return []

    @pytest.fixture
    def checkstack_plugins(
        self, checkstack_plugins: list[Plugin], seen: list[tuple[str, dict[str, Any]]]
    ) -> list[Plugin]:
        listener = Plugin(id="listener", name="Listener", depends_on=["incident"])
        for name in ("created", "updated", "status_changed", "resolved", "reopened", "deleted"):

            @listener.on_event(f"incident.incident.{name}")
            async def record(ctx: Context, event: Event) -> None:
                seen.append((event.name.rsplit(".", 1)[1], event.payload))

        return [*checkstack_plugins, listener]

    async def test_every_change_emits_after_commit(self, make_system, admin, checkstack_host, seen):
        system = await make_system("Mail")
        created = await admin.call(
            "incident",
            "createIncident",
            {"title": "Mail slow", "severity": "minor", "systemIds": [system]},
        )
        incident_id = created["id"]
        await admin.call("incident", "updateIncident", {"id": incident_id, "severity": "major"})
        await admin.call(
            "incident", "addUpdate", {"id": incident_id, "message": "m", "status": "identified"}
        )
        await admin.call("incident", "resolveIncident", {"id": incident_id})
        await admin.call(
            "incident", "addUpdate", {"id": incident_id, "message": "n", "status": "monitoring"}
        )
        await admin.call("incident", "resolveIncident", {"id": incident_id})
        with pytest.raises(Conflict):  # refused: no event
            await admin.call("incident", "resolveIncident", {"id": incident_id})
        await admin.call("incident", "deleteIncident", {"id": incident_id})
        await checkstack_host.events.drain()

        names = [name for name, _ in seen]
        assert names == [
            "created",
            "updated",  # severity
            "updated",  # timeline + status
            "status_changed",
            "updated",  # resolve
            "status_changed",
            "resolved",
            "updated",  # reopen
            "status_changed",
            "reopened",
            "updated",  # resolved again (the second resolve is refused)
            "status_changed",
            "resolved",
            "deleted",
        ]
        payloads = [payload for _, payload in seen]
        assert payloads[0]["incidentId"] == incident_id
        assert payloads[0]["systemIds"] == [system] and payloads[0]["severity"] == "minor"
        assert payloads[1]["changes"] == ["severity"] and payloads[1]["severity"] == "major"
        assert (payloads[3]["fromStatus"], payloads[3]["toStatus"]) == (
            "investigating",
            "identified",
        )
        assert payloads[6]["resolvedAt"] is not None
        assert (payloads[9]["fromStatus"], payloads[9]["toStatus"]) == ("resolved", "monitoring")
        assert payloads[-1] == {
            "incidentId": incident_id,
            "title": "Mail slow",
            "systemIds": [system],
        }


# -- cleanup after a catalog system is deleted ----------------------------------------------------


async def test_deleting_a_system_removes_it_from_incidents(
    make_system, make_incident, admin, checkstack_host
):
    from checkstack_incident import service
    from checkstack_incident.models import IncidentSystem, TimelineRow

    doomed, kept = await make_system("Doomed"), await make_system("Kept")
    shared = (await make_incident([doomed, kept], suppressNotifications=True))["id"]
    alone = (await make_incident([doomed], suppressNotifications=True))["id"]
    untouched = (await make_incident([kept]))["id"]

    await admin.call("catalog", "deleteSystem", {"id": doomed})
    await checkstack_host.events.drain()

    shared_now = await admin.call("incident", "getIncident", {"id": shared})
    assert shared_now["systemIds"] == [kept]
    last = shared_now["timeline"][-1]
    assert last["kind"] == "system_removed" and "Doomed" in last["message"]
    assert last["author"]["kind"] == "service"
    # The incident left without systems is kept, open, with the removal in its timeline.
    alone_now = await admin.call("incident", "getIncident", {"id": alone})
    assert alone_now["systemIds"] == [] and alone_now["status"] == "investigating"
    assert alone_now["timeline"][-1]["kind"] == "system_removed"
    untouched_now = await admin.call("incident", "getIncident", {"id": untouched})
    assert untouched_now["timelineTotal"] == 1
    listed = await admin.call("incident", "getIncidents", {})
    assert {i["id"] for i in listed["incidents"]} == {shared, alone, untouched}
    assert await admin.call("incident", "getIncidents", {"systemId": doomed}) == {
        "incidents": [],
        "total": 0,
    }

    async with checkstack_host.db.session() as session:
        dangling = await session.exec(
            select(IncidentSystem).where(col(IncidentSystem.system_id) == doomed)
        )
        assert dangling.all() == []
        entries_before = len((await session.exec(select(TimelineRow))).all())

    # Redelivery (at least once) changes nothing.
    async with checkstack_host.service_context("incident") as ctx:
        assert await service.forget_system(ctx, doomed, "Doomed") == 0
    async with checkstack_host.db.session() as session:
        assert len((await session.exec(select(TimelineRow))).all()) == entries_before

    # The incident left without systems can get systems again.
    other = await make_system("Replacement")
    revived = await admin.call("incident", "updateIncident", {"id": alone, "systemIds": [other]})
    assert revived["systemIds"] == [other]
