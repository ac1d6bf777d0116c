"""Who may do what: the global rules, anonymous reads, and team grants on ``catalog.system``.

Every test runs twice, through the ``checkstack_access`` kit: over ``MemoryAuth`` (the test kit's
fake) and over the real auth plugin (real users, API keys, teams, grants and the guests' role), so
the fake cannot drift from the product unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from checkstack_core import Forbidden, Unauthorized
from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for

SYSTEM = "catalog.system"
MANAGE = "catalog.catalog.manage"
READ = "catalog.catalog.read"


@dataclass
class World:
    open: dict[str, Any]
    secret: dict[str, Any]
    group: dict[str, Any]


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_catalog import plugin

    return plugins_for(request.param, [plugin])


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return assert_backend(checkstack_access, checkstack_plugins)


@pytest.fixture
async def manager(checkstack_client: Any, access: Any) -> Any:
    """A client allowed to change the catalog (replaces the conftest's in-memory one)."""
    return checkstack_client(await access.user(MANAGE))


@pytest.fixture
async def world(manager, access) -> World:
    """System "Open" (no grants) and team-only "Secret" (team red may read, blue may manage),
    both in group "All"."""
    open_ = await manager.call("catalog", "createSystem", {"name": "Open"})
    secret = await manager.call("catalog", "createSystem", {"name": "Secret"})
    group = await manager.call("catalog", "createGroup", {"name": "All"})
    for system in (open_, secret):
        await manager.call(
            "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]}
        )
    await access.grant("red", SYSTEM, secret["id"], "read")
    await access.grant("blue", SYSTEM, secret["id"], "manage")
    await access.set_team_only(SYSTEM, secret["id"])
    return World(open_, secret, group)


def names(listed: dict[str, Any]) -> list[str]:
    return [s["name"] for s in listed["systems"]]


# -- team-only systems ----------------------------------------------------------------------------


async def test_a_team_only_system_is_invisible_to_outsiders(world, checkstack_client, access):
    outsider = checkstack_client(await access.user(MANAGE, teams=["green"]))
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
    world, checkstack_client, access
):
    reader = checkstack_client(await access.user(MANAGE, teams=["red"]))
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
    plain_reader = checkstack_client(await access.user(teams=["red"]))
    assert (await plain_reader.call("catalog", "getSystem", {"id": world.secret["id"]}))["name"]
    with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.manage"):
        await plain_reader.call("catalog", "updateSystem", {"id": world.secret["id"], "name": "X"})


async def test_a_manage_grant_allows_changes_without_the_global_rule(
    world, checkstack_client, access
):
    team_manager = checkstack_client(await access.user(teams=["blue"]))
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
    world, checkstack_client, access
):
    both = checkstack_client(await access.user(MANAGE, teams=["blue"]))
    pair = {"groupId": world.group["id"], "systemId": world.secret["id"]}
    assert (await both.call("catalog", "removeSystemFromGroup", pair))["systemIds"] == [
        world.open["id"]
    ]
    assert (await both.call("catalog", "addSystemToGroup", pair))["systemIds"] == [
        world.open["id"],
        world.secret["id"],
    ]


async def test_grants_on_a_shared_system_add_to_the_global_rule(checkstack_client, access):
    """Not team-only: global holders keep access, and a manage grant admits a team member."""
    admin = checkstack_client(await access.admin())
    shared = await admin.call("catalog", "createSystem", {"name": "Shared"})
    await access.grant("ops", SYSTEM, shared["id"], "manage")

    global_manager = checkstack_client(await access.user(MANAGE))
    await global_manager.call("catalog", "updateSystem", {"id": shared["id"], "metadata": {"a": 1}})
    member = checkstack_client(await access.application(teams=["ops"]))
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
    world, anonymous, access, checkstack_client
):
    # An API key made before the change held catalog.read only as guests do.
    key = checkstack_client(await access.application())
    assert names(await key.call("catalog", "getSystems")) == ["Open"]
    await access.revoke_anonymous(READ)  # an admin took catalog.read away from guests
    for procedure in ("getSystems", "getGroups"):
        with pytest.raises(Unauthorized) as caught:
            await anonymous.call("catalog", procedure)
        assert caught.value.status == 401
        assert caught.value.message == "Authentication required"
    with pytest.raises(Unauthorized, match="Authentication required"):
        await anonymous.call("catalog", "getSystem", {"id": world.open["id"]})
    # Every caller holds what guests hold: the key made before loses catalog.read with them
    # (a filtered list then lists nothing; the groups need the rule)...
    assert names(await key.call("catalog", "getSystems")) == []
    with pytest.raises(Forbidden, match=r"Missing access: catalog\.catalog\.read"):
        await key.call("catalog", "getGroups")
    # ...while signed-in people keep reading: they hold catalog.read through the users role.
    person = checkstack_client(await access.user())
    assert names(await person.call("catalog", "getSystems")) == ["Open"]


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


async def test_every_mutation_needs_the_manage_rule(world, access, checkstack_http):
    reader = await access.application()  # holds catalog.read (public), not catalog.manage
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


async def test_nothing_changed_after_the_refusals(world, manager, access, checkstack_http):
    reader = await access.user()
    for procedure, input in mutations(world):
        await checkstack_http.post("/api/catalog/", json={procedure: input}, headers=reader.headers)
    listed = await manager.call("catalog", "getSystems")
    assert names(listed) == ["Open"]  # the manager is in no team: "Secret" stays hidden
    assert [g["name"] for g in (await manager.call("catalog", "getGroups"))["groups"]] == ["All"]
