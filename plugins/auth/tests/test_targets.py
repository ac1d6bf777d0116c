"""Target-relative authorization (issue 9 findings 1, 2 and 8) and the last-administrator race,
through HTTP as a caller holding less than its target."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_auth import service
from checkstack_hello import plugin as hello_plugin

from . import vault_plugin
from .conftest import PASSWORD

KEYS = "auth.applications.manage"
USERS = "auth.users.manage"
TEAMS = "auth.teams.manage"
MANAGE = "hello.hello.manage"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [auth_plugin, hello_plugin, vault_plugin.plugin]


def message(response: Any) -> str:
    return response.json()["message"]


async def test_a_key_manager_cannot_take_over_an_admin_application(rpc, principals):
    key_manager = await principals.app(KEYS)
    robot = await principals.app(roles=("admin",))
    for procedure, extra in (
        ("regenerateApplicationSecret", {}),
        ("updateApplication", {"name": "mine now"}),
        ("deleteApplication", {}),
    ):
        response = await rpc("auth", procedure, {"id": robot.id, **extra}, key_manager)
        assert response.status_code == 403, response.text
        assert message(response) == (
            f"Only administrators can manage application {robot.id}: it holds the admin role"
        )
        assert "ck_" not in response.text
    # The admin key still works, unchanged.
    assert (await rpc("auth", "getApplications", None, robot)).status_code == 200


async def test_a_key_manager_cannot_act_on_keys_holding_more(rpc, principals):
    key_manager = await principals.app(KEYS)
    greeter = await principals.app(MANAGE)
    denied = await rpc("auth", "regenerateApplicationSecret", {"id": greeter.id}, key_manager)
    assert denied.status_code == 403
    assert message(denied) == (
        f"You cannot manage application {greeter.id}: it holds access rules you do not hold: "
        f"{MANAGE}"
    )
    # Taking a role away is acting on the key too.
    removal = await rpc("auth", "updateApplication", {"id": greeter.id, "roles": []}, key_manager)
    assert removal.status_code == 403
    assert (
        await rpc("hello", "setGreeting", {"template": "Hi {name}"}, greeter)
    ).status_code == 200

    # A key holding no more than the manager: fine.
    small = await principals.app()
    rotated = await rpc("auth", "regenerateApplicationSecret", {"id": small.id}, key_manager)
    assert rotated.status_code == 200
    # A manager holding the rule too may rotate the bigger key.
    bigger_manager = await principals.app(KEYS, MANAGE)
    ok = await rpc("auth", "regenerateApplicationSecret", {"id": greeter.id}, bigger_manager)
    assert ok.status_code == 200


async def test_team_grants_count_as_holdings(rpc, principals):
    async with principals.ctx() as ctx:
        team = (await service.create_team(ctx, "vaulters", "")).id
        await service.grant(ctx, team, vault_plugin.ITEM, "secret-item", "manage")
    member = await principals.app(teams=(team,))
    key_manager = await principals.app(KEYS)
    denied = await rpc("auth", "deleteApplication", {"id": member.id}, key_manager)
    assert denied.status_code == 403
    assert message(denied) == (
        f"You cannot manage application {member.id}: its teams grant access you do not hold: "
        "vault.item (manage)"
    )
    # The team id and the resource id were never sent: the message names neither.
    assert team not in denied.text and "secret-item" not in denied.text

    team_manager = await principals.app(TEAMS)
    outsider = await principals.app()
    join = await rpc(
        "auth", "addTeamMember", {"id": team, "applicationId": outsider.id}, team_manager
    )
    assert join.status_code == 403
    assert message(join) == (
        f"You cannot manage team {team}: it grants access you do not hold: vault.item (manage)"
    )
    give = await rpc(
        "auth",
        "grantTeamAccess",
        {
            "teamId": await principals.team("empty"),
            "resourceType": vault_plugin.ITEM,
            "resourceId": "other",
            "level": "read",
        },
        team_manager,
    )
    assert give.status_code == 403
    assert message(give) == "You cannot grant access you do not hold: vault.item other (read)"
    # Holding the grant through the team itself is enough.
    insider = await principals.user(TEAMS, teams=(team,))
    added = await rpc("auth", "addTeamMember", {"id": team, "applicationId": outsider.id}, insider)
    assert added.status_code == 200, added.text


async def test_a_user_manager_cannot_take_over_accounts_holding_more(rpc, principals):
    manager = await principals.user(USERS)
    victim = await principals.user(MANAGE, email="victim@example.com")
    for procedure, extra in (
        ("setUserPassword", {"password": "Taken-over-42"}),
        ("revokeUserSessions", {}),
        ("deleteUser", {}),
        ("setUserRoles", {"roles": []}),
    ):
        response = await rpc("auth", procedure, {"id": victim.id, **extra}, manager)
        assert response.status_code == 403, (procedure, response.text)
        assert message(response) == (
            f"You cannot manage user {victim.id}: it holds access rules you do not hold: {MANAGE}"
        )
    taken = await rpc("auth", "login", {"email": "victim@example.com", "password": "Taken-over-42"})
    assert taken.status_code == 401
    assert (await rpc("auth", "getCurrentUser", None, victim)).status_code == 200

    peer = await principals.user(email="peer@example.com")
    reset = await rpc(
        "auth", "setUserPassword", {"id": peer.id, "password": "Reset-pass-42"}, manager
    )
    assert reset.status_code == 200


async def test_an_application_cannot_manage_people_holding_the_default_rules(rpc, principals):
    # Every user holds the `users` role's default rules; a key without them holds less.
    async with principals.ctx() as ctx:
        await service.update_role(ctx, "users", rules=["hello.hello.read", MANAGE])
    key = await principals.app(USERS)
    person = await principals.user()
    denied = await rpc("auth", "setUserPassword", {"id": person.id, "password": PASSWORD}, key)
    assert denied.status_code == 403
    assert MANAGE in message(denied)


async def test_a_role_manager_cannot_touch_bigger_or_built_in_roles(rpc, principals):
    role_manager = await principals.user("auth.roles.manage")
    async with principals.ctx() as ctx:
        greeters = (await service.create_role(ctx, "greeters", "", [MANAGE])).id
    renamed = await rpc("auth", "updateRole", {"id": "admin", "name": "Mine"}, role_manager)
    assert renamed.status_code == 403
    assert message(renamed) == "Only administrators can change the admin role"
    system = await rpc("auth", "updateRole", {"id": "applications", "name": "Mine"}, role_manager)
    assert message(system) == "The applications role is built in and cannot be renamed"
    deleted = await rpc("auth", "deleteRole", {"id": greeters}, role_manager)
    assert deleted.status_code == 403
    assert message(deleted) == (
        f"You cannot change role greeters: it holds access rules you do not hold: {MANAGE}"
    )
    # Adding a rule one lacks to a built-in role is refused like any other grant.
    grow = await rpc("auth", "updateRole", {"id": "applications", "rules": [MANAGE]}, role_manager)
    assert grow.status_code == 403
    assert message(grow) == f"You cannot grant access rules you do not hold: {MANAGE}"


async def test_a_role_named_twice_is_given_once(rpc, principals):
    admin = await principals.admin()
    async with principals.ctx() as ctx:
        role = await service.create_role(ctx, "Deployers", "", [MANAGE])
    user = await principals.user()
    response = await rpc(
        "auth", "setUserRoles", {"id": user.id, "roles": [role.id, "deployers", role.id]}, admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["setUserRoles"]["roles"] == [role.id]
    created = await rpc(
        "auth", "createApplication", {"name": "x", "roles": ["Deployers", role.id]}, admin
    )
    assert created.status_code == 200, created.text
    assert sorted(created.json()["createApplication"]["application"]["roles"]) == sorted(
        ["applications", role.id]
    )


@pytest.mark.parametrize("attack", ["delete", "demote", "mixed"])
async def test_the_last_administrator_survives_concurrent_removals(rpc, principals, attack):
    """The last two administrators removed at once: exactly one removal succeeds, the other is
    409. The caller is an administrator key (keys do not count as administrators), so neither
    call's authentication depends on which removal commits first."""
    robot = await principals.app(roles=("admin",))
    survivors = [await principals.admin()]
    kinds = {"delete": ("delete", "delete"), "demote": ("demote", "demote")}.get(
        attack, ("delete", "demote")
    )

    def removal(target: Any, kind: str) -> Any:
        if kind == "delete":
            return rpc("auth", "deleteUser", {"id": target.id}, robot)
        return rpc("auth", "setUserRoles", {"id": target.id, "roles": []}, robot)

    for _ in range(4):
        a, b = survivors[0], await principals.admin()
        responses = await asyncio.gather(removal(a, kinds[0]), removal(b, kinds[1]))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409], [r.text for r in responses]
        conflict = next(r for r in responses if r.status_code == 409)
        assert message(conflict) in (
            "Cannot delete the last administrator",
            "Cannot remove the admin role from the last administrator",
        )
        async with principals.ctx() as ctx:
            assert await service.count_admins(ctx.session) == 1
        survivors = [b if responses[0].status_code == 200 else a]
