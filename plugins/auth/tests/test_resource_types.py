"""Which resource types grants and team-only settings may name: those some active plugin guards
with instance access — declared on a rule (even one no procedure uses yet) or on a procedure —
whatever else is loaded (a plugin without a contract, before the others)."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin

from checkstack_core import AccessRule, Contract, InstanceAccess, Plugin

from . import vault_plugin

#: Hooks and services only: no contract at all.
bare = Plugin(id="bare", name="No contract (test plugin)")
#: A second rule guarding a type of its own that no procedure uses (in-process checks only).
ledger = Plugin(
    id="ledger",
    name="Ledger (test plugin)",
    contract=Contract(
        "ledger",
        rules=[
            AccessRule("entry", "read", "Read entries"),
            AccessRule(
                "archive",
                "read",
                "Read archives",
                instance=InstanceAccess("ledger.archive", id_param="id"),
            ),
        ],
        procedures=[],
    ),
)
KNOWN = ["auth.team", "ledger.archive", "vault.item"]


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [bare, auth_plugin, vault_plugin.plugin, ledger]


@pytest.fixture
async def ops(rpc, principals) -> dict[str, Any]:
    admin = await principals.admin()
    team = await rpc("auth", "createTeam", {"name": "ops"}, admin)
    return {"admin": admin, "id": team.json()["createTeam"]["id"]}


def grant_input(team_id: str, resource_type: str) -> dict[str, str]:
    return {"teamId": team_id, "resourceType": resource_type, "resourceId": "r1", "level": "read"}


async def test_an_unknown_type_is_refused_naming_every_known_one(rpc, ops):
    expected = [
        {
            "message": f"Unknown resource type nope.thing; known: {', '.join(KNOWN)}",
            "path": ["resourceType"],
        }
    ]
    granted = await rpc(
        "auth", "grantTeamAccess", grant_input(ops["id"], "nope.thing"), ops["admin"]
    )
    assert granted.status_code == 400, granted.text
    assert granted.json()["data"]["issues"] == expected
    only = {"resourceType": "nope.thing", "resourceId": "r1", "teamOnly": True}
    team_only = await rpc("auth", "setTeamOnly", only, ops["admin"])
    assert team_only.status_code == 400, team_only.text
    assert team_only.json()["data"]["issues"] == expected


@pytest.mark.parametrize("resource_type", KNOWN)
async def test_every_known_type_may_be_granted_and_made_team_only(rpc, ops, resource_type):
    granted = await rpc(
        "auth", "grantTeamAccess", grant_input(ops["id"], resource_type), ops["admin"]
    )
    assert granted.status_code == 200, granted.text
    only = {"resourceType": resource_type, "resourceId": "r1", "teamOnly": True}
    team_only = await rpc("auth", "setTeamOnly", only, ops["admin"])
    assert team_only.status_code == 200, team_only.text
    assert team_only.json()["setTeamOnly"] == {
        "resourceType": resource_type,
        "resourceId": "r1",
        "teamOnly": True,
        "grants": [{"teamId": ops["id"], "teamName": "ops", "level": "read"}],
    }


async def test_a_grant_to_a_team_that_does_not_exist_is_not_found(rpc, ops):
    granted = await rpc(
        "auth", "grantTeamAccess", grant_input("no-such-team", "vault.item"), ops["admin"]
    )
    assert granted.status_code == 404, granted.text
    assert granted.json()["message"] == "Team not found: no-such-team"


async def test_granting_needs_the_rules_that_guard_the_type(rpc, principals, ops):
    """Decided from every active contract, the one without a contract loaded first included."""
    team_manager = await principals.user("auth.teams.manage")
    granted = await rpc(
        "auth", "grantTeamAccess", grant_input(ops["id"], "vault.item"), team_manager
    )
    assert granted.status_code == 403, granted.text
    assert granted.json()["message"] == (
        "You cannot grant access you do not hold: vault.item r1 (read)"
    )
    reader = await principals.user("auth.teams.manage", "vault.item.read")
    allowed = await rpc("auth", "grantTeamAccess", grant_input(ops["id"], "vault.item"), reader)
    assert allowed.status_code == 200, allowed.text
