"""Teams and resource-level access (SPEC 5.4, 5.5) on a test-only plugin's ``vault.item``."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_auth.models import ResourceGrant, ResourceSettings
from checkstack_hello import plugin as hello_plugin

from checkstack_core import Level, Principal, PrincipalKind
from checkstack_core.context import UnitOfWork

from . import vault_plugin
from .vault_plugin import ITEM

READ = "vault.item.read"
MANAGE = "vault.item.manage"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [auth_plugin, hello_plugin, vault_plugin.plugin]


@pytest.fixture
async def world(rpc, principals):
    """Items a, b, c; team ops; an admin to arrange things."""
    admin = await principals.admin()
    for item in ("a", "b", "c"):
        response = await rpc("vault", "createItem", {"id": item, "name": item.upper()}, admin)
        assert response.status_code == 200, response.text
    team = await rpc("auth", "createTeam", {"name": "ops"}, admin)
    return {"admin": admin, "ops": team.json()["createTeam"]["id"]}


async def _ids(rpc, caller) -> list[str]:
    response = await rpc("vault", "getItems", None, caller)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["getItems"]["items"]]


async def _grant(rpc, world, item, level, team=None):
    response = await rpc(
        "auth",
        "grantTeamAccess",
        {"teamId": team or world["ops"], "resourceType": ITEM, "resourceId": item, "level": level},
        world["admin"],
    )
    assert response.status_code == 200, response.text
    return response.json()["grantTeamAccess"]


async def test_without_grants_the_global_rule_decides(rpc, principals, world):
    reader = await principals.app(READ)
    nobody = await principals.app()
    assert await _ids(rpc, reader) == ["a", "b", "c"]
    assert await _ids(rpc, nobody) == []
    denied = await rpc("vault", "getItem", {"id": "a"}, nobody)
    assert denied.status_code == 403
    assert denied.json()["message"] == "Missing access: vault.item.read"


async def test_team_only_resource(rpc, principals, world):
    await _grant(rpc, world, "a", "read")
    settings = await rpc(
        "auth",
        "setTeamOnly",
        {"resourceType": ITEM, "resourceId": "a", "teamOnly": True},
        world["admin"],
    )
    assert settings.json()["setTeamOnly"]["teamOnly"] is True

    # A holder of the global rule outside the team: invisible in lists, 403 on direct access.
    outsider = await principals.app(READ, MANAGE)
    assert await _ids(rpc, outsider) == ["b", "c"]
    assert (await rpc("vault", "getItem", {"id": "a"}, outsider)).status_code == 403
    assert (await rpc("vault", "updateItem", {"id": "a", "name": "x"}, outsider)).status_code == 403
    assert (await rpc("vault", "getItem", {"id": "b"}, outsider)).status_code == 200
    # Admins too: team-only means team grants only.
    assert "a" not in await _ids(rpc, world["admin"])

    # A member with a read grant: visible, readable, not manageable.
    member = await principals.app(teams=(world["ops"],))
    assert await _ids(rpc, member) == ["a"]
    assert (await rpc("vault", "getItem", {"id": "a"}, member)).json()["getItem"]["name"] == "A"
    update = await rpc("vault", "updateItem", {"id": "a", "name": "x"}, member)
    assert update.status_code == 403
    assert update.json()["message"] == "Missing access: vault.item.manage"

    # With a manage grant (manage implies read) it may change it.
    await _grant(rpc, world, "a", "manage")
    assert (await rpc("vault", "updateItem", {"id": "a", "name": "x"}, member)).status_code == 200
    assert await _ids(rpc, member) == ["a"]
    # A member holding the global rule sees the open items too.
    reader_member = await principals.app(READ, teams=(world["ops"],))
    assert await _ids(rpc, reader_member) == ["a", "b", "c"]


async def test_grants_on_open_resources_add_to_the_global_rule(rpc, principals, world):
    await _grant(rpc, world, "b", "read")
    outsider = await principals.app(READ)
    assert await _ids(rpc, outsider) == ["a", "b", "c"]
    member = await principals.app(teams=(world["ops"],))
    assert await _ids(rpc, member) == ["b"]
    users_member = await principals.user(teams=(world["ops"],))
    assert await _ids(rpc, users_member) == ["b"]


async def test_deleting_a_resource_removes_its_grants(rpc, principals, world):
    await _grant(rpc, world, "c", "manage")
    await rpc(
        "auth",
        "setTeamOnly",
        {"resourceType": ITEM, "resourceId": "c", "teamOnly": True},
        world["admin"],
    )
    member = await principals.app(teams=(world["ops"],))
    assert (await rpc("vault", "deleteItem", {"id": "c"}, member)).status_code == 200
    access = await rpc(
        "auth", "getResourceAccess", {"resourceType": ITEM, "resourceId": "c"}, world["admin"]
    )
    assert access.json()["getResourceAccess"] == {
        "resourceType": ITEM,
        "resourceId": "c",
        "teamOnly": False,
        "grants": [],
    }
    async with principals.ctx() as ctx:
        assert await ctx.session.get(ResourceGrant, (ITEM, "c", world["ops"])) is None
        assert await ctx.session.get(ResourceSettings, (ITEM, "c")) is None


async def test_grant_management(rpc, principals, world):
    admin = world["admin"]
    info = await _grant(rpc, world, "a", "read")
    assert info["grants"] == [{"teamId": world["ops"], "teamName": "ops", "level": "read"}]
    unknown = await rpc(
        "auth",
        "grantTeamAccess",
        {
            "teamId": world["ops"],
            "resourceType": "vault.nothing",
            "resourceId": "a",
            "level": "read",
        },
        admin,
    )
    assert unknown.status_code == 400
    assert unknown.json()["data"]["issues"][0]["message"].startswith(
        "Unknown resource type vault.nothing"
    )
    bad_level = await rpc(
        "auth",
        "grantTeamAccess",
        {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "a", "level": "write"},
        admin,
    )
    assert bad_level.status_code == 400
    team = await rpc("auth", "getTeam", {"id": world["ops"]}, admin)
    assert team.json()["getTeam"]["grants"] == [
        {"resourceType": ITEM, "resourceId": "a", "level": "read"}
    ]
    revoked = await rpc(
        "auth",
        "revokeTeamAccess",
        {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "a"},
        admin,
    )
    assert revoked.json()["revokeTeamAccess"]["grants"] == []
    # Deleting a team removes its grants with it.
    await _grant(rpc, world, "b", "manage")
    assert (await rpc("auth", "deleteTeam", {"id": world["ops"]}, admin)).status_code == 200
    access = await rpc(
        "auth", "getResourceAccess", {"resourceType": ITEM, "resourceId": "b"}, admin
    )
    assert access.json()["getResourceAccess"]["grants"] == []


async def test_only_team_managers_and_teams_manage_change_membership(rpc, principals, world):
    admin = world["admin"]
    other = (await rpc("auth", "createTeam", {"name": "dev"}, admin)).json()["createTeam"]["id"]
    manager = await principals.user()
    await rpc("auth", "addTeamManager", {"id": world["ops"], "userId": manager.id}, admin)
    app = await principals.app()

    added = await rpc(
        "auth", "addTeamMember", {"id": world["ops"], "applicationId": app.id}, manager
    )
    assert added.status_code == 200, added.text
    detail = added.json()["addTeamMember"]
    assert detail["isManager"] is True
    assert [m["id"] for m in detail["members"]] == [app.id]
    assert detail["managers"][0]["id"] == manager.id

    foreign = await rpc("auth", "addTeamMember", {"id": other, "applicationId": app.id}, manager)
    assert foreign.status_code == 403
    assert foreign.json()["message"] == "Missing access: auth.teams.manage"
    rename = await rpc("auth", "updateTeam", {"id": world["ops"], "name": "x"}, manager)
    assert rename.json()["message"] == "Missing access: auth.teams.manage"
    grant = await rpc(
        "auth",
        "grantTeamAccess",
        {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "a", "level": "manage"},
        manager,
    )
    assert grant.status_code == 403
    # A reader of teams cannot change them (the original let teams.read rename and add members).
    reader = await principals.user("auth.teams.read")
    assert (await rpc("auth", "updateTeam", {"id": other, "name": "x"}, reader)).status_code == 403
    assert (
        await rpc("auth", "addTeamMember", {"id": other, "userId": reader.id}, reader)
    ).status_code == 403

    # Managers see the teams they manage; readers see all.
    listed = await rpc("auth", "getTeams", None, manager)
    assert [t["name"] for t in listed.json()["getTeams"]["teams"]] == ["ops"]
    everything = await rpc("auth", "getTeams", None, reader)
    teams = {t["name"]: t for t in everything.json()["getTeams"]["teams"]}
    assert set(teams) == {"ops", "dev"} and teams["ops"]["memberCount"] == 1

    removed = await rpc(
        "auth", "removeTeamMember", {"id": world["ops"], "applicationId": app.id}, manager
    )
    assert removed.json()["removeTeamMember"]["members"] == []
    neither = await rpc("auth", "addTeamMember", {"id": world["ops"]}, manager)
    assert neither.status_code == 400


async def test_applications_join_teams_through_update(rpc, principals, world):
    admin = world["admin"]
    created = await rpc(
        "auth", "createApplication", {"name": "bot", "teams": [world["ops"]]}, admin
    )
    app = created.json()["createApplication"]["application"]
    assert app["teams"] == [world["ops"]]
    key_manager = await principals.app("auth.applications.manage")
    dev = (await rpc("auth", "createTeam", {"name": "dev"}, admin)).json()["createTeam"]["id"]
    join = await rpc(
        "auth", "updateApplication", {"id": app["id"], "teams": [world["ops"], dev]}, key_manager
    )
    assert join.status_code == 403
    assert join.json()["message"] == f"You cannot change the membership of team {dev}"
    moved = await rpc("auth", "updateApplication", {"id": app["id"], "teams": [dev]}, admin)
    assert moved.json()["updateApplication"]["teams"] == [dev]
    missing = await rpc("auth", "updateApplication", {"id": app["id"], "teams": ["nope"]}, admin)
    assert missing.status_code == 400


async def test_admitted_ids_answers_large_lists(checkstack_host, principals, world, rpc):
    # Beyond the first 500 (the backend's lookups go in chunks): every chunk is asked.
    await _grant(rpc, world, "id-1207", "read")
    await rpc(
        "auth",
        "setTeamOnly",
        {"resourceType": ITEM, "resourceId": "id-1207", "teamOnly": True},
        world["admin"],
    )
    ids = [f"id-{n}" for n in range(1500)]
    auth = checkstack_host.auth
    holder = Principal(PrincipalKind.USER, id="u", rules=frozenset({READ}))
    member = Principal(PrincipalKind.APPLICATION, id="m", team_ids=frozenset({world["ops"]}))
    # Both paths: read-only calls decide from the cache, writing calls from their transaction.
    for read_only in (True, False):
        uow = UnitOfWork(checkstack_host, read_only=read_only)
        try:
            admitted = await auth.admitted_ids(holder, ITEM, ids, Level.READ, True, uow=uow)
            assert admitted == set(ids) - {"id-1207"}
            assert await auth.admitted_ids(member, ITEM, ids, Level.READ, False, uow=uow) == {
                "id-1207"
            }
            assert await auth.admitted_ids(member, ITEM, ids, Level.MANAGE, False, uow=uow) == set()
        finally:
            await uow.close()


async def test_a_team_manager_may_put_applications_in_its_own_teams_only(rpc, principals, world):
    """Creating an application in teams needs the right to change each team's membership:
    ``auth.teams.manage``, or managing that team — which only a user can."""
    admin, ops = world["admin"], world["ops"]
    dev = (await rpc("auth", "createTeam", {"name": "dev"}, admin)).json()["createTeam"]["id"]
    manager = await principals.user("auth.applications.manage")
    await rpc("auth", "addTeamManager", {"id": ops, "userId": manager.id}, admin)
    created = await rpc("auth", "createApplication", {"name": "ops bot", "teams": [ops]}, manager)
    assert created.status_code == 200, created.text
    assert created.json()["createApplication"]["application"]["teams"] == [ops]
    both = await rpc("auth", "createApplication", {"name": "both", "teams": [ops, dev]}, manager)
    assert both.status_code == 403, both.text
    assert both.json()["message"] == f"You cannot change the membership of team {dev}"
    key_manager = await principals.app("auth.applications.manage")
    by_key = await rpc("auth", "createApplication", {"name": "bot", "teams": [ops]}, key_manager)
    assert by_key.status_code == 403, by_key.text
    assert by_key.json()["message"] == f"You cannot change the membership of team {ops}"


async def test_teams_say_whom_they_are_managed_by(rpc, principals, world):
    admin, ops = world["admin"], world["ops"]
    dev = (await rpc("auth", "createTeam", {"name": "dev"}, admin)).json()["createTeam"]["id"]
    manager = await principals.user("auth.teams.read")
    other = await principals.user()
    await rpc("auth", "addTeamManager", {"id": ops, "userId": manager.id}, admin)
    await rpc("auth", "addTeamManager", {"id": dev, "userId": other.id}, admin)
    listed = await rpc("auth", "getTeams", None, manager)
    assert listed.status_code == 200, listed.text
    assert {t["name"]: t["isManager"] for t in listed.json()["getTeams"]["teams"]} == {
        "dev": False,
        "ops": True,
    }
    # An application manages no team, whatever it may read.
    reader = await principals.app("auth.teams.read")
    seen = await rpc("auth", "getTeams", None, reader)
    assert seen.status_code == 200, seen.text
    assert {t["name"]: t["isManager"] for t in seen.json()["getTeams"]["teams"]} == {
        "dev": False,
        "ops": False,
    }
