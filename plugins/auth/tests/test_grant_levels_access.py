"""Grant levels through the real auth plugin (SPEC §5.5): a *read* grant never admits a manage
call, whether or not the caller also holds the global rule, on team-only and on open resources.

The same cases run against ``MemoryAuth`` in tests/test_access.py; these use the product's own
backend (its SQL decides), with teams, grants and callers made through HTTP.
"""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_hello import plugin as hello_plugin

from . import vault_plugin
from .vault_plugin import ITEM

READ = "vault.item.read"
MANAGE = "vault.item.manage"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [auth_plugin, hello_plugin, vault_plugin.plugin]


async def _ok(response: Any, procedure: str) -> Any:
    assert response.status_code == 200, response.text
    return response.json()[procedure]


@pytest.fixture
async def world(rpc, principals) -> dict[str, Any]:
    """Item ``a`` (team-only) and ``b`` (open); team ``ops`` holds a READ grant on both."""
    admin = await principals.admin()
    for item in ("a", "b"):
        await _ok(await rpc("vault", "createItem", {"id": item, "name": item}, admin), "createItem")
    ops = (await _ok(await rpc("auth", "createTeam", {"name": "ops"}, admin), "createTeam"))["id"]
    for item in ("a", "b"):
        grant = {"teamId": ops, "resourceType": ITEM, "resourceId": item, "level": "read"}
        await _ok(await rpc("auth", "grantTeamAccess", grant, admin), "grantTeamAccess")
    only = {"resourceType": ITEM, "resourceId": "a", "teamOnly": True}
    await _ok(await rpc("auth", "setTeamOnly", only, admin), "setTeamOnly")
    return {"admin": admin, "ops": ops}


async def _update(rpc, caller, item: str) -> Any:
    return await rpc("vault", "updateItem", {"id": item, "name": "changed"}, caller)


@pytest.mark.parametrize("kind", ["app", "user"])
async def test_a_read_grant_does_not_let_a_global_manager_manage_a_team_only_resource(
    rpc, principals, world, kind
):
    make = principals.app if kind == "app" else principals.user
    member = await make(MANAGE, teams=(world["ops"],))
    denied = await _update(rpc, member, "a")
    assert denied.status_code == 403, denied.text
    assert denied.json()["message"] == "Access denied to vault.item a"
    # It may read it (the read grant) and manage the open item (the global rule).
    assert (await rpc("vault", "getItem", {"id": "a"}, member)).status_code == 200
    assert (await _update(rpc, member, "b")).status_code == 200


async def test_a_read_grant_alone_does_not_admit_a_manage_call(rpc, principals, world):
    member = await principals.app(teams=(world["ops"],))
    for item in ("a", "b"):
        denied = await _update(rpc, member, item)
        assert denied.status_code == 403, denied.text
        assert denied.json()["message"] == "Missing access: vault.item.manage"


async def test_a_manage_grant_admits_both_levels(rpc, principals, world):
    grant = {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "a", "level": "manage"}
    await _ok(await rpc("auth", "grantTeamAccess", grant, world["admin"]), "grantTeamAccess")
    member = await principals.app(teams=(world["ops"],))
    global_member = await principals.app(MANAGE, teams=(world["ops"],))
    for caller in (member, global_member):
        assert (await _update(rpc, caller, "a")).status_code == 200
        assert (await rpc("vault", "getItem", {"id": "a"}, caller)).status_code == 200
    # A global manager outside the team stays shut out of the team-only item.
    outsider = await principals.app(MANAGE, READ)
    assert (await _update(rpc, outsider, "a")).status_code == 403
    assert (await rpc("vault", "getItem", {"id": "a"}, outsider)).status_code == 403
