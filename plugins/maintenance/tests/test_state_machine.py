"""The window status machine and its timeline (SPEC §6.3).

scheduled → in_progress → completed, and cancelled from scheduled or in_progress; every other
transition is 409 CONFLICT naming it. Every change is a timeline entry with its author.
"""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Conflict

STATUSES = ["scheduled", "in_progress", "completed", "cancelled"]
LEGAL = {
    ("scheduled", "in_progress"),
    ("in_progress", "completed"),
    ("scheduled", "cancelled"),
    ("in_progress", "cancelled"),
}
MESSAGES = {
    ("in_progress", "in_progress"): "Cannot start an in-progress maintenance window",
    ("completed", "in_progress"): "Cannot start a completed maintenance window",
    ("cancelled", "in_progress"): "Cannot start a cancelled maintenance window",
    ("scheduled", "completed"): "Cannot complete a scheduled maintenance window",
    ("completed", "completed"): "Cannot complete a completed maintenance window",
    ("cancelled", "completed"): "Cannot complete a cancelled maintenance window",
    ("completed", "cancelled"): "Cannot cancel a completed maintenance window",
    ("cancelled", "cancelled"): "Cannot cancel a cancelled maintenance window",
    ("scheduled", "scheduled"): "Cannot move a scheduled maintenance window back to scheduled",
    ("in_progress", "scheduled"): "Cannot move an in-progress maintenance window back to scheduled",
    ("completed", "scheduled"): "Cannot move a completed maintenance window back to scheduled",
    ("cancelled", "scheduled"): "Cannot move a cancelled maintenance window back to scheduled",
}
PATHS = {
    "scheduled": [],
    "in_progress": ["in_progress"],
    "completed": ["in_progress", "completed"],
    "cancelled": ["cancelled"],
}


async def window_in(status: str, schedule: Any, manager: Any) -> dict[str, Any]:
    """A window brought to ``status`` through legal transitions."""
    window = await schedule()
    for step in PATHS[status]:
        await manager.call(
            "maintenance", "addUpdate", {"id": window["id"], "message": step, "status": step}
        )
    return await manager.call("maintenance", "getWindow", {"id": window["id"]})


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
async def test_every_transition_through_add_update(current, target, schedule, manager):
    window = await window_in(current, schedule, manager)
    assert window["status"] == current
    update = {"id": window["id"], "message": f"to {target}", "status": target}
    if (current, target) in LEGAL:
        entry = await manager.call("maintenance", "addUpdate", update)
        assert (entry["kind"], entry["fromStatus"], entry["toStatus"]) == (
            "status",
            current,
            target,
        )
        after = await manager.call("maintenance", "getWindow", {"id": window["id"]})
        assert after["status"] == target
        assert after["timeline"][-1] == entry
    else:
        with pytest.raises(Conflict) as conflict:
            await manager.call("maintenance", "addUpdate", update)
        assert conflict.value.status == 409
        assert conflict.value.message == MESSAGES[(current, target)]
        assert conflict.value.data == {"fromStatus": current, "toStatus": target}
        after = await manager.call("maintenance", "getWindow", {"id": window["id"]})
        assert after["status"] == current
        assert after["timeline"] == window["timeline"]


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize(
    ("procedure", "target"), [("completeWindow", "completed"), ("cancelWindow", "cancelled")]
)
async def test_complete_and_cancel(current, procedure, target, schedule, manager):
    window = await window_in(current, schedule, manager)
    if (current, target) in LEGAL:
        done = await manager.call("maintenance", procedure, {"id": window["id"]})
        assert done["status"] == target
        timeline = (await manager.call("maintenance", "getWindow", {"id": window["id"]}))[
            "timeline"
        ]
        last = timeline[-1]
        assert (last["fromStatus"], last["toStatus"]) == (current, target)
        assert last["message"] == (
            "Maintenance completed" if target == "completed" else "Maintenance cancelled"
        )
    else:
        with pytest.raises(Conflict, match=f"^{MESSAGES[(current, target)]}$"):
            await manager.call("maintenance", procedure, {"id": window["id"]})


async def test_cancel_with_a_message(schedule, manager):
    window = await schedule()
    await manager.call(
        "maintenance", "cancelWindow", {"id": window["id"], "message": "Vendor postponed"}
    )
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    assert detail["timeline"][-1]["message"] == "Vendor postponed"


