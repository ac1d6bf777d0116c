"""``checkstack admin``, ``apps`` and ``roles`` against the configured database (SPEC §5.2)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner

from checkstack_core.auth import RequestInfo
from checkstack_core.cli import cli
from checkstack_core.errors import Unauthorized
from checkstack_core.host import Host
from checkstack_core.settings import Settings

TOKEN = re.compile(r"^ck_[0-9a-f-]{36}_[A-Za-z0-9]{32,}$")


@pytest.fixture
def env(checkstack_database_url: str) -> dict[str, Any]:
    return {
        "CHECKSTACK_DATABASE_URL": checkstack_database_url,
        "CHECKSTACK_PLUGINS": "auth,hello",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_ADMIN_PASSWORD": None,  # unset: prompt
    }


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
    return result


def authenticate(env: dict[str, str], token: str) -> Any:
    async def check() -> Any:
        host = Host(Settings.load(env))
        await host.start()
        try:
            async with host.service_context("auth") as ctx:
                return await host.auth.authenticate(
                    RequestInfo(headers={"authorization": f"Bearer {token}"}), uow=ctx.uow
                )
        finally:
            await host.stop()

    return asyncio.run(check())


def test_apps_lifecycle(env):
    role = invoke(env, "roles", "create", "deployers", "--rule", "hello.hello.manage")
    assert role.exit_code == 0, role.output
    created = invoke(
        env, "apps", "create", "ci", "--description", "pipeline", "--role", "deployers"
    )
    assert created.exit_code == 0, created.output
    lines = created.output.strip().splitlines()
    token = lines[-1]
    assert TOKEN.match(token)
    assert token not in "\n".join(lines[:-1])
    app_id = token.split("_", 2)[1]
    principal = authenticate(env, token)
    assert principal.id == app_id and "hello.hello.manage" in principal.rules

    listed = invoke(env, "apps", "list")
    assert app_id in listed.output and "last used 20" in listed.output
    # Role names, as `apps create` printed them, not the custom role's opaque id.
    [printed] = [line for line in created.output.splitlines() if line.startswith("Roles: ")]
    names = printed.removeprefix("Roles: ").split(", ")
    assert f"roles={','.join(names)}  " in listed.output, (created.output, listed.output)
    assert principal_role(env, "deployers") not in listed.output
    assert token.split("_", 2)[2] not in listed.output
    as_json = json.loads(invoke(env, "apps", "list", "--json").output)
    [app] = as_json["applications"]
    assert sorted(app["roles"]) == sorted(["applications", principal_role(env, "deployers")])
    assert "token" not in app and app["createdBy"] == "cli"

    regenerated = invoke(env, "apps", "regenerate", app_id)
    new_token = regenerated.output.strip().splitlines()[-1]
    assert TOKEN.match(new_token) and new_token != token
    with pytest.raises(Unauthorized):
        authenticate(env, token)
    assert authenticate(env, new_token).id == app_id

    deleted = invoke(env, "apps", "delete", app_id)
    assert deleted.exit_code == 0
    with pytest.raises(Unauthorized):
        authenticate(env, new_token)
    missing = invoke(env, "apps", "delete", app_id)
    assert missing.exit_code == 1 and f"Application not found: {app_id}" in missing.output


def principal_role(env: dict[str, str], name: str) -> str:
    roles = json.loads(invoke(env, "roles", "list", "--json").output)["roles"]
    return next(r["id"] for r in roles if r["name"] == name)


def test_apps_create_json_and_errors(env):
    created = invoke(env, "apps", "create", "bot", "--json", "--expires-at", "2099-01-01T00:00:00Z")
    payload = json.loads(created.output)
    assert TOKEN.match(payload["token"]) and payload["token"].split("_", 2)[1] == payload["id"]
    unknown = invoke(env, "apps", "create", "bot", "--role", "nope")
    assert unknown.exit_code == 1 and "Role not found: nope" in unknown.output
    naive = invoke(env, "apps", "create", "bot", "--expires-at", "2099-01-01T00:00:00")
    assert naive.exit_code == 2 and "time zone" in naive.output


def test_roles_grant_and_revoke(env):
    assert invoke(env, "roles", "create", "Readers").exit_code == 0
    granted = invoke(env, "roles", "grant", "readers", "hello.hello.manage", "auth.users.read")
    assert granted.exit_code == 0, granted.output
    assert "auth.users.read, hello.hello.manage" in granted.output
    revoked = invoke(env, "roles", "revoke", "Readers", "auth.users.read")
    assert "now holds: hello.hello.manage" in revoked.output
    unknown = invoke(env, "roles", "grant", "Readers", "hello.nope.read")
    assert unknown.exit_code == 1 and "Unknown access rule: hello.nope.read" in unknown.output
    rules = invoke(env, "roles", "rules")
    assert "hello.hello.read [default,public]" in rules.output
    # Removing a public rule from anonymous is remembered (the next start does not re-add it).
    invoke(env, "roles", "revoke", "anonymous", "hello.hello.read")
    listed = invoke(env, "roles", "list")
    assert re.search(r"^anonymous  Anonymous \(system\): -$", listed.output, re.M), listed.output
    assert invoke(env, "roles", "delete", "Readers").exit_code == 0
    system = invoke(env, "roles", "delete", "users")
    assert system.exit_code == 1 and "Cannot delete system role" in system.output


def test_admin_create(env):
    weak = invoke(env, "admin", "create", "--email", "root@example.com", input="short\nshort\n")
    assert weak.exit_code == 1
    assert "Password must be at least 8 characters" in weak.output
    prompted = invoke(
        env, "admin", "create", "--email", "root@example.com", input="Root-pass-1\nRoot-pass-1\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert "Root-pass-1" not in prompted.output
    automated = invoke(
        {**env, "CHECKSTACK_ADMIN_PASSWORD": "Other-pass-2"},
        "admin",
        "create",
        "--email",
        "ops@example.com",
    )
    assert automated.exit_code == 0, automated.output
    again = invoke(
        {**env, "CHECKSTACK_ADMIN_PASSWORD": "Other-pass-2"},
        "admin",
        "create",
        "--email",
        "OPS@example.com",
    )
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.e2e
def test_the_installed_command_prints_the_token_alone_on_the_last_line(env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "apps", "create", "ci", "--role", "applications"],
        env={**os.environ, **{k: v for k, v in env.items() if v is not None}},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN.match(result.stdout.splitlines()[-1])
    token = result.stdout.splitlines()[-1]
    assert token.split("_", 2)[2] not in result.stderr
