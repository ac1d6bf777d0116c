"""Who may do what: the global rules, anonymous reads, and team grants on ``catalog.system``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from checkstack_core import Forbidden, Unauthorized

SYSTEM = "catalog.system"
MANAGE = "catalog.catalog.manage"
READ = "catalog.catalog.read"


@dataclass
class World:
    open: dict[str, Any]
    secret: dict[str, Any]
    group: dict[str, Any]


@pytest.fixture
async def world(manager, checkstack_auth) -> World:
    """System "Open" (no grants) and team-only "Secret" (team red may read, blue may manage),
    both in group "All"."""
    open_ = await manager.call("catalog", "createSystem", {"name": "Open"})
    secret = await manager.call("catalog", "createSystem", {"name": "Secret"})
    group = await manager.call("catalog", "createGroup", {"name": "All"})
    for system in (open_, secret):
        await manager.call(
            "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
        )
    checkstack_auth.grant("red", SYSTEM, secret["id"], "read")
    checkstack_auth.grant("blue", SYSTEM, secret["id"], "manage")
    checkstack_auth.set_team_only(SYSTEM, secret["id"])
    return World(open_, secret, group)


def names(listed: dict[str, Any]) -> list[str]:
    return [s["name"] for s in listed["systems"]]


# -- team-only systems ----------------------------------------------------------------------------


async def test_a_team_only_system_is_invisible_to_outsiders(
    world, checkstack_client, checkstack_auth
):
    outsider = checkstack_client(checkstack_auth.user(MANAGE, teams=["green"]))
    assert names(await outsider.call("catalog", "getSystems")) == ["Open"]
    assert names(await checkstack_client().call("catalog", "getSystems")) == ["Open"]
    # Nor does its id show among a group's members.
    groups = await outsider.call("catalog", "getGroups")
    assert groups["groups"][0]["systemIds"] == [world.open["id"]]

    secret = world.secret["id"]
    denied = f"Access denied to catalog.system {secret}"
    for procedure, input in [
        ("getSystem", {"id": secret}),
        ("updateSystem", {"id": secret, "name": "Mine"}),
        ("deleteSystem", {"id": secret}),
        ("addSystemToGroup", {"groupId": world.group["id"], "systemId": secret}),
        ("removeSystemFromGroup", {"groupId": world.group["id"], "systemId": secret}),
    ]:
        with pytest.raises(Forbidden) as caught:
            await outsider.call("catalog", procedure, input)
        assert caught.value.status == 403
        assert caught.value.message == denied, procedure
    with pytest.raises(Forbidden, match=denied):
        await checkstack_client().call("catalog", "getSystem", {"id": secret})


async def test_a_read_grant_shows_the_system_but_does_not_allow_changes(
    world, checkstack_client, checkstack_auth
):
    reader = checkstack_client(checkstack_auth.user(MANAGE, teams=["red"]))
    assert names(await reader.call("catalog", "getSystems")) == ["Open", "Secret"]
    assert names(await reader.call("catalog", "getSystems", {"groupId": world.group["id"]})) == [
        "Open",
        "Secret",
    ]
    fetched = await reader.call("catalog", "getSystem", {"id": world.secret["id"]})
    assert fetched["name"] == "Secret"
    groups = await reader.call("catalog", "getGroups")
    assert groups["groups"][0]["systemIds"] == [world.open["id"], world.secret["id"]]

    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {world.secret['id']}"):
        await reader.call("catalog", "updateSystem", {"id": world.secret["id"], "name": "X"})
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {world.secret['id']}"):
        await reader.call("catalog", "deleteSystem", {"id": world.secret["id"]})

    # Without the global rule, a read grant does not stand in for manage.
    plain_reader = checkstack_client(checkstack_auth.user(teams=["red"]))
    assert (await plain_reader.call("catalog", "getSystem", {"id": world.secret["id"]}))["name"]
    with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.manage"):
        await plain_reader.call("catalog", "updateSystem", {"id": world.secret["id"], "name": "X"})


async def test_a_manage_grant_allows_changes_without_the_global_rule(
    world, checkstack_client, checkstack_auth
):
    team_manager = checkstack_client(checkstack_auth.user(teams=["blue"]))
    assert names(await team_manager.call("catalog", "getSystems")) == ["Open", "Secret"]
    renamed = await team_manager.call(
        "catalog", "updateSystem", {"id": world.secret["id"], "name": "Hidden"}
    )
    assert renamed["name"] == "Hidden"
    # The grant covers this system only: others still need the global rule.
    with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.manage"):
        await team_manager.call("catalog", "updateSystem", {"id": world.open["id"], "name": "Y"})
    with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.manage"):
        await team_manager.call("catalog", "createSystem", {"name": "New"})
    assert await team_manager.call("catalog", "deleteSystem", {"id": world.secret["id"]}) == {
        "id": world.secret["id"]
    }


async def test_moving_a_team_only_system_between_groups_needs_its_grant(
    world, checkstack_client, checkstack_auth
):
    both = checkstack_client(checkstack_auth.user(MANAGE, teams=["blue"]))
    pair = {"groupId": world.group["id"], "systemId": world.secret["id"]}
    assert (await both.call("catalog", "removeSystemFromGroup", pair))["systemIds"] == [
        world.open["id"]
    ]
    assert (await both.call("catalog", "addSystemToGroup", pair))["systemIds"] == [
        world.open["id"],
        world.secret["id"],
    ]


async def test_grants_on_a_shared_system_add_to_the_global_rule(checkstack_client, checkstack_auth):
    """Not team-only: global holders keep access, and a manage grant admits a team member."""
    admin = checkstack_client(checkstack_auth.admin())
    shared = await admin.call("catalog", "createSystem", {"name": "Shared"})
    checkstack_auth.grant("ops", SYSTEM, shared["id"], "manage")

    global_manager = checkstack_client(checkstack_auth.user(MANAGE))
    await global_manager.call("catalog", "updateSystem", {"id": shared["id"], "metadata": {"a": 1}})
    member = checkstack_client(checkstack_auth.application(teams=["ops"]))
    updated = await member.call("catalog", "updateSystem", {"id": shared["id"], "metadata": {}})
    assert updated["metadata"] == {}
    assert names(await checkstack_client().call("catalog", "getSystems")) == ["Shared"]


# -- anonymous callers ----------------------------------------------------------------------------


async def test_anonymous_reads_are_allowed_by_default(world, anonymous):
    assert names(await anonymous.call("catalog", "getSystems")) == ["Open"]
    assert (await anonymous.call("catalog", "getSystem", {"id": world.open["id"]}))[
        "name"
    ] == "Open"
    assert [g["name"] for g in (await anonymous.call("catalog", "getGroups"))["groups"]] == ["All"]


async def test_anonymous_reads_stop_when_the_rule_is_removed(
    world, anonymous, checkstack_auth, checkstack_client
):
    checkstack_auth.anonymous_rules.clear()  # an admin took catalog.read away from guests
    for procedure in ("getSystems", "getGroups"):
        with pytest.raises(Unauthorized) as caught:
            await anonymous.call("catalog", procedure)
        assert caught.value.status == 401
        assert caught.value.message == "Authentication required"
    with pytest.raises(Unauthorized, match="Authentication required"):
        await anonymous.call("catalog", "getSystem", {"id": world.open["id"]})
    # Signed-in callers keep reading: they hold catalog.read through the users role.
    reader = checkstack_client(checkstack_auth.user(READ))
    assert names(await reader.call("catalog", "getSystems")) == ["Open"]


# -- the manage rule ------------------------------------------------------------------------------


def mutations(world: World) -> list[tuple[str, dict[str, Any]]]:
    pair = {"groupId": world.group["id"], "systemId": world.open["id"]}
    return [
        ("createSystem", {"name": "New"}),
        ("createGroup", {"name": "New"}),
        ("updateGroup", {"id": world.group["id"], "name": "Renamed"}),
        ("deleteGroup", {"id": world.group["id"]}),
        ("addSystemToGroup", pair),
        ("removeSystemFromGroup", pair),
        ("updateSystem", {"id": world.open["id"], "name": "Renamed"}),
        ("deleteSystem", {"id": world.open["id"]}),
    ]


async def test_every_mutation_needs_the_manage_rule(world, checkstack_auth, checkstack_http):
    reader = checkstack_auth.application()  # holds catalog.read (public), not catalog.manage
    for procedure, input in mutations(world):
        response = await checkstack_http.post(
            "/api/catalog/", json={procedure: input}, headers=reader.headers
        )
        assert response.status_code == 403, procedure
        message = "Missing access: catalog.catalog.manage"
        assert response.json() == {"code": "FORBIDDEN", "message": message, "procedure": procedure}


async def test_anonymous_mutations_need_authentication(world, checkstack_http):
    for procedure, input in mutations(world):
        response = await checkstack_http.post("/api/catalog/", json={procedure: input})
        assert response.status_code == 401, procedure
        assert response.json()["message"] == "Authentication required"


async def test_nothing_changed_after_the_refusals(world, manager, checkstack_auth, checkstack_http):
    reader = checkstack_auth.user()
    for procedure, input in mutations(world):
        await checkstack_http.post("/api/catalog/", json={procedure: input}, headers=reader.headers)
    listed = await manager.call("catalog", "getSystems")
    assert names(listed) == ["Open"]  # the manager is in no team: "Secret" stays hidden
    assert [g["name"] for g in (await manager.call("catalog", "getGroups"))["groups"]] == ["All"]
