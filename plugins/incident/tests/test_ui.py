"""The incident admin pages, in process: create an incident from the form, post updates that
change its status, resolve it, page through the list, delete after a confirmation; validation
errors next to the fields; a caller without the rule gets the API's refusal."""

from __future__ import annotations

import re
from typing import Any

import httpx

ORIGIN = {"Origin": "http://testserver"}


async def make_system(http: httpx.AsyncClient, admin: Any, name: str) -> str:
    response = await http.post(
        "/api/catalog/", json={"createSystem": {"name": name}}, headers=admin.headers
    )
    return str(response.json()["createSystem"]["id"])


async def test_incident_lifecycle_from_the_admin_pages(checkstack_http, admin_caller):
    headers = {**ORIGIN, **admin_caller.headers}
    system = await make_system(checkstack_http, admin_caller, "Checkout")
    listing = await checkstack_http.get("/incidents/manage", headers=admin_caller.headers)
    assert listing.status_code == 200 and "Create Incident" in listing.text
    assert f'value="{system}"' in listing.text  # the systems to tick

    created = await checkstack_http.post(
        "/incidents/manage",
        data={
            "title": "Checkout failing",
            "severity": "critical",
            "status": "investigating",
            "systemId": system,
            "message": "Looking into failed payments.",
        },
        headers=headers,
    )
    assert created.status_code == 303
    path = created.headers["location"]
    incident_id = path.rsplit("/", 1)[1]
    update = await checkstack_http.post(
        path, data={"message": "Payment provider down.", "status": "identified"}, headers=headers
    )
    assert update.status_code == 303
    resolved = await checkstack_http.post(
        path, data={"action": "resolve", "message": "Provider recovered."}, headers=headers
    )
    assert resolved.status_code == 303
    page = await checkstack_http.get(path, headers=admin_caller.headers)
    timeline = page.text[page.text.index("Timeline of") :]
    order = [
        timeline.index(t)
        for t in ("Provider recovered.", "Payment provider down.", "Looking into failed payments.")
    ]
    assert order == sorted(order)  # newest first
    assert 'class="badge resolved">Resolved' in page.text

    # Editing changes the incident's fields (no timeline entry); an emptied title is refused.
    edited = await checkstack_http.post(
        path,
        data={
            "action": "edit",
            "title": "Checkout degraded",
            "severity": "minor",
            "systemId": system,
        },
        headers=headers,
    )
    assert edited.status_code == 303
    blank = await checkstack_http.post(
        path,
        data={"action": "edit", "title": "", "severity": "minor", "systemId": system},
        headers=headers,
    )
    assert blank.status_code == 400 and 'id="f-title-error"' in blank.text
    stored = await checkstack_http.post(
        "/api/incident/", json={"getIncident": {"id": incident_id}}, headers=admin_caller.headers
    )
    assert stored.json()["getIncident"]["severity"] == "minor"
    assert len(stored.json()["getIncident"]["timeline"]) == 3

    # The public page now lists it in the history.
    public = await checkstack_http.get("/")
    assert "Past incidents" in public.text and "Checkout degraded" in public.text

    confirm = await checkstack_http.get(f"{path}/delete", headers=admin_caller.headers)
    assert "This cannot be undone." in confirm.text
    deleted = await checkstack_http.post(f"{path}/delete", headers=headers)
    assert deleted.status_code == 303
    gone = await checkstack_http.post(
        "/api/incident/", json={"getIncident": {"id": incident_id}}, headers=admin_caller.headers
    )
    assert gone.status_code == 404


async def test_validation_errors_show_next_to_the_fields(checkstack_http, admin_caller):
    response = await checkstack_http.post(
        "/incidents/manage",
        data={"title": "No systems", "severity": "minor"},
        headers={**ORIGIN, **admin_caller.headers},
    )
    assert response.status_code == 400
    assert re.search(r'<p class="field-error" id="systems-error">[^<]+</p>', response.text)
    assert 'value="No systems"' in response.text  # what was typed is kept


async def test_the_list_paginates(checkstack_http, admin_caller):
    system = await make_system(checkstack_http, admin_caller, "Search")
    for i in range(23):
        await checkstack_http.post(
            "/api/incident/",
            json={
                "createIncident": {
                    "title": f"Blip {i:02d}",
                    "severity": "minor",
                    "systemIds": [system],
                }
            },
            headers=admin_caller.headers,
        )
    first = await checkstack_http.get("/incidents/manage", headers=admin_caller.headers)
    assert "1\u201320 of 23" in first.text
    assert "Blip 22" in first.text and "Blip 02" not in first.text
    second = await checkstack_http.get(
        "/incidents/manage", params={"offset": "20"}, headers=admin_caller.headers
    )
    assert "21\u201323 of 23" in second.text and "Blip 00" in second.text


async def test_without_the_rule_the_page_shows_the_refusal(
    checkstack_http, checkstack_auth, admin_caller
):
    system = await make_system(checkstack_http, admin_caller, "Search")
    reader = checkstack_auth.user("incident.incident.read", "catalog.catalog.read")
    response = await checkstack_http.post(
        "/incidents/manage",
        data={"title": "x", "severity": "minor", "systemId": system},
        headers={**ORIGIN, **reader.headers},
    )
    assert response.status_code == 403
    assert "Missing access: incident.incident.manage" in response.text