async def test_the_documented_conflict_message(schedule, manager, checkstack_http, manager_caller):
    window = await schedule()
    await manager.call("maintenance", "cancelWindow", {"id": window["id"]})
    response = await checkstack_http.post(
        "/api/maintenance/",
        json={"completeWindow": {"id": window["id"]}},
        headers=manager_caller.headers,
    )
    assert response.status_code == 409
    assert response.json() == {
        "code": "CONFLICT",
        "message": "Cannot complete a cancelled maintenance window",
        "procedure": "completeWindow",
        "data": {"fromStatus": "cancelled", "toStatus": "completed"},
    }


async def test_finished_windows_cannot_be_edited_but_take_updates(schedule, manager):
    window = await window_in("completed", schedule, manager)
    with pytest.raises(Conflict, match=r"^Cannot edit a completed maintenance window$"):
        await manager.call("maintenance", "updateWindow", {"id": window["id"], "title": "New"})
    note = await manager.call(
        "maintenance", "addUpdate", {"id": window["id"], "message": "Post-mortem published"}
    )
    assert (note["kind"], note["fromStatus"], note["toStatus"]) == ("update", None, None)


async def test_an_in_progress_window_keeps_its_start(schedule, manager):
    window = await window_in("in_progress", schedule, manager)
    with pytest.raises(Conflict, match=r"^Cannot change the start of an in-progress"):
        await manager.call(
            "maintenance",
            "updateWindow",
            {"id": window["id"], "startAt": window["endAt"]},
        )
    # Sending the unchanged start is fine; the end may move.
    updated = await manager.call(
        "maintenance",
        "updateWindow",
        {"id": window["id"], "startAt": window["startAt"], "title": "Longer upgrade"},
    )
    assert updated["title"] == "Longer upgrade" and updated["status"] == "in_progress"


# -- timeline --------------------------------------------------------------------------------------


async def test_timeline_is_chronological_with_authors(
    schedule, manager, admin, manager_caller, admin_caller
):
    window = await schedule(title="Switch upgrade")
    wid = window["id"]
    assert window["createdBy"] == {
        "kind": "user",
        "id": manager_caller.principal.id,
        "name": "Max Manager",
    }
    await admin.call("maintenance", "addUpdate", {"id": wid, "message": "Parts arrived"})
    await manager.call("maintenance", "updateWindow", {"id": wid, "title": "Core switch upgrade"})
    await manager.call(
        "maintenance",
        "addUpdate",
        {"id": wid, "message": "Starting early", "status": "in_progress"},
    )
    await admin.call("maintenance", "completeWindow", {"id": wid, "message": "All done"})

    detail = await manager.call("maintenance", "getWindow", {"id": wid})
    timeline = detail["timeline"]
    rows = [(e["kind"], e["message"], e["fromStatus"], e["toStatus"]) for e in timeline]
    assert rows == [
        ("created", "Maintenance scheduled", None, None),
        ("update", "Parts arrived", None, None),
        ("edited", "Changed title", None, None),
        ("status", "Starting early", "scheduled", "in_progress"),
        ("status", "All done", "in_progress", "completed"),
    ]
    manager_author = {"kind": "user", "id": manager_caller.principal.id, "name": "Max Manager"}
    admin_author = {"kind": "user", "id": admin_caller.principal.id, "name": "Ada Admin"}
    assert [e["author"] for e in timeline] == [
        manager_author,
        admin_author,
        manager_author,
        manager_author,
        admin_author,
    ]
    times = [e["createdAt"] for e in timeline]
    assert times == sorted(times)
    assert {e["windowId"] for e in timeline} == {wid}
    assert len({e["id"] for e in timeline}) == len(timeline)


async def test_an_edit_without_changes_adds_no_entry(schedule, manager):
    window = await schedule()
    same = await manager.call(
        "maintenance", "updateWindow", {"id": window["id"], "title": window["title"]}
    )
    assert same == window
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    assert [e["kind"] for e in detail["timeline"]] == ["created"]


async def test_an_edit_lists_what_changed(schedule, manager, systems):
    window = await schedule(description="Old text")
    updated = await manager.call(
        "maintenance",
        "updateWindow",
        {
            "id": window["id"],
            "description": None,
            "systemIds": [systems[1], systems[0]],
            "suppressNotifications": True,
        },
    )
    assert updated["description"] is None
    assert updated["systemIds"] == sorted([systems[0], systems[1]])
    assert updated["suppressNotifications"] is True
    detail = await manager.call("maintenance", "getWindow", {"id": window["id"]})
    assert detail["timeline"][-1]["message"] == (
        "Changed description, systemIds, suppressNotifications"
    )
