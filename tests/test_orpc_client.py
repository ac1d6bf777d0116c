"""The npm oRPC client (``RPCLink`` from ``@orpc/client``) against live Checkstack servers.

Runs the node tests of ``tests/orpc-client/`` (``node --test``) twice: against ``checkstack
serve`` with the installed plugins, as an API user would meet it, and against
``fixture_server.py`` (test plugins reaching every error code, in-memory API keys). Installs the
node packages with ``npm ci`` when they are missing; skipped only where Node.js is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkstack_core.testing.server import RunningServer

CLIENT_DIR = Path(__file__).parent / "orpc-client"
#: Variables the node tests read; cleared so only what a test passes reaches them.
NODE_TEST_VARIABLES = (
    "CHECKSTACK_URL",
    "CHECKSTACK_TOKEN",
    "CHECKSTACK_LIMITED_TOKEN",
    "CHECKSTACK_USER_TOKEN",
    "CHECKSTACK_FIXTURE",
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the client's packages installed (``npm ci`` once if needed)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: the oRPC client tests need it")
    lock = CLIENT_DIR / "package-lock.json"
    installed = CLIENT_DIR / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENT_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return node


def run_node_tests(node: str, env: dict[str, str]) -> tuple[dict[str, int], str]:
    """Run the node test files; fail with their report unless all pass.

    Returns the counts (``pass``, ``fail``, ``skipped``) and the report.
    """
    clean = {k: v for k, v in os.environ.items() if k not in NODE_TEST_VARIABLES}
    result = subprocess.run(
        [node, "--test", "--test-concurrency=1", "test/"],
        cwd=CLIENT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    counts = {
        name: int(value)
        for name, value in re.findall(r"^# (pass|fail|skipped) (\d+)$", report, re.M)
    }
    assert result.returncode == 0 and counts.get("fail") == 0, report[-30000:]
    assert counts.get("pass", 0) > 0, report[-30000:]
    return counts, report


class FixtureServer(RunningServer):
    """``fixture_server.py`` as a process: hello, the test plugins and fixed API keys."""

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(CLIENT_DIR / "fixture_server.py"),
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]


@pytest.fixture
def fixture_server(checkstack_database_url: str, tmp_path: Path) -> Iterator[FixtureServer]:
    server = FixtureServer(checkstack_database_url, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _fixture_tokens() -> dict[str, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "checkstack_orpc_fixture_tokens", CLIENT_DIR / "fixture_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.TOKENS)


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "orpc-client-tests-key-not-for-production",
    }


def issue_api_keys(url: str) -> dict[str, str]:
    """With the auth plugin installed, real API keys for the keyed cases: an application whose
    role holds ``hello.hello.manage`` and one with the default ``applications`` role only.

    Set up over the documented protocol by an administrator created through onboarding.
    Without the auth plugin, no keys: the node tests skip the keyed cases and say why.
    """
    active = httpx.get(f"{url}/readyz", timeout=10).json()["plugins"]["active"]
    if "auth" not in active:
        return {}

    def call(procedure: str, input: dict[str, Any], **headers: str) -> Any:
        response = httpx.post(
            f"{url}/api/auth/", json={procedure: input}, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return response

    onboarded = call(
        "completeOnboarding", {"email": "root@example.com", "password": "Orpc-admin-pass-1"}
    )
    admin = {"Cookie": f"checkstack_session={onboarded.cookies['checkstack_session']}"}
    # The first-party plugins' manage rules too, so tests/orpc-client/test/first-party.test.mjs
    # can make the data it compares across both protocols.
    rules = ["hello.hello.read", "hello.hello.manage"] + [
        f"{plugin}.{plugin}.{level}"
        for plugin in ("catalog", "incident", "maintenance", "healthcheck")
        for level in ("manage", "read")
        if plugin in active and (level == "manage" or plugin == "healthcheck")
    ]
    role = call("createRole", {"name": "greeters", "rules": rules}, **admin).json()["createRole"]
    manager = call(
        "createApplication",
        {"name": "orpc manager", "roles": ["applications", role["id"]]},
        **admin,
    ).json()["createApplication"]
    limited = call("createApplication", {"name": "orpc limited"}, **admin).json()[
        "createApplication"
    ]
    return {"CHECKSTACK_TOKEN": manager["token"], "CHECKSTACK_LIMITED_TOKEN": limited["token"]}


def test_rpclink_against_checkstack_serve(node: str, checkstack_server: RunningServer) -> None:
    """The acceptance run: ``checkstack serve`` with the installed plugins; the client knows
    only the server URL and, where the auth plugin issues them, an API key."""
    keys = issue_api_keys(checkstack_server.url)
    counts, report = run_node_tests(node, {"CHECKSTACK_URL": checkstack_server.url, **keys})
    assert counts["pass"] >= 20
    if keys:  # the mutation and Missing-access cases ran with real keys
        assert "# SKIP set CHECKSTACK_TOKEN" not in report
        assert "# SKIP set CHECKSTACK_LIMITED_TOKEN" not in report
        first_party = "ok 3 - maintenance: scheduleWindow with Date inputs and getWindows"
        assert first_party in report, report
        healthcheck = (
            "ok 4 - healthcheck: createHealthCheck, runNow, getHealthChecks and getHistory"
        )
        assert healthcheck in report, report


def test_rpclink_against_the_fixture_server(node: str, fixture_server: FixtureServer) -> None:
    """Every case, keyed ones included: dates, every error code, Missing access, batches."""
    tokens = _fixture_tokens()
    counts, _report = run_node_tests(
        node,
        {
            "CHECKSTACK_URL": fixture_server.url,
            "CHECKSTACK_TOKEN": tokens["manager"],
            "CHECKSTACK_LIMITED_TOKEN": tokens["limited"],
            "CHECKSTACK_USER_TOKEN": tokens["user"],
            "CHECKSTACK_FIXTURE": "1",
        },
    )
    assert counts.get("skipped", 0) == 0, counts
