"""The catalog with the real auth plugin: API keys, team grants from the database, grants dropped
with their system, and the documented flow against real server processes with a CLI-made key."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from checkstack_core import Forbidden, NotFound
from checkstack_core.client import CheckstackClient

pytest.importorskip("checkstack_auth")

MANAGE = "catalog.catalog.manage"
SYSTEM = "catalog.system"
SECRET_KEY = "catalog-e2e-key-not-for-production"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_auth import plugin as auth
    from checkstack_catalog import plugin as catalog

    return [auth, catalog]


_made = itertools.count(1)


async def _app(host: Any, *rules: str, teams: tuple[str, ...] = ()) -> dict[str, str]:
    """Headers of a new application holding ``rules`` and belonging to ``teams``."""
    from checkstack_auth import service

    number = next(_made)
    async with host.service_context("auth") as ctx:
        roles = [(await service.create_role(ctx, f"role {number}", "", rules)).id] if rules else []
        _, token = await service.create_application(ctx, f"app {number}", roles=roles, teams=teams)
    return {"Authorization": f"Bearer {token}"}


async def test_deleting_a_system_drops_its_team_grants(checkstack_host, checkstack_http):
    from checkstack_auth import service
    from checkstack_auth.models import ResourceGrant, ResourceSettings
    from sqlmodel import select

    async with checkstack_host.service_context("auth") as ctx:
        team = (await service.create_team(ctx, "owners", "")).id
    admin = await _app(checkstack_host, MANAGE)
    member = await _app(checkstack_host, teams=(team,))
    outsider = await _app(checkstack_host, MANAGE)

    async def call(headers: dict[str, str], procedure: str, input: Any) -> httpx.Response:
        return await checkstack_http.post("/api/catalog/", json={procedure: input}, headers=headers)

    created = (await call(admin, "createSystem", {"name": "Vault"})).json()["createSystem"]
    kept = (await call(admin, "createSystem", {"name": "Kept"})).json()["createSystem"]
    async with checkstack_host.service_context("auth") as ctx:
        for system in (created, kept):
            await service.grant(ctx, team, SYSTEM, system["id"], "manage")
            await service.set_team_only(ctx, SYSTEM, system["id"], True)

    listed = (await call(outsider, "getSystems", {})).json()["getSystems"]["systems"]
    assert listed == []
    denied = await call(outsider, "deleteSystem", {"id": created["id"]})
    assert denied.json()["message"] == f"Access denied to catalog.system {created['id']}"
    names = [
        s["name"] for s in (await call(member, "getSystems", {})).json()["getSystems"]["systems"]
    ]
    assert names == ["Kept", "Vault"]

    deleted = await call(member, "deleteSystem", {"id": created["id"]})
    assert deleted.json() == {"deleteSystem": {"id": created["id"]}}

    async with checkstack_host.db.session() as session:
        left = {
            (row.resource_id, type(row).__name__)
            for model in (ResourceGrant, ResourceSettings)
            for row in (await session.exec(select(model))).all()
        }
    assert left == {(kept["id"], "ResourceGrant"), (kept["id"], "ResourceSettings")}


# -- end to end -----------------------------------------------------------------------------------


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "auth,catalog",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }


def checkstack(database_url: str, env: dict[str, str], *args: str) -> str:
    """Run the ``checkstack`` CLI against the server's database; its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "checkstack_core", *args],
        env={**os.environ, **env, "CHECKSTACK_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.e2e
def test_documented_calls_with_an_api_key(
    checkstack_server, checkstack_database_url, checkstack_server_env
):
    url = checkstack_server.url

    def cli(*args: str) -> str:
        return checkstack(checkstack_database_url, checkstack_server_env, *args)

    cli("roles", "create", "catalog-editors", "--rule", MANAGE)
    editor = json.loads(cli("apps", "create", "ci", "--role", "catalog-editors", "--json"))
    reader = json.loads(cli("apps", "create", "dashboard", "--json"))

    with CheckstackClient(url, editor["token"]) as client:
        system = client.call(
            "catalog", "createSystem", {"name": "Checkout", "description": "Web shop"}
        )
        group = client.call("catalog", "createGroup", {"name": "Shop"})
        client.call(
            "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
        )
        cleared = client.call("catalog", "updateSystem", {"id": system["id"], "description": None})
        assert cleared["description"] is None
        batch = client.batch("catalog", {"getSystems": {}, "getGroups": {}})

    assert [s["name"] for s in batch["getSystems"]["systems"]] == ["Checkout"]
    assert batch["getGroups"]["groups"][0]["systemIds"] == [system["id"]]

    # The same call as documented with curl, and its oRPC twin, anonymously.
    documented = httpx.post(f"{url}/api/catalog/", json={"getSystems": {}}, timeout=10)
    assert documented.json() == {"getSystems": batch["getSystems"]}
    twin = httpx.post(f"{url}/api/catalog/getSystems", json={"json": {}}, timeout=10)
    assert twin.json()["json"] == batch["getSystems"]

    with CheckstackClient(url, reader["token"]) as client:
        assert client.call("catalog", "getSystems") == batch["getSystems"]
        with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.manage"):
            client.call("catalog", "createSystem", {"name": "Sneaky"})

    with CheckstackClient(url, editor["token"]) as client:
        assert client.call("catalog", "deleteSystem", {"id": system["id"]}) == {"id": system["id"]}
        with pytest.raises(NotFound, match=f"System not found: {system['id']}"):
            client.call("catalog", "getSystem", {"id": system["id"]})
        assert client.call("catalog", "getGroups")["groups"][0]["systemIds"] == []
