"""The list procedures (built from columns in one query each) answer exactly what the
single-record procedures answer for the same records: roles, teams, links and counts included."""

from __future__ import annotations

from typing import Any


async def _ok(rpc: Any, procedure: str, input: Any, caller: Any) -> Any:
    response = await rpc("auth", procedure, input, caller)
    assert response.status_code == 200, response.text
    return response.json()[procedure]


async def test_lists_agree_with_the_records_they_list(rpc, principals):
    admin = await principals.admin()
    # Rules deliberately out of order: a role's rules are listed sorted.
    reader = await _ok(
        rpc,
        "createRole",
        {"name": "Reader", "rules": ["auth.users.read", "auth.roles.read", "hello.hello.read"]},
        admin,
    )
    empty = await _ok(rpc, "createRole", {"name": "Empty", "rules": []}, admin)
    ops = await _ok(rpc, "createTeam", {"name": "ops"}, admin)
    dev = await _ok(rpc, "createTeam", {"name": "dev"}, admin)

    two_roles = await _ok(
        rpc,
        "createUser",
        {
            "email": "two@example.com",
            "password": "Correct-Horse-9",
            "roles": [reader["id"], empty["id"]],
        },
        admin,
    )
    no_roles = await _ok(
        rpc, "createUser", {"email": "none@example.com", "password": "Correct-Horse-9"}, admin
    )
    linked = (
        await _ok(
            rpc,
            "createApplication",
            {
                "name": "linked",
                "roles": [reader["id"], empty["id"]],
                "teams": [ops["id"], dev["id"]],
            },
            admin,
        )
    )["application"]
    bare = (await _ok(rpc, "createApplication", {"name": "bare"}, admin))["application"]
    await _ok(rpc, "addTeamMember", {"id": ops["id"], "userId": two_roles["id"]}, admin)
    await _ok(rpc, "addTeamManager", {"id": ops["id"], "userId": admin.id}, admin)

    users = {u["id"]: u for u in (await _ok(rpc, "getUsers", None, admin))["users"]}
    assert users[two_roles["id"]] == two_roles
    assert sorted(two_roles["roles"]) == sorted([reader["id"], empty["id"]])
    assert users[no_roles["id"]] == no_roles
    assert users[no_roles["id"]]["roles"] == []
    emails = [u["email"] for u in users.values()]
    assert emails == sorted(emails) and len(emails) == 3

    roles = {r["id"]: r for r in (await _ok(rpc, "getRoles", None, admin))["roles"]}
    assert roles[reader["id"]] == reader
    assert roles[reader["id"]]["rules"] == sorted(reader["rules"])
    assert roles[empty["id"]]["rules"] == []
    every_rule = sorted(r["id"] for r in (await _ok(rpc, "getRules", None, admin))["rules"])
    assert roles["admin"]["rules"] == every_rule
    assert roles["users"]["assignable"] is False and roles[reader["id"]]["assignable"] is True

    apps = {a["id"]: a for a in (await _ok(rpc, "getApplications", None, admin))["applications"]}
    assert apps[linked["id"]] == linked
    assert sorted(linked["teams"]) == sorted([ops["id"], dev["id"]])
    assert len(linked["roles"]) == 3, "its two roles and the implicit applications role"
    assert apps[bare["id"]] == bare
    assert [a["name"] for a in apps.values()][:2] == ["bare", "linked"]

    teams = {t["name"]: t for t in (await _ok(rpc, "getTeams", None, admin))["teams"]}
    # ops: one user and one application; dev: one application.
    assert teams["ops"]["memberCount"] == 2 and teams["dev"]["memberCount"] == 1
    assert teams["ops"]["isManager"] is True and teams["dev"]["isManager"] is False
    assert list(teams) == ["dev", "ops"]
    # An application never manages a team, whatever its id.
    key = await principals.app("auth.teams.read")
    as_app = (await _ok(rpc, "getTeams", None, key))["teams"]
    assert [t["isManager"] for t in as_app] == [False, False]
