"""End to end: a real ``checkstack serve`` process (auth, catalog, healthcheck, ssh) called over
HTTP with an API key, checking a real SSH server; neither the answers nor the server's log ever
hold the password or the key."""

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

from .conftest import PASSPHRASE, PASSWORD, USER, Keys, SshServer, start_ssh_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Warning. bcrypt.kdf:UserWarning"),
]


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "auth,catalog,healthcheck,healthcheck-ssh",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "e2e-secret-key-for-ssh-checks",
        "CHECKSTACK_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def background_ssh(keys: Keys) -> Iterator[SshServer]:
    """The test SSH server, on an event loop of its own thread (this test is synchronous)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running, stop = asyncio.run_coroutine_threadsafe(start_ssh_server(keys), loop).result(10)
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
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

    cli(
        "roles",
        "create",
        "ssh-checks",
        "--rule",
        "healthcheck.healthcheck.manage",
        "--rule",
        "healthcheck.healthcheck.read",
        "--rule",
        "healthcheck.details.read",
    )
    created = cli("apps", "create", "ssh-bot", "--role", "ssh-checks", "--json")
    return {"Authorization": f"Bearer {json.loads(created)['token']}"}


def test_ssh_checks_through_a_real_server(
    checkstack_server: Any,
    checkstack_server_env: dict[str, str],
    background_ssh: SshServer,
    keys: Keys,
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

    base = {"host": "127.0.0.1", "port": background_ssh.port, "username": USER}
    pin = keys.host.get_fingerprint()
    answers = []
    for config, status, message in [
        (
            {
                "password": PASSWORD,
                "hostKey": pin,
                "command": "check-db",
                "outputContains": "database: up",
            },
            "healthy",
            "Command succeeded",
        ),
        (
            {"privateKey": keys.client_encrypted, "keyPassphrase": PASSPHRASE, "hostKey": pin},
            "healthy",
            "Logged in",
        ),
        ({"password": "Wrong-pass1", "hostKey": pin}, "unhealthy", "Authentication failed"),
        (
            {"password": PASSWORD, "hostKey": keys.other_host.get_fingerprint()},
            "unhealthy",
            "Host key does not match the configured key",
        ),
        (
            {"password": PASSWORD, "hostKey": pin, "command": "fail"},
            "unhealthy",
            "Command exited with 3 (expected 0)",
        ),
    ]:
        check = call(
            "createHealthCheck",
            {
                "name": "ssh",
                "strategyId": "ssh",
                "timeoutSeconds": 10,
                "config": {**base, **config},
            },
        )
        run = call("runNow", {"id": check["id"]})
        assert (run["status"], run["message"][: len(message)]) == (status, message)
        answers += [check, run, call("getRun", {"id": run["id"]})]
    answers.append(call("getHealthChecks", {}))
    shown = json.dumps(answers) + checkstack_server.logs()
    assert "Strategy ssh" not in shown  # no run ended in an exception
    for secret in (PASSWORD, PASSPHRASE, keys.client_encrypted.splitlines()[2]):
        assert secret not in shown
