"""External applications (API keys), SPEC §5.2, through HTTP against the real backend."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from checkstack_auth.backend import DatabaseAuthBackend
from checkstack_auth.models import Application
from sqlalchemy import event

TOKEN = re.compile(
    r"^ck_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_[A-Za-z0-9]{32,}$"
)
READ = "hello.hello.read"
MANAGE = "hello.hello.manage"


async def _create(rpc, caller, **fields):
    response = await rpc("auth", "createApplication", {"name": "ci", **fields}, caller)
    assert response.status_code == 200, response.text
    return response.json()["createApplication"]


async def test_documented_flow(rpc, principals):
    admin = await principals.admin()
    created = await _create(rpc, admin, description="deploys")
    token = created["token"]
    app = created["application"]
    assert TOKEN.match(token)
    assert token.split("_", 2)[1] == app["id"]
    assert app["roles"] == ["applications"]
    assert app["lastUsedAt"] is None and app["expiresAt"] is None
    bearer = {"Authorization": f"Bearer {token}"}

    # Without a role holding hello.hello.manage: 403 naming the rule.
    denied = await rpc("hello", "setGreeting", {"template": "Hi {name}"}, headers=bearer)
    assert denied.status_code == 403
    assert denied.json() == {
        "code": "FORBIDDEN",
        "message": f"Missing access: {MANAGE}",
        "procedure": "setGreeting",
    }

    role = await rpc("auth", "createRole", {"name": "greeters", "rules": [READ, MANAGE]}, admin)
    assert role.status_code == 200, role.text
    role_id = role.json()["createRole"]["id"]
    updated = await rpc(
        "auth", "updateApplication", {"id": app["id"], "roles": ["applications", role_id]}, admin
    )
    assert sorted(updated.json()["updateApplication"]["roles"]) == sorted(["applications", role_id])

    ok = await rpc("hello", "setGreeting", {"template": "Hi {name}"}, headers=bearer)
    assert ok.status_code == 200, ok.text
    greeting = await rpc("hello", "getGreeting", {"name": "CI"}, headers=bearer)
    assert greeting.json() == {"getGreeting": {"message": "Hi CI"}}

    # Removing the role takes effect on the next request.
    await rpc("auth", "updateApplication", {"id": app["id"], "roles": ["applications"]}, admin)
    again = await rpc("hello", "setGreeting", {"template": "Yo {name}"}, headers=bearer)
    assert again.status_code == 403


async def test_lists_never_show_a_secret(rpc, principals):
    admin = await principals.admin()
    created = await _create(rpc, admin)
    secret = created["token"].split("_", 2)[2]
    listed = await rpc("auth", "getApplications", None, admin)
    body = listed.text
    assert secret not in body and "sha256" not in body and "ck_" not in body
    app = listed.json()["getApplications"]["applications"][0]
    assert set(app) == {
        "id",
        "name",
        "description",
        "roles",
        "teams",
        "createdBy",
        "createdAt",
        "updatedAt",
        "lastUsedAt",
        "expiresAt",
    }
    assert app["createdBy"] == f"user:{admin.id}"


@pytest.mark.parametrize("procedure", ["getGreeting", "setGreeting"])
async def test_bad_tokens_are_rejected_even_on_public_procedures(rpc, principals, procedure):
    admin = await principals.admin()
    created = await _create(rpc, admin)
    token = created["token"]
    app_id = created["application"]["id"]
    _, _, secret = token.split("_", 2)
    other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
    unknown_id = "00000000-0000-4000-8000-000000000000"
    candidates = [
        "garbage",
        "ck_garbage",
        f"ck_{app_id}",
        f"ck_{app_id}_",
        f"ck_{app_id}_{other_secret}",
        f"ck_{unknown_id}_{secret}",
        f"ck_{app_id}_{secret}!",
        f"cs_{app_id}_{secret}",
    ]
    for candidate in candidates:
        response = await rpc(
            "hello",
            procedure,
            {"template": "x {name}"} if procedure == "setGreeting" else {},
            headers={"Authorization": f"Bearer {candidate}"},
        )
        assert response.status_code == 401, candidate
        assert response.json() == {"code": "UNAUTHORIZED", "message": "Invalid API key"}
        assert secret not in response.text
    for header in ("Basic abc", "Bearer", "Token x"):
        response = await rpc("hello", "getGreeting", {}, headers={"Authorization": header})
        assert response.status_code == 401


async def test_regenerate_delete_and_expiry_take_effect_on_the_next_request(rpc, principals):
    admin = await principals.admin()
    created = await _create(rpc, admin)
    app_id = created["application"]["id"]
    old = {"Authorization": f"Bearer {created['token']}"}
    assert (await rpc("hello", "getGreeting", {}, headers=old)).status_code == 200

    regenerated = await rpc("auth", "regenerateApplicationSecret", {"id": app_id}, admin)
    new_token = regenerated.json()["regenerateApplicationSecret"]["token"]
    assert TOKEN.match(new_token) and new_token != created["token"]
    new = {"Authorization": f"Bearer {new_token}"}
    assert (await rpc("hello", "getGreeting", {}, headers=old)).status_code == 401
    assert (await rpc("hello", "getGreeting", {}, headers=new)).status_code == 200

    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await rpc("auth", "updateApplication", {"id": app_id, "expiresAt": past}, admin)
    assert (await rpc("hello", "getGreeting", {}, headers=new)).status_code == 401
    await rpc("auth", "updateApplication", {"id": app_id, "expiresAt": None}, admin)
    assert (await rpc("hello", "getGreeting", {}, headers=new)).status_code == 200

    deleted = await rpc("auth", "deleteApplication", {"id": app_id}, admin)
    assert deleted.json() == {"deleteApplication": {"id": app_id}}
    assert (await rpc("hello", "getGreeting", {}, headers=new)).status_code == 401
    missing = await rpc("auth", "deleteApplication", {"id": app_id}, admin)
    assert missing.status_code == 404
    assert missing.json()["message"] == f"Application not found: {app_id}"


async def test_expiry_passes_while_in_use(rpc, principals, checkstack_host):
    admin = await principals.admin()
    soon = datetime.now(UTC) + timedelta(hours=1)
    created = await _create(rpc, admin, expiresAt=soon.isoformat())
    assert created["application"]["expiresAt"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert (await rpc("hello", "getGreeting", {}, headers=bearer)).status_code == 200
    backend = checkstack_host.auth
    backend.now = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert (await rpc("hello", "getGreeting", {}, headers=bearer)).status_code == 401
    naive = await rpc(
        "auth", "createApplication", {"name": "x", "expiresAt": "2030-01-01T00:00:00"}, admin
    )
    assert naive.status_code == 400


async def _last_used(principals, app_id):
    async with principals.ctx() as ctx:
        app = await ctx.session.get(Application, app_id)
        return app.last_used_at


async def test_last_used_advances_with_throttled_writes(rpc, principals, checkstack_host):
    backend: DatabaseAuthBackend = checkstack_host.auth
    app = await principals.app()
    assert await _last_used(principals, app.id) is None

    writes = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE AUTH_APPLICATION"):
            writes.append(statement)

    engine = checkstack_host.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):  # 1,000 calls, 50 at a time
            responses = await asyncio.gather(
                *(rpc("hello", "getGreeting", {}, app) for _ in range(50))
            )
            assert {r.status_code for r in responses} == {200}
        await backend.flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 1 <= len(writes) <= 3
    first = await _last_used(principals, app.id)
    assert first is not None

    # A minute later the next call records a newer time.
    later = datetime.now(UTC) + timedelta(minutes=2)
    backend.now = lambda: later
    assert (await rpc("hello", "getGreeting", {}, app)).status_code == 200
    await backend.flush()
    second = await _last_used(principals, app.id)
    assert second.replace(tzinfo=None) > first.replace(tzinfo=None)
    listed = await rpc("auth", "getApplications", None, await principals.admin())
    [info] = [a for a in listed.json()["getApplications"]["applications"] if a["id"] == app.id]
    assert info["lastUsedAt"] is not None


async def test_a_caller_cannot_grant_what_it_does_not_hold(rpc, principals):
    admin = await principals.admin()
    role = await rpc("auth", "createRole", {"name": "greeters", "rules": [MANAGE]}, admin)
    greeters = role.json()["createRole"]["id"]
    key_manager = await principals.app("auth.applications.manage")

    denied = await rpc("auth", "createApplication", {"name": "x", "roles": [greeters]}, key_manager)
    assert denied.status_code == 403
    assert denied.json()["message"] == (
        f"You cannot grant role greeters: it holds access rules you do not hold: {MANAGE}"
    )
    own = await rpc("auth", "createApplication", {"name": "x"}, key_manager)
    assert own.status_code == 200
    app_id = own.json()["createApplication"]["application"]["id"]
    escalate = await rpc(
        "auth", "updateApplication", {"id": app_id, "roles": ["admin"]}, key_manager
    )
    assert escalate.status_code == 403
    assert escalate.json()["message"] == "Only administrators can grant the admin role"

    role_manager = await principals.user("auth.roles.manage")
    made = await rpc("auth", "createRole", {"name": "sneaky", "rules": [MANAGE]}, role_manager)
    assert made.status_code == 403
    assert made.json()["message"] == f"You cannot grant access rules you do not hold: {MANAGE}"
    grow = await rpc(
        "auth", "updateRole", {"id": greeters, "rules": [MANAGE, "auth.users.manage"]}, role_manager
    )
    assert grow.status_code == 403
    # A role holding more than the caller is not the caller's to change, not even its name.
    rename = await rpc(
        "auth", "updateRole", {"id": greeters, "name": "Greeters", "rules": [MANAGE]}, role_manager
    )
    assert rename.status_code == 403
    assert rename.json()["message"] == (
        f"You cannot change role greeters: it holds access rules you do not hold: {MANAGE}"
    )
    own = await rpc("auth", "createRole", {"name": "mine"}, role_manager)
    mine = own.json()["createRole"]["id"]
    renamed = await rpc("auth", "updateRole", {"id": mine, "name": "Mine"}, role_manager)
    assert renamed.status_code == 200, renamed.text


async def test_validation_and_not_found(rpc, principals):
    admin = await principals.admin()
    empty = await rpc("auth", "createApplication", {"name": ""}, admin)
    assert empty.status_code == 400
    assert empty.json()["data"]["issues"][0]["path"] == ["name"]
    unknown_role = await rpc("auth", "createApplication", {"name": "x", "roles": ["nope"]}, admin)
    assert unknown_role.status_code == 400
    assert unknown_role.json()["data"]["issues"][0]["message"] == "Role not found: nope"
    implicit = await rpc("auth", "createApplication", {"name": "x", "roles": ["users"]}, admin)
    assert implicit.status_code == 400
    # Every bad role is named, each at its place, not only the first.
    several = await rpc(
        "auth", "createApplication", {"name": "x", "roles": ["nope", "users", "anonymous"]}, admin
    )
    assert several.status_code == 400, several.text
    assert several.json()["data"]["issues"] == [
        {"message": "Role not found: nope", "path": ["roles", 0]},
        {"message": "The users role cannot be assigned: every user holds it", "path": ["roles", 1]},
        {
            "message": "The anonymous role cannot be assigned: everyone holds it",
            "path": ["roles", 2],
        },
    ]
    missing = await rpc("auth", "updateApplication", {"id": "nope", "name": "y"}, admin)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Application not found: nope"


async def test_applications_hold_what_anonymous_callers_hold(rpc, principals):
    bare = await principals.app(bare=True)
    assert (await rpc("hello", "getGreeting", {}, bare)).status_code == 200
    admin = await principals.admin()
    await rpc("auth", "updateRole", {"id": "anonymous", "rules": []}, admin)
    assert (await rpc("hello", "getGreeting", {}, bare)).status_code == 403
    anonymous = await rpc("hello", "getGreeting", {})
    assert anonymous.status_code == 401
    assert anonymous.json()["message"] == "Authentication required"
