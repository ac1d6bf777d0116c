"""End to end against a real ``checkstack serve`` process with the auth, catalog and incident
plugins: the documented calls over HTTP, an API key made with the auth plugin's CLI, the oRPC
twin of each call, and cleanup after a system is deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "auth,catalog,incident",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "incident-e2e-key-not-for-production",
    }


def cli(server: Any, env: dict[str, str], *args: str) -> str:
    """Run ``checkstack ARGS`` on the server's database; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "checkstack_core", *args],
        env={**os.environ, "CHECKSTACK_DATABASE_URL": server.database_url, **env},
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def call(url: str, procedure: str, input: Any, plugin: str = "incident", **headers: str) -> Any:
    response = httpx.post(
        f"{url}/api/{plugin}/", json={procedure: input}, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def orpc(url: str, procedure: str, input: Any, plugin: str = "incident", **headers: str) -> Any:
    response = httpx.post(
        f"{url}/api/{plugin}/{procedure}",
        json={"json": input, "meta": []},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["json"]


def test_documented_calls_over_http(checkstack_server, checkstack_server_env):
    url = checkstack_server.url
    assert call(url, "getIncidents", {}) == {"incidents": [], "total": 0}

    cli(
        checkstack_server,
        checkstack_server_env,
        "roles",
        "create",
        "incident-managers",
        "--rule",
        "incident.incident.manage",
        "--rule",
        "catalog.catalog.manage",
    )
    created = json.loads(
        cli(
            checkstack_server,
            checkstack_server_env,
            "apps",
            "create",
            "status-bot",
            "--role",
            "incident-managers",
            "--json",
        )
    )
    key = {"Authorization": f"Bearer {created['token']}"}
    plain = json.loads(
        cli(checkstack_server, checkstack_server_env, "apps", "create", "reader", "--json")
    )
    reader = {"Authorization": f"Bearer {plain['token']}"}

    system = call(url, "createSystem", {"name": "Checkout"}, plugin="catalog", **key)
    body = {
        "title": "Checkout errors",
        "severity": "major",
        "systemIds": [system["id"]],
        "message": "We are investigating elevated error rates.",
    }
    incident = call(url, "createIncident", body, **key)
    assert incident["status"] == "investigating"
    assert incident["createdBy"]["name"] == "status-bot"

    refused = httpx.post(f"{url}/api/incident/", json={"createIncident": body}, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Missing access: incident.incident.manage"

    listed = call(url, "getIncidents", {})
    assert listed == {"incidents": [incident], "total": 1}
    assert orpc(url, "getIncidents", {}) == listed
    detail = call(url, "getIncident", {"id": incident["id"]})
    assert orpc(url, "getIncident", {"id": incident["id"]}) == detail
    assert [e["message"] for e in detail["timeline"]] == [body["message"]]

    twin = orpc(url, "createIncident", {**body, "title": "Twin"}, **key)
    assert twin["title"] == "Twin" and twin["systemIds"] == [system["id"]]
    resolved = orpc(url, "resolveIncident", {"id": twin["id"]}, **key)
    assert resolved["incident"]["resolvedAt"] is not None

    # Deleting the system (through the catalog) removes it from the incidents.
    call(url, "deleteSystem", {"id": system["id"]}, plugin="catalog", **key)
    # The cleanup runs on the work queue once the delete has committed: wait for it (bounded).
    deadline = time.monotonic() + 60
    detail = call(url, "getIncident", {"id": incident["id"]})
    while detail["systemIds"] and time.monotonic() < deadline:
        time.sleep(0.05)
        detail = call(url, "getIncident", {"id": incident["id"]})
    assert detail["systemIds"] == []
    assert detail["timeline"][-1]["kind"] == "system_removed"
