"""The documented calls over both protocols, in process and against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
async def seeded(manager) -> dict[str, Any]:
    api = await manager.call("catalog", "createSystem", {"name": "API", "description": "Public"})
    group = await manager.call("catalog", "createGroup", {"name": "Production"})
    await manager.call(
        "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": api["id"]}
    )
    return {"system": api["id"], "group": group["id"]}


async def test_documented_get_systems(seeded, checkstack_http):
    response = await checkstack_http.post("/api/catalog/", json={"getSystems": {}})
    assert response.status_code == 200
    [system] = response.json()["getSystems"]["systems"]
    assert set(system) == {
        "id",
        "name",
        "description",
        "metadata",
        "groupIds",
        "createdAt",
        "updatedAt",
    }
    assert system["id"] == seeded["system"]
    assert system["groupIds"] == [seeded["group"]]


async def test_documented_batch(seeded, checkstack_http):
    response = await checkstack_http.post("/api/catalog", json={"getSystems": {}, "getGroups": {}})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["getSystems", "getGroups"]
    assert [s["name"] for s in body["getSystems"]["systems"]] == ["API"]
    [group] = body["getGroups"]["groups"]
    assert group["name"] == "Production"
    assert group["systemIds"] == [seeded["system"]]


async def test_the_python_client_batch(seeded, anonymous):
    body = await anonymous.batch("catalog", {"getSystems": {}, "getGroups": None})
    assert [s["name"] for s in body["getSystems"]["systems"]] == ["API"]
    assert [g["name"] for g in body["getGroups"]["groups"]] == ["Production"]


async def test_the_orpc_twin_returns_the_same_data(seeded, checkstack_http):
    documented = (await checkstack_http.post("/api/catalog/", json={"getSystems": {}})).json()
    response = await checkstack_http.post("/api/catalog/getSystems", json={"json": {}})
    assert response.status_code == 200
    body = response.json()
    assert body["json"] == documented["getSystems"]
    # Dates are marked (type code 1) so the oRPC client revives them as Date objects.
    assert sorted(body["meta"]) == [[1, "systems", 0, "createdAt"], [1, "systems", 0, "updatedAt"]]

    groups = await checkstack_http.post("/api/catalog/getGroups", json={"json": None})
    assert groups.status_code == 200
    assert groups.json()["json"]["groups"][0]["systemIds"] == [seeded["system"]]


async def test_orpc_errors_have_the_orpc_shape(checkstack_http, checkstack_auth):
    response = await checkstack_http.post(
        "/api/catalog/createSystem",
        json={"json": {"name": "X"}},
        headers=checkstack_auth.user().headers,
    )
    assert response.status_code == 403
    assert response.json() == {
        "json": {
            "defined": False,
            "code": "FORBIDDEN",
            "status": 403,
            "message": "Missing access: catalog.catalog.manage",
            "data": {},
        },
        "meta": [],
    }


# -- end to end: a real server process ------------------------------------------------------------


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    """Serve only the catalog, and refuse to start if it cannot load."""
    return {"CHECKSTACK_PLUGINS": "catalog", "CHECKSTACK_STRICT_PLUGINS": "1"}


@pytest.mark.e2e
def test_a_real_server_serves_the_catalog(checkstack_server):
    url = checkstack_server.url
    documented = httpx.post(f"{url}/api/catalog/", json={"getSystems": {}}, timeout=10)
    assert documented.status_code == 200
    assert documented.json() == {"getSystems": {"systems": []}}
    batch = httpx.post(f"{url}/api/catalog/", json={"getSystems": {}, "getGroups": {}}, timeout=10)
    assert batch.json() == {"getSystems": {"systems": []}, "getGroups": {"groups": []}}
    orpc = httpx.post(f"{url}/api/catalog/getSystems", json={"json": {}}, timeout=10)
    assert orpc.json() == {"json": {"systems": []}, "meta": []}
    # Without the auth plugin nobody can hold catalog.manage: guests must authenticate.
    denied = httpx.post(f"{url}/api/catalog/", json={"createSystem": {"name": "X"}}, timeout=10)
    assert denied.status_code == 401


async def test_the_contract_is_in_the_openapi_document(checkstack_http):
    from openapi_spec_validator import validate

    document = (await checkstack_http.get("/api/openapi.json")).json()
    validate(document)
    update = document["components"]["schemas"]["SystemUpdate"]
    assert update["required"] == ["id"]  # name, description and metadata may be left out
    assert {"type": "null"} in update["properties"]["description"]["anyOf"]
