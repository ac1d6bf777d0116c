"""End to end against a real ``checkstack serve`` process (auth, catalog, maintenance): the
documented calls with an API key made by the CLI, and the acceptance of the issue — a window
scheduled to start 3 s from now is in progress 5 s later and completed after its end without any
request in between, and the same after a restart that skipped both times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from checkstack_core.db import utcnow

pytestmark = pytest.mark.e2e

SECRET_KEY = "e2e-maintenance-key-not-for-production"
PLUGINS = "auth,catalog,maintenance"


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_PLUGINS": PLUGINS,
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }


def cli(database_url: str, tmp_path: Any, *args: str) -> str:
    env = {
        **os.environ,
        "CHECKSTACK_DATABASE_URL": database_url,
        "CHECKSTACK_PLUGINS": PLUGINS,
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }
    env.pop("CHECKSTACK_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "checkstack_core", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def post(url: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/api/maintenance/", json=body, headers=headers, timeout=10)


def iso(seconds: float) -> str:
    return (utcnow() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def sleep_until(iso_time: str, extra: float) -> None:
    """Wait, making no request, until ``extra`` seconds after ``iso_time``."""
    target = datetime.fromisoformat(iso_time.replace("Z", "+00:00")) + timedelta(seconds=extra)
    time.sleep(max((target - utcnow()).total_seconds(), 0))


def timeline(url: str, window_id: str) -> tuple[str, list[tuple[str, str | None]]]:
    window = post(url, {"getWindow": {"id": window_id}}).json()["getWindow"]
    return window["status"], [(e["kind"], e["toStatus"]) for e in window["timeline"]]


AUTOMATIC = [("created", None), ("status", "in_progress"), ("status", "completed")]


def test_documented_calls_and_automatic_transitions(
    checkstack_server, checkstack_database_url, tmp_path
):
    url = checkstack_server.url
    # Anonymous callers read the (empty) list: maintenance.read is public.
    empty = post(url, {"getWindows": {}})
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"getWindows": {"windows": [], "total": 0}}

    cli(
        checkstack_database_url,
        tmp_path,
        "roles",
        "create",
        "maintainers",
        "--rule",
        "catalog.catalog.manage",
        "--rule",
        "maintenance.maintenance.manage",
    )
    token = json.loads(
        cli(
            checkstack_database_url,
            tmp_path,
            "apps",
            "create",
            "planner",
            "--role",
            "maintainers",
            "--json",
        )
    )["token"]
    reader_token = json.loads(
        cli(checkstack_database_url, tmp_path, "apps", "create", "reader", "--json")
    )["token"]

    system = httpx.post(
        f"{url}/api/catalog/",
        json={"createSystem": {"name": "Checkout"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()["createSystem"]

    body = {"title": "Payment provider switch", "systemIds": [system["id"]]}
    denied = post(
        url, {"scheduleWindow": {**body, "startAt": iso(3), "endAt": iso(6)}}, reader_token
    )
    assert denied.status_code == 403
    assert denied.json() == {
        "code": "FORBIDDEN",
        "message": "Missing access: maintenance.maintenance.manage",
        "procedure": "scheduleWindow",
    }
    invalid = post(url, {"scheduleWindow": {**body, "startAt": iso(60), "endAt": iso(30)}}, token)
    assert invalid.status_code == 400
    assert invalid.json()["data"]["issues"] == [
        {"message": "endAt must be after startAt", "path": ["endAt"]}
    ]

    # The acceptance: starts 3 s from now, in progress 5 s after scheduling, then completed.
    start, end = iso(3), iso(8)
    scheduled = post(url, {"scheduleWindow": {**body, "startAt": start, "endAt": end}}, token)
    assert scheduled.status_code == 200, scheduled.text
    window = scheduled.json()["scheduleWindow"]
    assert window["status"] == "scheduled"
    time.sleep(5)  # no request in between
    logs = checkstack_server.logs
    assert timeline(url, window["id"]) == ("in_progress", AUTOMATIC[:2]), logs()
    sleep_until(end, 2)
    assert timeline(url, window["id"]) == ("completed", AUTOMATIC), logs()

    listed = post(url, {"getWindows": {}})
    assert listed.json()["getWindows"]["total"] == 1
    # The oRPC twin returns the same data.
    twin = httpx.post(f"{url}/api/maintenance/getWindows", json={"json": {}}, timeout=10)
    assert twin.status_code == 200
    assert twin.json()["json"]["total"] == 1
    assert twin.json()["json"]["windows"][0]["id"] == window["id"]

    # A restart that skips both times: completed, with both entries, right after startup.
    missed = post(
        url, {"scheduleWindow": {**body, "startAt": iso(4), "endAt": iso(5)}}, token
    ).json()["scheduleWindow"]
    checkstack_server.stop()
    sleep_until(missed["endAt"], 1)
    checkstack_server.start()
    assert timeline(url, missed["id"]) == ("completed", AUTOMATIC), logs()
