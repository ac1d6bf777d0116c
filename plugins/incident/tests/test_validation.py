"""Invalid input for every procedure is a 400, 404 or 409 in the documented shape, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

SYSTEM = "{system}"
INCIDENT = "{incident}"
RESOLVED = "{resolved}"

CASES: list[tuple[str, Any, int, str]] = [
    # createIncident
    ("createIncident", {}, 400, "Object missing required field `title`"),
    ("createIncident", {"title": "t", "systemIds": [SYSTEM]}, 400, "`severity`"),
    ("createIncident", {"title": "t", "severity": "minor"}, 400, "`systemIds`"),
    ("createIncident", {"title": "t", "severity": "minor", "systemIds": []}, 400, "length >= 1"),
    ("createIncident", {"title": "", "severity": "minor", "systemIds": [SYSTEM]}, 400, "length"),
    ("createIncident", {"title": "   ", "severity": "minor", "systemIds": [SYSTEM]}, 400, "blank"),
    ("createIncident", {"title": "x" * 201, "severity": "minor", "systemIds": [SYSTEM]}, 400, ""),
    ("createIncident", {"title": 5, "severity": "minor", "systemIds": [SYSTEM]}, 400, "`str`"),
    ("createIncident", {"title": "t", "severity": "huge", "systemIds": [SYSTEM]}, 400, "enum"),
    ("createIncident", {"title": "t", "severity": "minor", "systemIds": SYSTEM}, 400, "array"),
    ("createIncident", {"title": "t", "severity": "minor", "systemIds": [""]}, 400, "length"),
    ("createIncident", {"title": "t", "severity": "minor", "systemIds": [1]}, 400, "`str`"),
    (
        "createIncident",
        {"title": "t", "severity": "minor", "systemIds": [SYSTEM], "status": "resolved"},
        400,
        "enum",
    ),
    (
        "createIncident",
        {"title": "t", "severity": "minor", "systemIds": [SYSTEM], "message": " "},
        400,
        "blank",
    ),
    (
        "createIncident",
        {"title": "t", "severity": "minor", "systemIds": [SYSTEM], "colour": "red"},
        400,
        "unknown field `colour`",
    ),
    (
        "createIncident",
        {"title": "t", "severity": "minor", "systemIds": [SYSTEM, "no-such-system"]},
        404,
        "System not found: no-such-system",
    ),
    ("createIncident", [], 400, "object"),
    # updateIncident
    ("updateIncident", {"title": "x"}, 400, "`id`"),
    ("updateIncident", {"id": "no-such-incident"}, 404, "Incident not found: no-such-incident"),
    ("updateIncident", {"id": INCIDENT, "title": None}, 400, "`str`"),
    ("updateIncident", {"id": INCIDENT, "title": "  "}, 400, "blank"),
    ("updateIncident", {"id": INCIDENT, "severity": "none"}, 400, "enum"),
    ("updateIncident", {"id": INCIDENT, "systemIds": []}, 400, "length >= 1"),
    ("updateIncident", {"id": INCIDENT, "systemIds": ["nope"]}, 404, "System not found: nope"),
    ("updateIncident", {"id": INCIDENT, "suppressNotifications": "yes"}, 400, "`bool`"),
    ("updateIncident", {"id": INCIDENT, "status": "resolved"}, 400, "unknown field `status`"),
    # addUpdate
    ("addUpdate", {"id": INCIDENT}, 400, "`message`"),
    ("addUpdate", {"id": INCIDENT, "message": ""}, 400, "length"),
    ("addUpdate", {"id": INCIDENT, "message": "\n"}, 400, "blank"),
    ("addUpdate", {"id": INCIDENT, "message": "m", "status": "fixing"}, 400, "enum"),
    ("addUpdate", {"id": "no-such-incident", "message": "m"}, 404, "Incident not found"),
    # resolveIncident
    ("resolveIncident", {}, 400, "`id`"),
    ("resolveIncident", {"id": "no-such-incident"}, 404, "Incident not found"),
    ("resolveIncident", {"id": RESOLVED}, 409, "Incident already resolved"),
    ("resolveIncident", {"id": INCIDENT, "message": ""}, 400, "length"),
    # deleteIncident
    ("deleteIncident", {}, 400, "`id`"),
    ("deleteIncident", {"id": 7}, 400, "`str`"),
    ("deleteIncident", {"id": "no-such-incident"}, 404, "Incident not found"),
    # reads
    ("getIncident", {"id": "no-such-incident"}, 404, "Incident not found"),
    ("getIncident", {"id": INCIDENT, "timelineLimit": 0}, 400, ">= 1"),
    ("getIncident", {"id": INCIDENT, "timelineLimit": 501}, 400, "<= 500"),
    ("getIncident", {"id": INCIDENT, "timelineOffset": -1}, 400, ">= 0"),
    ("getIncidents", {"limit": 0}, 400, ">= 1"),
    ("getIncidents", {"limit": 201}, 400, "<= 200"),
    ("getIncidents", {"offset": -1}, 400, ">= 0"),
    ("getIncidents", {"offset": 2**63}, 400, ""),
    ("getIncidents", {"status": "closed"}, 400, "enum"),
    ("getIncidents", {"status": []}, 400, "length >= 1"),
    ("getIncidents", {"severity": ["minor", "tiny"]}, 400, "enum"),
    ("getIncidents", {"includeResolved": "no"}, 400, "`bool`"),
]


@pytest.mark.parametrize(
    ("procedure", "body", "status", "message"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
async def test_invalid_input(
    procedure,
    body,
    status,
    message,
    make_system,
    make_incident,
    admin,
    admin_caller,
    checkstack_http,
):
    system = await make_system("Site")
    incident = await make_incident([system])
    resolved = await make_incident([system])
    await admin.call("incident", "resolveIncident", {"id": resolved["id"]})
    names = {SYSTEM: system, INCIDENT: incident["id"], RESOLVED: resolved["id"]}

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return names.get(value, value) if isinstance(value, str) else value

    response = await checkstack_http.post(
        "/api/incident/", json={procedure: fill(body)}, headers=admin_caller.headers
    )
    assert response.status_code == status, response.text
    error = response.json()
    code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT"}[status]
    assert error["code"] == code
    assert error["procedure"] == procedure
    if status == 400 and error["message"] == "Input validation failed":
        issues = error["data"]["issues"]
        assert issues and all({"message", "path"} <= set(i) for i in issues)
        assert any(message in i["message"] for i in issues), issues
    else:
        assert message in error["message"]
