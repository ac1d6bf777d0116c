"""Concurrent changes of one incident: each is made once, on every database.

Each round sends the same change many times at once through the HTTP app. A change that is only
legal once (resolving) answers 200 once and 409 to everyone else; the timeline and the events
record it once, whatever the database's isolation level.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from checkstack_core import Context, Event, Plugin

CALLERS = 16


@pytest.fixture
def seen() -> list[str]:
    return []


@pytest.fixture
def checkstack_plugins(checkstack_plugins: list[Plugin], seen: list[str]) -> list[Plugin]:
    listener = Plugin(id="listener", name="Listener", depends_on=["incident"])

    async def record(ctx: Context, event: Event) -> None:
        seen.append(event.name.rsplit(".", 1)[1])

    for name in ("updated", "status_changed", "resolved", "reopened", "deleted"):
        listener.on_event(f"incident.incident.{name}")(record)
    return [*checkstack_plugins, listener]


@pytest.fixture
async def incident(make_system, make_incident, checkstack_host, seen) -> dict[str, Any]:
    """An open incident; the events of its creation are already delivered and forgotten."""
    made = await make_incident([await make_system("Mail")])
    await checkstack_host.events.drain()
    seen.clear()
    return made


async def _at_once(http: Any, headers: dict[str, str], procedure: str, body: Any) -> list[Any]:
    return list(
        await asyncio.gather(
            *(
                http.post("/api/incident/", json={procedure: body}, headers=headers)
                for _ in range(CALLERS)
            )
        )
    )


async def _entries(host: Any, incident_id: str) -> list[tuple[str, str | None, str | None]]:
    from checkstack_incident.models import TimelineRow

    async with host.db.session() as session:
        rows = await session.exec(
            select(TimelineRow.kind, TimelineRow.from_status, TimelineRow.status)
            .where(col(TimelineRow.incident_id) == incident_id)
            .order_by(col(TimelineRow.seq))
        )
        return list(rows.all())


async def test_concurrent_resolutions_let_exactly_one_win(
    incident, admin_caller, checkstack_http, checkstack_host, seen
):
    responses = await _at_once(
        checkstack_http, admin_caller.headers, "resolveIncident", {"id": incident["id"]}
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (CALLERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "CONFLICT"
            assert response.json()["message"] == f"Incident already resolved: {incident['id']}"
    assert await _entries(checkstack_host, incident["id"]) == [
        ("created", None, "investigating"),
        ("resolved", "investigating", "resolved"),
    ]
    await checkstack_host.events.drain()
    assert sorted(seen) == ["resolved", "status_changed", "updated"]


async def test_concurrent_reopenings_reopen_once(
    incident, admin, admin_caller, checkstack_http, checkstack_host, seen
):
    """Every caller's message is kept, but only the first to arrive changes the status: for
    the others the incident is already ``identified``, so theirs are plain updates."""
    await admin.call("incident", "resolveIncident", {"id": incident["id"]})
    await checkstack_host.events.drain()
    seen.clear()

    responses = await _at_once(
        checkstack_http,
        admin_caller.headers,
        "addUpdate",
        {"id": incident["id"], "message": "Back again", "status": "identified"},
    )

    assert [r.status_code for r in responses] == [200] * CALLERS, [r.text for r in responses]
    entries = (await _entries(checkstack_host, incident["id"]))[2:]
    assert sorted(entries, key=lambda e: e[0]) == [("reopened", "resolved", "identified")] + [
        ("update", None, None)
    ] * (CALLERS - 1)
    assert entries[0][0] == "reopened"
    await checkstack_host.events.drain()
    assert sorted(seen) == sorted(["status_changed", "reopened"] + ["updated"] * CALLERS)


async def test_a_resolution_racing_edits_keeps_both(
    incident, admin_caller, checkstack_http, checkstack_host, seen
):
    """Edits and a resolution of one incident at once: the edits land on whatever status the
    incident has by then, and the resolution is recorded once."""
    headers = admin_caller.headers
    edits = [
        checkstack_http.post(
            "/api/incident/",
            json={"updateIncident": {"id": incident["id"], "title": f"Outage {i}"}},
            headers=headers,
        )
        for i in range(CALLERS // 2)
    ]
    resolutions = [
        checkstack_http.post(
            "/api/incident/", json={"resolveIncident": {"id": incident["id"]}}, headers=headers
        )
        for _ in range(CALLERS // 2)
    ]
    responses = await asyncio.gather(*edits, *resolutions)

    assert [r.status_code for r in responses[: CALLERS // 2]] == [200] * (CALLERS // 2)
    assert sorted(r.status_code for r in responses[CALLERS // 2 :]) == [200] + [409] * (
        CALLERS // 2 - 1
    )
    assert [e[0] for e in await _entries(checkstack_host, incident["id"])] == [
        "created",
        "resolved",
    ]
    await checkstack_host.events.drain()
    assert seen.count("resolved") == 1
    assert seen.count("updated") == CALLERS // 2 + 1


async def test_concurrent_deletions_delete_once(
    incident, admin_caller, checkstack_http, checkstack_host, seen
):
    responses = await _at_once(
        checkstack_http, admin_caller.headers, "deleteIncident", {"id": incident["id"]}
    )

    assert sorted(r.status_code for r in responses) == [200] + [404] * (CALLERS - 1)
    await checkstack_host.events.drain()
    assert seen == ["deleted"]
