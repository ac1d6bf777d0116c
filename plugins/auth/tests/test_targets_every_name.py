"""Target-relative authorization checks every name an input holds, not only the first: a list of
roles or teams where only a later entry holds more than the caller is refused all the same
(mutation testing found the first-only break unnoticed, see docs/mutation-report.md)."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_auth import service
from checkstack_hello import plugin as hello_plugin

from . import vault_plugin

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
