"""The maintenance admin pages, in process: schedule from the form (times read as UTC), post an
update, cancel, delete after a confirmation; a bad window is refused with the API's message
next to the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ORIGIN = {"Origin": "http://testserver"}


async def test_window_lifecycle_from_the_admin_pages(checkstack_http, admin_caller):
    headers = {**ORIGIN, **admin_caller.headers}
    created_system = await checkstack_http.post(
        "/api/catalog/", json={"createSystem": {"name": "Billing"}}, headers=admin_caller.headers
    )
    system = created_system.json()["createSystem"]["id"]
    start = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    scheduled = await checkstack_http.post(
        "/maintenance/manage",
        data={
            "title": "Ledger migration",
            "startAt": start.strftime("%Y-%m-%dT%H:%M"),
            "endAt": (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
            "systemId": system,
        },
        headers=headers,
    )
    assert scheduled.status_code == 303, scheduled.text
    path = scheduled.headers["location"]
    window_id = path.rsplit("/", 1)[1]
    stored = await checkstack_http.post(
        "/api/maintenance/", json={"getWindow": {"id": window_id}}, headers=admin_caller.headers
    )
    window = stored.json()["getWindow"]
    assert datetime.fromisoformat(window["startAt"]) == start  # the form's time is UTC
    assert window["systemIds"] == [system]

    update = await checkstack_http.post(
        path, data={"message": "Runbook reviewed."}, headers=headers
    )
    assert update.status_code == 303
    later = start + timedelta(days=1)
    edited = await checkstack_http.post(
        path,
        data={
            "action": "edit",
            "title": "Ledger migration, part 1",
            "startAt": later.strftime("%Y-%m-%dT%H:%M"),
            "endAt": (later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "systemId": system,
        },
        headers=headers,
    )
    assert edited.status_code == 303, edited.text
    window = (
        await checkstack_http.post(
            "/api/maintenance/", json={"getWindow": {"id": window_id}}, headers=admin_caller.headers
        )
    ).json()["getWindow"]
    assert datetime.fromisoformat(window["startAt"]) == later
    public = await checkstack_http.get("/")
    assert "Ledger migration, part 1" in public.text and "Upcoming" in public.text
    window_page = await checkstack_http.get(path, headers=admin_caller.headers)
    assert f'href="{path}/cancel"' in window_page.text  # a link to a question, not a button
    question = await checkstack_http.get(f"{path}/cancel", headers=admin_caller.headers)
    assert "Cancel the maintenance “Ledger migration, part 1”?" in question.text
    still = await checkstack_http.get(path, headers=admin_caller.headers)
    assert 'class="badge cancelled">Cancelled' not in still.text
    cancelled = await checkstack_http.post(f"{path}/cancel", headers=headers)
    assert cancelled.status_code == 303
    page = await checkstack_http.get(path, headers=admin_caller.headers)
    assert 'class="badge cancelled">Cancelled' in page.text
    assert "Runbook reviewed." in page.text
    deleted = await checkstack_http.post(f"{path}/delete", headers=headers)
    assert deleted.status_code == 303
    listing = await checkstack_http.get("/maintenance/manage", headers=admin_caller.headers)
    assert "Ledger migration" not in listing.text


async def test_end_before_start_is_refused_next_to_the_form(checkstack_http, admin_caller):
    created_system = await checkstack_http.post(
        "/api/catalog/", json={"createSystem": {"name": "Billing"}}, headers=admin_caller.headers
    )
    system = created_system.json()["createSystem"]["id"]
    response = await checkstack_http.post(
        "/maintenance/manage",
        data={
            "title": "Backwards",
            "startAt": "2030-01-02T10:00",
            "endAt": "2030-01-01T10:00",
            "systemId": system,
        },
        headers={**ORIGIN, **admin_caller.headers},
    )
    assert response.status_code == 400
    assert 'class="alert alert-error" role="alert"' in response.text
    assert 'value="Backwards"' in response.text
