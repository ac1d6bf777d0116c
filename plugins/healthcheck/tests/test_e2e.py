"""End to end against real ``checkstack serve`` processes (auth, catalog, healthcheck, http and
tcp): the seed's documented calls with an API key whose role holds the read rule, status
transitions against a local HTTP server, an interval changed from 60 s to 1 s through the API
without restart, and two worker processes running each slot once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from checkstack_core.testing.server import RunningServer

pytestmark = pytest.mark.e2e


class Target:
    """A threaded HTTP server on 127.0.0.1 (the test process is synchronous here)."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.hits += 1
                body = b"ok"
                self.send_response(target.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_target() -> Iterator[Target]:
    target = Target()
    try:
        yield target
    finally:
        target.close()


def cli(server: Any, env: dict[str, str], *args: str) -> str:
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


def call(url: str, procedure: str, input: Any, plugin: str = "healthcheck", **headers: str) -> Any:
    response = httpx.post(
        f"{url}/api/{plugin}/", json={procedure: input}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def keys(server: Any, env: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A manager's key (manage rules) and a reader's (a role holding only the read rule)."""
    cli(
        server,
        env,
        "roles",
        "create",
        "hc-managers",
        "--rule",
        "healthcheck.healthcheck.manage",
        "--rule",
        "healthcheck.healthcheck.read",
        "--rule",
        "catalog.catalog.manage",
    )
    cli(server, env, "roles", "create", "hc-readers", "--rule", "healthcheck.healthcheck.read")
    tokens = [
        json.loads(cli(server, env, "apps", "create", name, "--role", role, "--json"))["token"]
        for name, role in (("hc-bot", "hc-managers"), ("hc-reader", "hc-readers"))
    ]
    return {"Authorization": f"Bearer {tokens[0]}"}, {"Authorization": f"Bearer {tokens[1]}"}


def wait_for(check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within} s")
        time.sleep(0.1)


def history(url: str, key: dict[str, str], **query: Any) -> dict[str, Any]:
    return dict(call(url, "getHistory", {"limit": 500, **query}, **key))


def test_documented_calls_transitions_and_a_live_interval_change(
    checkstack_server, checkstack_server_env, http_target
):
    url = checkstack_server.url
    manager, reader = keys(checkstack_server, checkstack_server_env)
    system = call(url, "createSystem", {"name": "Checkout"}, plugin="catalog", **manager)["id"]
    check = call(
        url,
        "createHealthCheck",
        {"name": "Checkout API", "strategyId": "http", "config": {"url": http_target.url}},
        **manager,
    )
    assert check["intervalSeconds"] == 60
    call(url, "assignHealthCheck", {"id": check["id"], "systemId": system}, **manager)
    # A new assignment runs at once.
    wait_for(lambda: history(url, reader, checkId=check["id"])["total"] >= 1)

    # The seed's calls, verbatim, with a key whose role holds the read rule; then batched.
    listed = call(url, "getHealthChecks", {}, **reader)
    assert [c["id"] for c in listed["healthChecks"]] == [check["id"]]
    batch = httpx.post(
        f"{url}/api/healthcheck/",
        json={
            "getHealthChecks": {},
            "getHistory": {"systemId": system, "limit": 10},
            "getSystemHealth": {"systemId": system},
        },
        headers=reader,
        timeout=30,
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["getHistory"]["runs"][0]["status"] == "healthy"
    assert batch.json()["getSystemHealth"]["status"] == "healthy"

    # 60 s → 1 s through the API: runs every second from then on, no restart.
    call(url, "updateHealthCheck", {"id": check["id"], "intervalSeconds": 1}, **manager)
    before = history(url, reader, checkId=check["id"])["total"]
    wait_for(lambda: history(url, reader, checkId=check["id"])["total"] >= before + 3)

    # Failures: degraded after 2, unhealthy after 5, healthy again after a success.
    http_target.status = 500

    def changes() -> list[tuple[str, str]]:
        found = call(url, "getStatusChanges", {"systemId": system}, **reader)["changes"]
        return [(c["fromStatus"], c["toStatus"]) for c in reversed(found)]

    wait_for(lambda: len(changes()) >= 2)
    http_target.status = 200
    wait_for(lambda: len(changes()) >= 3)
    assert changes()[:3] == [
        ("healthy", "degraded"),
        ("degraded", "unhealthy"),
        ("unhealthy", "healthy"),
    ]

    # Pausing stops it.
    call(url, "pauseHealthCheck", {"id": check["id"]}, **manager)
    wait_for(lambda: call(url, "getHealthCheck", {"id": check["id"]}, **reader)["paused"])
    paused_at = history(url, reader, checkId=check["id"])["total"]
    hits = http_target.hits
    call(url, "resumeHealthCheck", {"id": check["id"]}, **manager)
    wait_for(lambda: history(url, reader, checkId=check["id"])["total"] > paused_at)
    assert http_target.hits > hits
    # Unassigning stops it too: its schedule is gone from the database.
    call(url, "unassignHealthCheck", {"id": check["id"], "systemId": system}, **manager)
    assert call(url, "getHealthCheck", {"id": check["id"]}, **reader)["assignments"] == []


class TwoWorkers(RunningServer):
    """``checkstack serve --workers 2`` on the inherited socket."""

    def serve_command(self, fd: int, *args: str) -> list[str]:
        return super().serve_command(fd, *args, "--workers", "2")


def test_two_workers_run_each_slot_once(
    checkstack_database_url, checkstack_server_env, checkstack_server_timeout, tmp_path, http_target
):
    server = TwoWorkers(
        checkstack_database_url,
        tmp_path,
        checkstack_server_env,
        startup_timeout=checkstack_server_timeout,
    )
    with server:
        url = server.url
        manager, reader = keys(server, checkstack_server_env)
        system = call(url, "createSystem", {"name": "Shop"}, plugin="catalog", **manager)["id"]
        check = call(
            url,
            "createHealthCheck",
            {
                "name": "Shop",
                "strategyId": "http",
                "config": {"url": http_target.url},
                "intervalSeconds": 1,
            },
            **manager,
        )
        call(url, "assignHealthCheck", {"id": check["id"], "systemId": system}, **manager)
        wait_for(lambda: history(url, reader, checkId=check["id"])["total"] >= 2)
        window = 20
        first = history(url, reader, checkId=check["id"], order="asc")["runs"][0]
        start = datetime.fromisoformat(first["timestamp"])
        wait_for(
            lambda: history(url, reader, checkId=check["id"])["total"] >= window + 3,
            within=window * 3,
        )
        runs = history(url, reader, checkId=check["id"], order="asc")["runs"]
    times = [datetime.fromisoformat(r["timestamp"]) for r in runs]
    in_window = [t for t in times if 0 <= (t - start).total_seconds() < window]
    # One run per one-second slot: no duplicates (two processes), none skipped beyond jitter.
    assert window - 2 <= len(in_window) <= window + 2, [str(t) for t in in_window]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.5, gaps
