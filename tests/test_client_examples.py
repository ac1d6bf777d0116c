"""The documentation's client examples (examples/clients/) run unchanged against a live server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "clients"
pytestmark = pytest.mark.e2e


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {"CHECKSTACK_PLUGINS": "auth,hello", "CHECKSTACK_STRICT_PLUGINS": "1"}


def checkstack(*args: str, database_url: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "CHECKSTACK_DATABASE_URL": database_url,
        "CHECKSTACK_PLUGINS": "auth,hello",
    }
    result = subprocess.run(
        [sys.executable, "-m", "checkstack_core", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def api(checkstack_server, checkstack_database_url, tmp_path) -> dict[str, str]:
    """A running server and an application key whose role holds both hello rules."""
    pytest.importorskip("checkstack_auth", reason="the examples authenticate with an API key")
    checkstack(
        "roles",
        "create",
        "greeter",
        "--rule",
        "hello.hello.read",
        "--rule",
        "hello.hello.manage",
        database_url=checkstack_database_url,
        cwd=tmp_path,
    )
    out = checkstack(
        "apps",
        "create",
        "examples",
        "--role",
        "greeter",
        database_url=checkstack_database_url,
        cwd=tmp_path,
    )
    token = out.strip().splitlines()[-1]
    assert token.startswith("ck_")
    return {**os.environ, "API_BASE": checkstack_server.url, "API_KEY": token}


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        command, env=env, cwd=EXAMPLES, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_examples(api):
    out = run(["bash", "curl.sh"], api)
    assert '{"getGreeting":{"message":"Hello, curl!"}}' in out
    assert (
        '{"setGreeting":{"template":"Howdy, {name}!"},"getGreeting":{"message":"Howdy, batch!"}}'
        in out
    )
    assert "HTTP 400" in out
    assert '"message":"Input validation failed"' in out


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_fetch_examples(api):
    out = run(["node", "fetch.mjs"], api)
    assert 'single: {"message":"Hello, fetch!"}' in out
    assert 'batch: {"template":"Hi there, {name}!"} {"message":"Hi there, batch!"}' in out
    assert "error: Input validation failed" in out


def test_requests_examples(api):
    pytest.importorskip("requests")
    out = run([sys.executable, "requests_example.py"], api)
    assert "single: {'message': 'Hello, requests!'}" in out
    assert "batch: {'template': 'Hey, {name}!'} {'message': 'Hey, batch!'}" in out
    assert "error: 400 BAD_REQUEST Input validation failed" in out


def test_a_key_without_the_rule_gets_the_documented_error(api, checkstack_database_url, tmp_path):
    out = checkstack(
        "apps", "create", "reader-only", database_url=checkstack_database_url, cwd=tmp_path
    )
    env = {**api, "API_KEY": out.strip().splitlines()[-1]}
    result = subprocess.run(
        [sys.executable, "requests_example.py"],
        env=env,
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The very first call fails: an application without roles may only do what guests may do,
    # and the hello plugin's read rule is public, so reading works but writing does not.
    assert "single: {'message': 'Hello, requests!'}" in result.stdout
    assert result.returncode != 0
    assert "403" in result.stderr and "Forbidden" in result.stderr


def test_the_api_guide_requests_example_shows_the_error_body(api, tmp_path):
    """docs/api.md's requests snippet, run as written (it defines API_BASE and API_KEY)."""
    guide = (EXAMPLES.parent.parent / "docs" / "api.md").read_text()
    section = guide.split("### From Python", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "api_guide_example.py"
    script.write_text(snippet)
    env = {**api, "CHECKSTACK_URL": api["API_BASE"], "CHECKSTACK_API_KEY": api["API_KEY"]}
    out = run([sys.executable, str(script)], env)
    assert out.splitlines() == [
        "400 BAD_REQUEST: Input validation failed",
        "['template'] The template must contain {name}",
    ]
