"""End to end on a real ``checkstack serve`` process (auth, catalog, healthcheck, command), with
API keys: an application whose role holds healthcheck manage but not the command rule is
refused; one holding the command rule creates and runs a check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

ENV = {"CHECKSTACK_PLUGINS": "auth,catalog,healthcheck,healthcheck-command"}


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {**ENV, "CHECKSTACK_STRICT_PLUGINS": "1", "CHECKSTACK_SECRET_KEY": "e2e-command-key"}


def admin_key(server: Any) -> dict[str, str]:
    """Headers of a new application holding the admin role (the one CLI call)."""
    done = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "apps", "create", "boot", "--role", "admin"],
        env={**os.environ, **ENV, "CHECKSTACK_DATABASE_URL": server.database_url},
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return {"Authorization": f"Bearer {done.stdout.strip().splitlines()[-1]}"}


def api_key(server: Any, admin: dict[str, str], name: str, *rules: str) -> dict[str, str]:
    """Headers of a new application whose new role holds ``rules`` (through the auth API)."""
    role = call(server, admin, "createRole", {"name": name, "rules": list(rules)}, "auth")
    app = call(
        server,
        admin,
        "createApplication",
        {"name": name, "roles": [role.json()["createRole"]["id"]]},
        "auth",
    )
    return {"Authorization": f"Bearer {app.json()['createApplication']['token']}"}


def call(
    server: Any, key: dict[str, str], procedure: str, input: Any, plugin: str = "healthcheck"
) -> httpx.Response:
    response = httpx.post(
        f"{server.url}/api/{plugin}/", json={procedure: input}, headers=key, timeout=30
    )
    assert response.status_code in (200, 403), response.text
    return response


def test_only_the_command_rule_creates_and_runs_command_checks(checkstack_server, tmp_path: Path):
    manage = ("healthcheck.healthcheck.manage", "healthcheck.healthcheck.read")
    admin = admin_key(checkstack_server)
    attacker = api_key(checkstack_server, admin, "hc-managers", *manage)
    operator = api_key(
        checkstack_server, admin, "cmd-operators", *manage, "healthcheck-command.command.manage"
    )
    marker = tmp_path / "ran"
    check = {
        "name": "touch",
        "strategyId": "command",
        "config": {"command": "touch", "args": [str(marker)]},
    }

    refused = call(checkstack_server, attacker, "createHealthCheck", check)
    assert refused.status_code == 403, refused.text
    assert "healthcheck-command.command.manage" in refused.text
    assert not marker.exists()

    created = call(checkstack_server, operator, "createHealthCheck", check)
    assert created.status_code == 200, created.text
    check_id = created.json()["createHealthCheck"]["id"]
    assert call(checkstack_server, attacker, "runNow", {"id": check_id}).status_code == 403
    assert not marker.exists()
    ran = call(checkstack_server, operator, "runNow", {"id": check_id}).json()["runNow"]
    assert (ran["status"], ran["message"]) == ("healthy", "Exit code 0")
    assert marker.exists()
