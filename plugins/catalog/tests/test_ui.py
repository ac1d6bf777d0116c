"""The catalog admin page, in process: create systems and groups, group and ungroup, delete
after a confirmation, a duplicate shown with the API's message; and the status page's system
page."""

from __future__ import annotations

ORIGIN = {"Origin": "http://testserver"}


async def test_catalog_admin_page(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin(name="Ada Admin")
    headers = {**ORIGIN, **admin.headers}

    async def post(**data: str) -> int:
        response = await checkstack_http.post("/catalog/manage", data=data, headers=headers)
        return response.status_code

    assert await post(action="createSystem", name="Gateway", description="Edge proxy") == 303
    assert await post(action="createSystem", name="Ledger") == 303
    assert await post(action="createGroup", name="Payments") == 303
    api = await checkstack_http.post(
        "/api/catalog/", json={"getSystems": {}, "getGroups": {}}, headers=admin.headers
    )
    systems = {s["name"]: s["id"] for s in api.json()["getSystems"]["systems"]}
    group = api.json()["getGroups"]["groups"][0]["id"]
    assert await post(action="addSystemToGroup", groupId=group, systemId=systems["Ledger"]) == 303
    public = (await checkstack_http.get("/")).text
    payments = public[public.index(">Payments") :]
    assert "Ledger" in payments[: payments.index("</ul>")]

    page = await checkstack_http.get("/catalog/manage", headers=admin.headers)
    assert "Edge proxy" in page.text
    assert (
        await post(action="removeSystemFromGroup", groupId=group, systemId=systems["Ledger"]) == 303
    )
    confirm = await checkstack_http.get(
        f"/catalog/manage/systems/{systems['Gateway']}/delete", headers=admin.headers
    )
    assert "Delete the system “Gateway”?" in confirm.text
    deleted = await checkstack_http.post(
        f"/catalog/manage/systems/{systems['Gateway']}/delete", headers=headers
    )
    assert deleted.status_code == 303
    system_page = await checkstack_http.get(f"/systems/{systems['Gateway']}")
    assert system_page.status_code == 404
    assert "System not found" in system_page.text
    assert await post(action="createSystem", name="") == 400


async def test_catalog_page_refuses_without_the_rule(checkstack_http, checkstack_auth):
    reader = checkstack_auth.user("catalog.catalog.read")
    response = await checkstack_http.post(
        "/catalog/manage",
        data={"action": "createSystem", "name": "Sneaky"},
        headers={**ORIGIN, **reader.headers},
    )
    assert response.status_code == 403
    assert "Missing access: catalog.catalog.manage" in response.text
    nav = await checkstack_http.get("/", headers=reader.headers)
    assert 'href="/catalog/manage"' not in nav.text


async def test_systems_and_groups_are_edited_on_their_own_pages(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin(name="Ada Admin")
    headers = {**ORIGIN, **admin.headers}
    created = await checkstack_http.post(
        "/api/catalog/",
        json={"createSystem": {"name": "Gateway"}, "createGroup": {"name": "Edge"}},
        headers=admin.headers,
    )
    system = created.json()["createSystem"]["id"]
    group = created.json()["createGroup"]["id"]
    await checkstack_http.post(
        "/api/catalog/", json={"createSystem": {"name": "Ledger"}}, headers=admin.headers
    )
    form = await checkstack_http.get(f"/catalog/manage/systems/{system}", headers=admin.headers)
    assert 'value="Gateway"' in form.text
    saved = await checkstack_http.post(
        f"/catalog/manage/systems/{system}",
        data={"name": "API gateway", "description": "Edge proxy"},
        headers=headers,
    )
    assert saved.status_code == 303
    taken = await checkstack_http.post(
        f"/catalog/manage/systems/{system}", data={"name": "ledger"}, headers=headers
    )
    assert taken.status_code == 409 and 'value="ledger"' in taken.text  # what was typed stays
    assert 'class="alert alert-error"' in taken.text
    renamed = await checkstack_http.post(
        f"/catalog/manage/groups/{group}", data={"name": "Edge network"}, headers=headers
    )
    assert renamed.status_code == 303
    page = await checkstack_http.get("/catalog/manage", headers=admin.headers)
    assert "API gateway" in page.text and "Edge proxy" in page.text
    assert "Edge network" in page.text
