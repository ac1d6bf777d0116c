"""End to end: a real ``checkstack serve`` process (auth, catalog, healthcheck, grpc) called over
HTTP with an API key, checking a real gRPC server; neither the answers nor the server's log ever
hold the secret metadata."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import TOKEN, GrpcServer, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "auth,catalog,healthcheck,healthcheck-grpc",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "e2e-secret-key-for-grpc-checks",
        "CHECKSTACK_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def background_grpc() -> Iterator[GrpcServer]:
    """The test gRPC server, on an event loop of its own thread (this test is synchronous)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server, running = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def api_key(server: Any, env: dict[str, str]) -> dict[str, str]:
    """A key whose role may manage and read health checks (made with the CLI)."""

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "checkstack_core", *args],
            env={**os.environ, "CHECKSTACK_DATABASE_URL": server.database_url, **env},
            cwd=server.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    rules = ["healthcheck.healthcheck.manage", "healthcheck.healthcheck.read"]
    cli("roles", "create", "grpc-checks", *(f"--rule={rule}" for rule in rules))
    created = cli("apps", "create", "grpc-bot", "--role", "grpc-checks", "--json")
    return {"Authorization": f"Bearer {json.loads(created)['token']}"}


def test_grpc_checks_through_a_real_server(
    checkstack_server: Any, checkstack_server_env: dict[str, str], background_grpc: GrpcServer
) -> None:
    key = api_key(checkstack_server, checkstack_server_env)

    def call(procedure: str, body: dict[str, Any]) -> Any:
        response = httpx.post(
            f"{checkstack_server.url}/api/healthcheck/",
            json={procedure: body},
            headers=key,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()[procedure]

    base = {"host": "127.0.0.1", "port": background_grpc.port}
    answers = []
    for config, status, message in [
        ({"service": "shop.Cart"}, "healthy", "Serving"),
        ({"service": "shop.Payments"}, "unhealthy", "Not serving"),
        ({"service": "shop.Gone"}, "unhealthy", "Service unknown to the server"),
        (
            {"service": "shop.Secure", "secretMetadata": {"authorization": f"Bearer {TOKEN}"}},
            "healthy",
            "Serving",
        ),
        ({"service": "shop.Secure"}, "unhealthy", "Authentication failed (UNAUTHENTICATED)"),
    ]:
        check = call(
            "createHealthCheck",
            {"name": "grpc", "strategyId": "grpc", "config": {**base, **config}},
        )
        run = call("runNow", {"id": check["id"]})
        assert (run["status"], run["message"][: len(message)]) == (status, message)
        answers += [check, run]
    answers.append(call("getHealthChecks", {}))
    shown = json.dumps(answers) + checkstack_server.logs()
    assert "Strategy grpc" not in shown  # no run ended in an exception
    assert TOKEN not in shown
