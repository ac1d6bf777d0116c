"""Target-relative authorization checks every name an input holds, not only the first: a list of
roles or teams where only a later entry holds more than the caller is refused all the same
(mutation testing found the first-only break unnoticed, see docs/mutation-report.md)."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_auth import service
from checkstack_hello import plugin as hello_plugin

from . import locker_plugin, vault_plugin

KEYS = "auth.applications.manage"
USERS = "auth.users.manage"
MANAGE = "hello.hello.manage"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [auth_plugin, hello_plugin, vault_plugin.plugin]


async def test_a_bigger_role_after_a_harmless_one_is_still_refused(rpc, principals):
    manager = await principals.user(USERS)
    harmless = await principals.role()
    async with principals.ctx() as ctx:
        bigger = await service.create_role(ctx, "greeters", "", [MANAGE])
    user = await principals.user()
    response = await rpc(
        "auth", "setUserRoles", {"id": user.id, "roles": [harmless, bigger.id]}, manager
    )
    assert response.status_code == 403, response.text
    assert response.json()["message"] == (
        f"You cannot grant role greeters: it holds access rules you do not hold: {MANAGE}"
    )
    # Either order: the harmless role alone is fine.
    alone = await rpc("auth", "setUserRoles", {"id": user.id, "roles": [harmless]}, manager)
    assert alone.status_code == 200, alone.text


async def test_a_granting_team_after_an_empty_one_is_still_refused(rpc, principals):
    async with principals.ctx() as ctx:
        granting = (await service.create_team(ctx, "vaulters", "")).id
        await service.grant(ctx, granting, vault_plugin.ITEM, "secret-item", "manage")
    empty = await principals.team("empty")
    key_manager = await principals.app(KEYS, "auth.teams.manage")
    response = await rpc(
        "auth", "createApplication", {"name": "x", "teams": [empty, granting]}, key_manager
    )
    assert response.status_code == 403, response.text
    assert response.json()["message"] == (
        f"You cannot manage team {granting}: it grants access you do not hold: vault.item (manage)"
    )
    fine = await rpc("auth", "createApplication", {"name": "y", "teams": [empty]}, key_manager)
    assert fine.status_code == 200, fine.text


async def test_an_unknown_team_does_not_hide_the_next_one(rpc, principals):
    """An id that names no team is left to the handler, but the check goes on to the next."""
    async with principals.ctx() as ctx:
        granting = (await service.create_team(ctx, "vaulters", "")).id
        await service.grant(ctx, granting, vault_plugin.ITEM, "secret-item", "manage")
    key_manager = await principals.app(KEYS, "auth.teams.manage")
    response = await rpc(
        "auth", "createApplication", {"name": "x", "teams": ["no-such-team", granting]}, key_manager
    )
    assert response.status_code == 403, response.text
    assert response.json()["message"] == (
        f"You cannot manage team {granting}: it grants access you do not hold: vault.item (manage)"
    )


TEAMS = "auth.teams.manage"


async def _team_granting(principals: Any, *grants: tuple[str, str, str]) -> str:
    async with principals.ctx() as ctx:
        team = (await service.create_team(ctx, "granting", "")).id
        for resource_type, resource_id, level in grants:
            await service.grant(ctx, team, resource_type, resource_id, level)
    return team


@pytest.mark.parametrize("checkstack_plugins", [[auth_plugin, locker_plugin.plugin]])
async def test_a_grant_is_checked_against_the_rule_that_guards_its_type(rpc, principals):
    """``locker.crate`` is guarded by ``locker.box.read``: holding that rule is holding the grant
    (a rule guessed from the type's name, ``locker.crate.read``, exists nowhere)."""
    empty = await principals.team("empty")
    give = {"teamId": empty, "resourceType": locker_plugin.CRATE, "resourceId": "c1"}
    holder = await principals.app(TEAMS, locker_plugin.READ)
    granted = await rpc("auth", "grantTeamAccess", {**give, "level": "read"}, holder)
    assert granted.status_code == 200, granted.text
    outsider = await principals.app(TEAMS)
    other = {**give, "teamId": await principals.team("other"), "level": "read"}
    denied = await rpc("auth", "grantTeamAccess", other, outsider)
    assert denied.status_code == 403, denied.text
    assert denied.json()["message"] == (
        "You cannot grant access you do not hold: locker.crate c1 (read)"
    )


@pytest.mark.parametrize(
    "checkstack_plugins", [[auth_plugin, vault_plugin.plugin, locker_plugin.plugin]]
)
async def test_every_grant_of_a_team_counts_not_only_the_first_kind(rpc, principals):
    # Checked in (type, level) order: the crate grant, which the caller holds, comes first.
    team = await _team_granting(
        principals, (locker_plugin.CRATE, "c1", "read"), (vault_plugin.ITEM, "v1", "read")
    )
    caller = await principals.app(TEAMS, locker_plugin.READ)
    outsider = await principals.app()
    join = await rpc("auth", "addTeamMember", {"id": team, "applicationId": outsider.id}, caller)
    assert join.status_code == 403, join.text
    assert join.json()["message"] == (
        f"You cannot manage team {team}: it grants access you do not hold: vault.item (read)"
    )


async def test_every_grant_of_a_team_counts_not_only_the_first_resource(rpc, principals):
    # v2 is team-only: holding vault.item.read globally does not admit to it, v1 it does.
    team = await _team_granting(
        principals, (vault_plugin.ITEM, "v1", "read"), (vault_plugin.ITEM, "v2", "read")
    )
    async with principals.ctx() as ctx:
        await service.set_team_only(ctx, vault_plugin.ITEM, "v2", True)
    caller = await principals.app(TEAMS, vault_plugin.read.qualified_id("vault"))
    outsider = await principals.app()
    join = await rpc("auth", "addTeamMember", {"id": team, "applicationId": outsider.id}, caller)
    assert join.status_code == 403, join.text
    assert join.json()["message"] == (
        f"You cannot manage team {team}: it grants access you do not hold: vault.item (read)"
    )
