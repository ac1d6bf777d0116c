"""Invalid input for every procedure is a 400, 404 or 409 in the documented shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

MISSING = "00000000-0000-4000-8000-000000000000"
UNKNOWN_WINDOW = f"Maintenance window not found: {MISSING}"


def window(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Upgrade",
        "startAt": "T+60",
        "endAt": "T+120",
        "systemIds": ["SYSTEM"],
        **fields,
    }


def without(key: str) -> dict[str, Any]:
    body = window()
    del body[key]
    return body


# (procedure, input, status, message, issue path or None). "WINDOW" and "SYSTEM" are replaced
# by an existing window / system id.
CASES: list[tuple[str, Any, int, str, list[Any] | None]] = [
    # scheduleWindow
    ("scheduleWindow", {}, 400, "Input validation failed", []),
    ("scheduleWindow", without("title"), 400, "Input validation failed", []),
    ("scheduleWindow", without("startAt"), 400, "Input validation failed", []),
    ("scheduleWindow", without("endAt"), 400, "Input validation failed", []),
    ("scheduleWindow", without("systemIds"), 400, "Input validation failed", []),
    ("scheduleWindow", window(title=""), 400, "Input validation failed", ["title"]),
    ("scheduleWindow", window(title="   "), 400, "Input validation failed", ["title"]),
    ("scheduleWindow", window(title="x" * 201), 400, "Input validation failed", ["title"]),
    ("scheduleWindow", window(title=42), 400, "Input validation failed", ["title"]),
    ("scheduleWindow", window(description=["x"]), 400, "Input validation failed", ["description"]),
    ("scheduleWindow", window(startAt="tomorrow"), 400, "Input validation failed", ["startAt"]),
    ("scheduleWindow", window(startAt=12), 400, "Input validation failed", ["startAt"]),
    (
        "scheduleWindow",
        window(startAt="2030-01-01T10:00:00"),  # no time zone
        400,
        "Input validation failed",
        ["startAt"],
    ),
    ("scheduleWindow", window(endAt="T+30"), 400, "Input validation failed", ["endAt"]),
    (
        "scheduleWindow",
        window(startAt="2099-01-01T10:00:00Z", endAt="2099-01-01T10:00:00Z"),
        400,
        "Input validation failed",
        ["endAt"],
    ),
    (
        "scheduleWindow",
        window(startAt="T-120", endAt="T-60"),
        400,
        "Input validation failed",
        ["endAt"],
    ),
    ("scheduleWindow", window(systemIds=[]), 400, "Input validation failed", ["systemIds"]),
    ("scheduleWindow", window(systemIds="SYSTEM"), 400, "Input validation failed", ["systemIds"]),
    ("scheduleWindow", window(systemIds=[1]), 400, "Input validation failed", ["systemIds", 0]),
    ("scheduleWindow", window(systemIds=[""]), 400, "Input validation failed", ["systemIds", 0]),
    (
        "scheduleWindow",
        window(suppressNotifications="yes"),
        400,
        "Input validation failed",
        ["suppressNotifications"],
    ),
    ("scheduleWindow", window(status="completed"), 400, "Input validation failed", []),
    ("scheduleWindow", [], 400, "Input validation failed", []),
    ("scheduleWindow", window(systemIds=[MISSING]), 404, f"System not found: {MISSING}", None),
    (
        "scheduleWindow",
        window(systemIds=["SYSTEM", MISSING]),
        404,
        f"System not found: {MISSING}",
        None,
    ),
    # updateWindow
    ("updateWindow", {}, 400, "Input validation failed", []),
    ("updateWindow", {"id": 5}, 400, "Input validation failed", ["id"]),
    ("updateWindow", {"id": MISSING}, 404, UNKNOWN_WINDOW, None),
    ("updateWindow", {"id": "WINDOW", "title": ""}, 400, "Input validation failed", ["title"]),
    ("updateWindow", {"id": "WINDOW", "title": " "}, 400, "Input validation failed", ["title"]),
    ("updateWindow", {"id": "WINDOW", "title": None}, 400, "Input validation failed", ["title"]),
    (
        "updateWindow",
        {"id": "WINDOW", "endAt": "T+10"},
        400,
        "Input validation failed",
        ["endAt"],
    ),
    (
        "updateWindow",
        {"id": "WINDOW", "startAt": "T+180"},
        400,
        "Input validation failed",
        ["startAt"],
    ),
    (
        "updateWindow",
        {"id": "WINDOW", "startAt": "T-180", "endAt": "T-120"},
        400,
        "Input validation failed",
        ["endAt"],
    ),
    (
        "updateWindow",
        {"id": "WINDOW", "systemIds": []},
        400,
        "Input validation failed",
        ["systemIds"],
    ),
    (
        "updateWindow",
        {"id": "WINDOW", "systemIds": [MISSING]},
        404,
        f"System not found: {MISSING}",
        None,
    ),
    ("updateWindow", {"id": "WINDOW", "color": "red"}, 400, "Input validation failed", []),
    # addUpdate
    ("addUpdate", {"id": "WINDOW"}, 400, "Input validation failed", []),
    ("addUpdate", {"id": "WINDOW", "message": ""}, 400, "Input validation failed", ["message"]),
    ("addUpdate", {"id": "WINDOW", "message": "  "}, 400, "Input validation failed", ["message"]),
    (
        "addUpdate",
        {"id": "WINDOW", "message": "x", "status": "done"},
        400,
        "Input validation failed",
        ["status"],
    ),
    ("addUpdate", {"id": MISSING, "message": "x"}, 404, UNKNOWN_WINDOW, None),
    (
        "addUpdate",
        {"id": "WINDOW", "message": "x", "status": "completed"},
        409,
        "Cannot complete a scheduled maintenance window",
        None,
    ),
    # completeWindow / cancelWindow / deleteWindow
    ("completeWindow", {}, 400, "Input validation failed", []),
    ("completeWindow", {"id": MISSING}, 404, UNKNOWN_WINDOW, None),
    (
        "completeWindow",
        {"id": "WINDOW"},
        409,
        "Cannot complete a scheduled maintenance window",
        None,
    ),
    (
        "completeWindow",
        {"id": "WINDOW", "message": ""},
        400,
        "Input validation failed",
        ["message"],
    ),
    ("cancelWindow", {"id": None}, 400, "Input validation failed", ["id"]),
    ("cancelWindow", {"id": MISSING}, 404, UNKNOWN_WINDOW, None),
    ("deleteWindow", {}, 400, "Input validation failed", []),
    ("deleteWindow", {"id": ""}, 400, "Input validation failed", ["id"]),
    ("deleteWindow", {"id": MISSING}, 404, UNKNOWN_WINDOW, None),
    # queries
    ("getWindow", {"id": MISSING}, 404, UNKNOWN_WINDOW, None),
    ("getWindow", {}, 400, "Input validation failed", []),
    ("getWindows", {"status": "open"}, 400, "Input validation failed", ["status"]),
    ("getWindows", {"status": []}, 400, "Input validation failed", ["status"]),
    ("getWindows", {"limit": 0}, 400, "Input validation failed", ["limit"]),
    ("getWindows", {"limit": 201}, 400, "Input validation failed", ["limit"]),
    ("getWindows", {"offset": -1}, 400, "Input validation failed", ["offset"]),
    ("getWindows", {"from": "yesterday"}, 400, "Input validation failed", ["from"]),
    (
        "getWindows",
        {"from": "T+60", "to": "T-60"},
        400,
        "Input validation failed",
        ["to"],
    ),
    ("getWindows", {"cursor": "abc"}, 400, "Input validation failed", []),
    ("getActiveWindowsForSystem", {}, 400, "Input validation failed", []),
]


def _fill(value: Any, later: Any, **ids: str) -> Any:
    """Replace the placeholders: WINDOW, SYSTEM, and "T+<minutes>" for a time from now."""
    if isinstance(value, dict):
        return {k: _fill(v, later, **ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, later, **ids) for v in value]
    if isinstance(value, str) and value[:2] in ("T+", "T-"):
        return later(minutes=int(value[1:]))
    return ids.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize(("procedure", "body", "status", "message", "path"), CASES)
async def test_invalid_input(
    procedure, body, status, message, path, schedule, systems, checkstack_http, admin_caller, later
):
    existing = await schedule()
    raw = _fill(body, later, WINDOW=existing["id"], SYSTEM=systems[0])
    response = await checkstack_http.post(
        "/api/maintenance/", json={procedure: raw}, headers=admin_caller.headers
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert error["message"] == message
    assert error["procedure"] == procedure
    assert set(error) <= {"code", "message", "procedure", "data"}
    if path is not None:
        issues = error["data"]["issues"]
        assert issues and all(set(i) == {"message", "path"} for i in issues)
        if path:
            assert path in [i["path"] for i in issues], issues


async def test_several_problems_are_reported_together(
    checkstack_http, admin_caller, systems, later
):
    body = _fill(window(title=" ", endAt="T+1", systemIds=[systems[0]]), later)
    response = await checkstack_http.post(
        "/api/maintenance/", json={"scheduleWindow": body}, headers=admin_caller.headers
    )
    assert response.status_code == 400
    assert response.json()["data"]["issues"] == [
        {"message": "title must not be blank", "path": ["title"]},
        {"message": "endAt must be after startAt", "path": ["endAt"]},
    ]


async def test_a_failed_batch_changes_nothing(
    checkstack_http, admin_caller, systems, manager, later
):
    good = _fill(window(systemIds=[systems[0]]), later)
    bad = _fill(window(systemIds=[MISSING]), later)
    response = await checkstack_http.post(
        "/api/maintenance/",
        json={"scheduleWindow": good, "getWindows": {}, "cancelWindow": {"id": MISSING}},
        headers=admin_caller.headers,
    )
    assert response.status_code == 404
    assert (await manager.call("maintenance", "getWindows"))["total"] == 0
    response = await checkstack_http.post(
        "/api/maintenance/", json={"scheduleWindow": bad}, headers=admin_caller.headers
    )
    assert response.status_code == 404
    assert (await manager.call("maintenance", "getWindows"))["total"] == 0
