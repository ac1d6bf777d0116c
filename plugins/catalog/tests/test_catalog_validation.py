"""Invalid input to every procedure is a 400, 404 or 409 in the documented shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

TOO_BIG = {"blob": "x" * (16 * 1024)}

# (procedure, input, status, the path of the first issue for a 400 or the message otherwise).
# "$system" / "$group" stand for existing ids; "Taken" names an existing system and group.
CASES: list[tuple[str, Any, int, Any]] = [
    ("createSystem", {}, 400, []),
    ("createSystem", None, 400, []),
    ("createSystem", [], 400, []),
    ("createSystem", "Payments", 400, []),
    ("createSystem", {"name": 5}, 400, ["name"]),
    ("createSystem", {"name": None}, 400, ["name"]),
    ("createSystem", {"name": ""}, 400, ["name"]),
    ("createSystem", {"name": "   "}, 400, ["name"]),
    ("createSystem", {"name": "x" * 201}, 400, ["name"]),
    ("createSystem", {"name": "ok", "description": "d" * 2001}, 400, ["description"]),
    ("createSystem", {"name": "ok", "description": 5}, 400, ["description"]),
    ("createSystem", {"name": "ok", "metadata": [1]}, 400, ["metadata"]),
    ("createSystem", {"name": "ok", "metadata": "tier-1"}, 400, ["metadata"]),
    ("createSystem", {"name": "ok", "metadata": None}, 400, ["metadata"]),
    ("createSystem", {"name": "ok", "metadata": TOO_BIG}, 400, ["metadata"]),
    ("createSystem", {"name": "ok", "color": "red"}, 400, []),
    ("createSystem", {"name": "taken "}, 409, 'A system named "taken" already exists'),
    ("getSystem", {}, 400, []),
    ("getSystem", {"id": ""}, 400, ["id"]),
    ("getSystem", {"id": "unknown"}, 404, "System not found: unknown"),
    ("getSystems", {"groupId": 5}, 400, ["groupId"]),
    ("getSystems", {"groupId": "unknown"}, 404, "Group not found: unknown"),
    ("getSystems", {"group": "x"}, 400, []),
    ("getGroups", {"all": True}, 400, []),
    ("updateSystem", {}, 400, []),
    ("updateSystem", {"name": "x"}, 400, []),
    ("updateSystem", {"id": 5}, 400, ["id"]),
    ("updateSystem", {"id": ""}, 400, ["id"]),
    ("updateSystem", {"id": "unknown", "name": "x"}, 404, "System not found: unknown"),
    ("updateSystem", {"id": "$system", "name": None}, 400, ["name"]),
    ("updateSystem", {"id": "$system", "name": " "}, 400, ["name"]),
    ("updateSystem", {"id": "$system", "name": ["a"]}, 400, ["name"]),
    ("updateSystem", {"id": "$system", "description": 3}, 400, ["description"]),
    ("updateSystem", {"id": "$system", "metadata": None}, 400, ["metadata"]),
    ("updateSystem", {"id": "$system", "metadata": TOO_BIG}, 400, ["metadata"]),
    (
        "updateSystem",
        {"id": "$system", "name": "TAKEN"},
        409,
        'A system named "TAKEN" already exists',
    ),
    ("deleteSystem", {}, 400, []),
    ("deleteSystem", {"id": None}, 400, ["id"]),
    ("deleteSystem", {"id": []}, 400, ["id"]),
    ("deleteSystem", {"id": "unknown"}, 404, "System not found: unknown"),
    ("createGroup", {}, 400, []),
    ("createGroup", {"name": None}, 400, ["name"]),
    ("createGroup", {"name": "\t"}, 400, ["name"]),
    ("createGroup", {"name": "ok", "metadata": [1]}, 400, ["metadata"]),
    ("createGroup", {"name": "ok", "metadata": TOO_BIG}, 400, ["metadata"]),
    ("createGroup", {"name": "Taken"}, 409, 'A group named "Taken" already exists'),
    ("updateGroup", {}, 400, []),
    ("updateGroup", {"id": "unknown"}, 404, "Group not found: unknown"),
    ("updateGroup", {"id": "$group", "name": ""}, 400, ["name"]),
    ("updateGroup", {"id": "$group", "description": False}, 400, ["description"]),
    ("updateGroup", {"id": "$group", "name": "taken"}, 409, 'A group named "taken" already exists'),
    ("deleteGroup", {}, 400, []),
    ("deleteGroup", {"id": 1}, 400, ["id"]),
    ("deleteGroup", {"id": "unknown"}, 404, "Group not found: unknown"),
    ("addSystemToGroup", {}, 400, []),
    ("addSystemToGroup", {"groupId": "$group"}, 400, []),
    ("addSystemToGroup", {"groupId": 1, "systemId": 2}, 400, ["groupId"]),
    (
        "addSystemToGroup",
        {"groupId": "unknown", "systemId": "$system"},
        404,
        "Group not found: unknown",
    ),
    (
        "addSystemToGroup",
        {"groupId": "$group", "systemId": "unknown"},
        404,
        "System not found: unknown",
    ),
    ("removeSystemFromGroup", {"systemId": "$system"}, 400, []),
    (
        "removeSystemFromGroup",
        {"groupId": "unknown", "systemId": "$system"},
        404,
        "Group not found: unknown",
    ),
    (
        "removeSystemFromGroup",
        {"groupId": "$group", "systemId": "unknown"},
        404,
        "System not found: unknown",
    ),
]

CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT"}


@pytest.fixture
async def existing(manager) -> dict[str, str]:
    system = await manager.call("catalog", "createSystem", {"name": "Existing"})
    group = await manager.call("catalog", "createGroup", {"name": "Existing"})
    await manager.call("catalog", "createSystem", {"name": "Taken"})
    await manager.call("catalog", "createGroup", {"name": "Taken"})
    return {"$system": system["id"], "$group": group["id"]}


def substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    return ids.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize(
    ("procedure", "input", "status", "expected"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
async def test_invalid_input_is_a_clear_error(
    procedure, input, status, expected, existing, checkstack_http, checkstack_auth
):
    caller = checkstack_auth.user("catalog.catalog.manage")
    response = await checkstack_http.post(
        "/api/catalog/", json={procedure: substitute(input, existing)}, headers=caller.headers
    )
    body = response.json()
    assert response.status_code == status, body
    assert set(body) <= {"code", "message", "procedure", "data"}
    assert body["code"] == CODES[status]
    assert body["procedure"] == procedure
    if status == 400:
        assert body["message"] == "Input validation failed"
        [issue] = body["data"]["issues"]
        assert set(issue) == {"message", "path"}
        assert issue["message"]
        assert issue["path"] == expected
    else:
        assert body["message"] == expected


async def test_metadata_just_under_the_limit_is_accepted(manager):
    payload = {"blob": "x" * (16 * 1024 - len('{"blob":""}'))}
    created = await manager.call("catalog", "createSystem", {"name": "Big", "metadata": payload})
    assert created["metadata"] == payload


async def test_names_of_200_characters_are_accepted(manager):
    name = "n" * 200
    assert (await manager.call("catalog", "createSystem", {"name": name}))["name"] == name
