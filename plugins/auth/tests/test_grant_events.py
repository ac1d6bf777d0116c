"""Granting and revoking a team's access announce ``auth.team.updated`` (change ``access``) once
per real change, after the commit; a call that changes nothing announces nothing. The same holds
for an application joining or leaving teams (change ``members``, whichever procedure did it) and
for ``setTeamOnly`` (``auth.resource.team_only_changed``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_hello import plugin as hello_plugin

from checkstack_core import Context, Event, Plugin

from . import vault_plugin
from .vault_plugin import ITEM


@pytest.fixture
def seen() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def opened() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def checkstack_plugins(seen: list[dict[str, Any]], opened: list[dict[str, Any]]) -> list[Any]:
    listener = Plugin(id="listener", name="Listener")

    @listener.on_event("auth.team.updated")
    async def remember(ctx: Context, event: Event) -> None:
        seen.append(dict(event.payload))

    @listener.on_event("auth.resource.team_only_changed")
    async def remember_team_only(ctx: Context, event: Event) -> None:
        opened.append(dict(event.payload))

    return [auth_plugin, hello_plugin, vault_plugin.plugin, listener]


async def test_each_grant_change_is_announced_once(rpc, principals, checkstack_host, seen):
    admin = await principals.admin()
    team = (await rpc("auth", "createTeam", {"name": "ops"}, admin)).json()["createTeam"]
    await rpc("vault", "createItem", {"id": "a", "name": "A"}, admin)

    async def call(procedure: str, **fields: Any) -> dict[str, Any]:
        body = {"teamId": team["id"], "resourceType": ITEM, "resourceId": "a", **fields}
        response = await rpc("auth", procedure, body, admin)
        assert response.status_code == 200, response.text
        await checkstack_host.events.drain()
        return dict(response.json()[procedure])

    await checkstack_host.events.drain()
    seen.clear()
    granted = await call("grantTeamAccess", level="read")
    assert [g["teamId"] for g in granted["grants"]] == [team["id"]]
    announced = {"teamId": team["id"], "teamName": "ops", "change": "access"}
    assert [{k: e.get(k) for k in announced} for e in seen] == [announced]

    again = await call("grantTeamAccess", level="read")  # the same level: nothing changes
    assert again == granted and len(seen) == 1

    raised = await call("grantTeamAccess", level="manage")
    assert raised["grants"][0]["level"] == "manage" and len(seen) == 2

    revoked = await call("revokeTeamAccess")
    assert revoked["grants"] == [] and len(seen) == 3
    assert [{k: e.get(k) for k in announced} for e in seen] == [announced] * 3

    nothing = await call("revokeTeamAccess")  # no grant left: nothing changes
    assert nothing["grants"] == [] and len(seen) == 3


async def test_team_only_changes_are_announced_once(rpc, principals, checkstack_host, opened):
    admin = await principals.admin()
    await rpc("vault", "createItem", {"id": "b", "name": "B"}, admin)

    async def team_only(value: bool) -> None:
        body = {"resourceType": ITEM, "resourceId": "b", "teamOnly": value}
        response = await rpc("auth", "setTeamOnly", body, admin)
        assert response.status_code == 200, response.text
        await checkstack_host.events.drain()

    await team_only(False)  # already open: nothing changes
    assert opened == []
    await team_only(True)
    await team_only(True)
    await team_only(False)
    assert opened == [
        {"resourceType": ITEM, "resourceId": "b", "teamOnly": True},
        {"resourceType": ITEM, "resourceId": "b", "teamOnly": False},
    ]


async def test_concurrent_team_only_calls_change_it_once(rpc, principals, checkstack_host, opened):
    # Eight managers set the same value at once, on a resource with no settings row yet: every
    # call answers 200 (none fails on the new row's key) and only one changes it and says so.
    admin = await principals.admin()
    await rpc("vault", "createItem", {"id": "c", "name": "C"}, admin)
    body = {"resourceType": ITEM, "resourceId": "c", "teamOnly": True}
    for value in (True, False):
        responses = await asyncio.gather(
            *(rpc("auth", "setTeamOnly", {**body, "teamOnly": value}, admin) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        assert {r.json()["setTeamOnly"]["teamOnly"] for r in responses} == {value}
        await checkstack_host.events.drain()
    assert opened == [
        {"resourceType": ITEM, "resourceId": "c", "teamOnly": True},
        {"resourceType": ITEM, "resourceId": "c", "teamOnly": False},
    ]


async def test_concurrent_grants_and_revokes_change_it_once(rpc, principals, checkstack_host, seen):
    # Eight managers grant the same level at once, change it at once, then revoke at once:
    # every call answers 200 (none fails on the new grant's key or on a row another call
    # deleted) and each real change is announced once.
    admin = await principals.admin()
    team = (await rpc("auth", "createTeam", {"name": "crowd"}, admin)).json()["createTeam"]
    await rpc("vault", "createItem", {"id": "e", "name": "E"}, admin)
    body = {"teamId": team["id"], "resourceType": ITEM, "resourceId": "e"}
    await checkstack_host.events.drain()
    seen.clear()
    steps = [
        ("grantTeamAccess", {"level": "read"}, ["read"]),
        ("grantTeamAccess", {"level": "manage"}, ["manage"]),
        ("revokeTeamAccess", {}, []),
    ]
    for procedure, fields, levels in steps:
        responses = await asyncio.gather(
            *(rpc("auth", procedure, {**body, **fields}, admin) for _ in range(8))
        )
        assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
        for response in responses:
            assert [g["level"] for g in response.json()[procedure]["grants"]] == levels
        await checkstack_host.events.drain()
        assert [e["change"] for e in seen] == ["access"], procedure
        seen.clear()


async def test_a_batch_reading_then_setting_team_only_answers_the_new_value(
    checkstack_http, principals, rpc
):
    admin = await principals.admin()
    await rpc("vault", "createItem", {"id": "d", "name": "D"}, admin)
    resource = {"resourceType": ITEM, "resourceId": "d"}
    await rpc("auth", "setTeamOnly", {**resource, "teamOnly": False}, admin)  # the row exists
    response = await checkstack_http.post(
        "/api/auth/",
        json={"getResourceAccess": resource, "setTeamOnly": {**resource, "teamOnly": True}},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    answers = response.json()
    assert answers["getResourceAccess"]["teamOnly"] is False
    assert answers["setTeamOnly"]["teamOnly"] is True


async def test_an_application_joining_or_leaving_teams_changes_their_members(
    rpc, principals, checkstack_host, seen
):
    admin = await principals.admin()
    ops, web = [
        (await rpc("auth", "createTeam", {"name": name}, admin)).json()["createTeam"]["id"]
        for name in ("ops", "web")
    ]

    async def call(procedure: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await rpc("auth", procedure, body, admin)
        assert response.status_code == 200, response.text
        await checkstack_host.events.drain()
        return dict(response.json()[procedure])

    def members_changed() -> list[str]:
        found = sorted(e["teamId"] for e in seen if e["change"] == "members")
        seen.clear()
        return found

    await checkstack_host.events.drain()
    seen.clear()
    created = await call("createApplication", {"name": "ci", "teams": [ops]})
    assert members_changed() == [ops]
    app_id = created["application"]["id"]
    await call("updateApplication", {"id": app_id, "teams": [web]})  # leaves ops, joins web
    assert members_changed() == sorted([ops, web])
    await call("updateApplication", {"id": app_id, "teams": [web], "name": "ci-2"})
    assert members_changed() == []  # the teams did not change
