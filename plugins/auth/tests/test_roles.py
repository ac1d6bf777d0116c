"""Roles and rules (SPEC §5.3): built-in roles, the startup sync and the role procedures."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from checkstack_auth import plugin as auth_plugin
from checkstack_auth import service
from checkstack_hello import plugin as hello_plugin

from checkstack_core.auth import RequestInfo
from checkstack_core.host import Host


@asynccontextmanager
async def started(settings: Any, *plugins: Any, **changes: Any) -> AsyncIterator[Host]:
    host = Host(dataclasses.replace(settings, **changes), plugins=plugins, discover_installed=False)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def _roles(host: Host) -> dict[str, list[str]]:
    async with host.service_context("auth") as ctx:
        return {role.id: role.rules for role in await service.list_roles(ctx)}


async def test_default_and_public_rules_are_synced(rpc, principals):
    admin = await principals.admin()
    roles = {
        r["id"]: r for r in (await rpc("auth", "getRoles", None, admin)).json()["getRoles"]["roles"]
    }
    assert set(roles) == {"admin", "users", "anonymous", "applications"}
    assert roles["users"]["rules"] == ["hello.hello.read"]
    assert roles["anonymous"]["rules"] == ["hello.hello.read"]
    assert roles["applications"]["rules"] == []
    assert "hello.hello.manage" in roles["admin"]["rules"]
    assert roles["anonymous"]["assignable"] is False and roles["admin"]["assignable"] is True
    rules = {
        r["id"]: r for r in (await rpc("auth", "getRules", None, admin)).json()["getRules"]["rules"]
    }
    assert rules["hello.hello.read"] == {
        "id": "hello.hello.read",
        "pluginId": "hello",
        "level": "read",
        "description": "Read the greeting",
        "default": True,
        "public": True,
    }
    assert "auth.applications.manage" in rules


async def test_removals_survive_restarts(checkstack_settings):
    async with started(checkstack_settings, auth_plugin, hello_plugin) as host:
        async with host.service_context("auth") as ctx:
            await service.update_role(ctx, "anonymous", rules=[])
            await service.update_role(ctx, "users", rules=[])
        # Anonymous callers lose the rule at once (the cache is validated on every call).
        async with host.service_context("auth") as ctx:
            anonymous = await host.auth.anonymous(uow=ctx.uow)
        assert "hello.hello.read" not in anonymous.rules
    async with started(checkstack_settings, auth_plugin, hello_plugin) as host:
        roles = await _roles(host)
        assert roles["anonymous"] == [] and roles["users"] == []
        async with host.service_context("auth") as ctx:
            await service.update_role(ctx, "anonymous", rules=["hello.hello.read"])
    async with started(checkstack_settings, auth_plugin, hello_plugin) as host:
        roles = await _roles(host)
        assert roles["anonymous"] == ["hello.hello.read"] and roles["users"] == []


async def test_rules_of_uninstalled_plugins_leave_roles(checkstack_settings):
    async with (
        started(checkstack_settings, auth_plugin, hello_plugin) as host,
        host.service_context("auth") as ctx,
    ):
        role = await service.create_role(
            ctx, "greeters", "", ["hello.hello.manage", "auth.users.read"]
        )
    # Disabled (still installed): kept, so switching it back on restores the role.
    async with started(
        checkstack_settings,
        auth_plugin,
        hello_plugin,
        disabled_plugins=["hello"],
        strict_plugins=False,
    ) as host:
        assert (await _roles(host))[role.id] == ["auth.users.read", "hello.hello.manage"]
    # Uninstalled: gone from every role.
    async with started(checkstack_settings, auth_plugin) as host:
        roles = await _roles(host)
        assert roles[role.id] == ["auth.users.read"]
        assert roles["anonymous"] == [] and roles["users"] == []


async def test_admin_holds_rules_of_plugins_installed_later(checkstack_settings):
    async with (
        started(checkstack_settings, auth_plugin) as host,
        host.service_context("auth") as ctx,
    ):
        user = await service.create_user(ctx, "root@example.com", "Admin-pass-1", roles=["admin"])
        await service.open_session(ctx, user)
        token = ctx.response.cookies[-1].value
    async with started(checkstack_settings, auth_plugin, hello_plugin) as host:
        async with host.service_context("auth") as ctx:
            principal = await host.auth.authenticate(
                RequestInfo(cookies={"checkstack_session": token}), uow=ctx.uow
            )
        assert principal is not None and principal.is_admin
        assert principal.holds("hello.hello.manage")
        assert (await _roles(host))["anonymous"] == ["hello.hello.read"]


async def test_role_procedures(rpc, principals):
    admin = await principals.admin()
    unknown = await rpc("auth", "createRole", {"name": "x", "rules": ["hello.nope.read"]}, admin)
    assert unknown.status_code == 400
    assert unknown.json()["data"]["issues"] == [
        {"message": "Unknown access rule: hello.nope.read", "path": ["rules", 0]}
    ]
    created = await rpc(
        "auth", "createRole", {"name": "Editors", "rules": ["hello.hello.manage"]}, admin
    )
    role = created.json()["createRole"]
    assert role["system"] is False and role["rules"] == ["hello.hello.manage"]
    clash = await rpc("auth", "createRole", {"name": "editors"}, admin)
    assert clash.status_code == 409
    admin_rules = await rpc("auth", "updateRole", {"id": "admin", "rules": []}, admin)
    assert admin_rules.status_code == 400
    renamed = await rpc("auth", "updateRole", {"id": "admin", "name": "Admins"}, admin)
    assert renamed.json()["updateRole"]["name"] == "Admins"
    system = await rpc("auth", "deleteRole", {"id": "users"}, admin)
    assert system.status_code == 403
    assert system.json()["message"] == "Cannot delete system role"
    missing = await rpc("auth", "deleteRole", {"id": "nope"}, admin)
    assert missing.status_code == 404 and missing.json()["message"] == "Role not found: nope"

    app = await principals.app(roles=(role["id"],))
    assert (await rpc("hello", "setGreeting", {"template": "Yo {name}"}, app)).status_code == 200
    # Deleting a role that applications and users hold cascades (no dangling links).
    deleted = await rpc("auth", "deleteRole", {"id": role["id"]}, admin)
    assert deleted.status_code == 200
    assert (await rpc("hello", "setGreeting", {"template": "Hi {name}"}, app)).status_code == 403
