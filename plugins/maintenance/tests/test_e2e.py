"""End to end against a real ``checkstack serve`` process (auth, catalog, maintenance): the
documented calls with an API key made by the CLI, and the acceptance of the issue — a window
scheduled to start a few seconds from now goes in progress and then completes on its own, without
any request to the server in between, and the same after a restart that skipped both times.

Nothing here bets on a margin: the test watches the database (not the server, so it makes no
request) until each transition is stored, with generous deadlines for a loaded machine, and checks
from the timeline's own timestamps that no transition ran before its time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from checkstack_core.db import utcnow

pytestmark = pytest.mark.e2e

SECRET_KEY = "e2e-maintenance-key-not-for-production"
#: How long a transition may take to show up after it fell due (a loaded machine is slow).
DEADLINE = 60.0
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


def parse(iso_time: str) -> datetime:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00"))


def sleep_until(iso_time: str, extra: float) -> None:
    """Wait, making no request, until ``extra`` seconds after ``iso_time``."""
    target = parse(iso_time) + timedelta(seconds=extra)
    time.sleep(max((target - utcnow()).total_seconds(), 0))


def stored_status(database_url: str, window_id: str) -> str | None:
    """The window's status as stored, read from the database (no request to the server)."""

    async def read() -> str | None:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                statement = sa.text("SELECT status FROM maintenance_window WHERE id = :id")
                return (await conn.execute(statement, {"id": window_id})).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(read())


def wait_for_status(database_url: str, window_id: str, wanted: set[str], due: str) -> str:
    """Poll the database until the window's status is one of ``wanted``; fail ``DEADLINE``
    seconds after ``due`` (when the transition fell due)."""
    deadline = parse(due) + timedelta(seconds=DEADLINE)
    while True:
        status = stored_status(database_url, window_id)
        if status in wanted:
            return status
        assert utcnow() < deadline, f"still {status!r}, wanted {wanted} by {deadline}"
        time.sleep(0.2)


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

    # The acceptance: a window starting 3 s from now goes in progress, then completes, with no
    # request to the server in between (only the database is watched).
    start, end = iso(3), iso(8)
    scheduled = post(url, {"scheduleWindow": {**body, "startAt": start, "endAt": end}}, token)
    assert scheduled.status_code == 200, scheduled.text
    window = scheduled.json()["scheduleWindow"]
    assert window["status"] == "scheduled"
    logs = checkstack_server.logs
    db = checkstack_database_url
    assert wait_for_status(db, window["id"], {"in_progress", "completed"}, start), logs()
    assert wait_for_status(db, window["id"], {"completed"}, end) == "completed", logs()
    assert timeline(url, window["id"]) == ("completed", AUTOMATIC), logs()
    assert_on_time(url, window["id"], start, end)

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
    sleep_until(missed["endAt"], 1)  # both times pass while no server runs
    assert stored_status(db, missed["id"]) == "scheduled"
    checkstack_server.start()
    restarted = utcnow().isoformat()
    assert wait_for_status(db, missed["id"], {"completed"}, restarted) == "completed", logs()
    assert timeline(url, missed["id"]) == ("completed", AUTOMATIC), logs()
    assert_on_time(url, missed["id"], missed["startAt"], missed["endAt"])


def assert_on_time(url: str, window_id: str, start: str, end: str) -> None:
    """No automatic transition was stored before it fell due."""
    entries = post(url, {"getWindow": {"id": window_id}}).json()["getWindow"]["timeline"]
    started, completed = (parse(e["createdAt"]) for e in entries[1:3])
    assert started >= parse(start), (started, start)
    assert completed >= parse(end), (completed, end)
    assert started <= completed
