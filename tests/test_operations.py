"""Operations: settings, health endpoints, request ids, logs, the CLI and the Python client."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys

import pytest

from checkstack_core import NotFound, Unauthorized
from checkstack_core.client import CheckstackClient
from checkstack_core.observability import JsonFormatter, RequestIdFilter
from checkstack_core.settings import SETTINGS_HELP, Settings


def test_settings_come_from_toml_with_environment_on_top(tmp_path):
    config = tmp_path / "checkstack.toml"
    config.write_text(
        '[checkstack]\nmax_body_size = 2048\nlog_level = "DEBUG"\n'
        '[plugins.hello]\ngreeting = "hi"\n'
    )
    settings = Settings.load(
        env={"CHECKSTACK_LOG_LEVEL": "ERROR", "CHECKSTACK_DISABLED_PLUGINS": "a, b"},
        config_file=config,
    )
    assert settings.max_body_size == 2048
    assert settings.log_level == "ERROR"
    assert settings.disabled_plugins == ["a", "b"]
    assert settings.plugin("hello") == {"greeting": "hi"}
    assert settings.plugin("other") == {}


def test_unknown_settings_in_the_file_are_an_error(tmp_path):
    config = tmp_path / "checkstack.toml"
    config.write_text("[checkstack]\ndatabase_uri = 'oops'\n")
    with pytest.raises(ValueError, match=r"Unknown settings .*database_uri"):
        Settings.load(env={}, config_file=config)


def test_booleans_and_numbers_from_the_environment():
    settings = Settings.load(
        env={
            "CHECKSTACK_STRICT_PLUGINS": "1",
            "CHECKSTACK_MAX_BODY_SIZE": "10",
            "CHECKSTACK_MIGRATE_ON_STARTUP": "no",
        }
    )
    assert settings.strict_plugins is True
    assert settings.max_body_size == 10
    assert settings.migrate_on_startup is False


def test_the_secret_key_is_not_in_the_settings_repr():
    assert "hunter2" not in repr(Settings(secret_key="hunter2"))


def test_serve_help_documents_every_setting():
    result = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for name in SETTINGS_HELP:
        assert f"CHECKSTACK_{name.upper()}" in result.stdout
    for option in ("--host", "--port", "--reload", "--workers"):
        assert option in result.stdout


async def test_healthz_and_readyz(checkstack_http):
    assert (await checkstack_http.get("/healthz")).json() == {"status": "ok"}
    ready = await checkstack_http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["database"] == "ok"
    assert {"core", "hello", "notes"} <= set(body["plugins"]["active"])
    assert body["calls"] == {"running": 0, "waiting": 0}


async def test_readyz_counts_calls_running_and_queued(checkstack_http, checkstack_host):
    db = checkstack_host.db
    async with db.turn():
        assert (await checkstack_http.get("/readyz")).json()["calls"] == {
            "running": 1,
            "waiting": 0,
        }
        turns = [db.turn() for _ in range(db.call_capacity)]
        for turn in turns[1:]:
            await turn.__aenter__()  # every turn is now taken
        queued = asyncio.create_task(checkstack_http.post("/api/notes/", json={"listNotes": {}}))
        for _ in range(500):
            if db.calls_waiting:
                break
            await asyncio.sleep(0.01)
        calls = (await checkstack_http.get("/readyz")).json()["calls"]
        assert calls == {"running": db.call_capacity, "waiting": 1}
        for turn in turns[1:]:
            await turn.__aexit__(None, None, None)
    assert (await queued).status_code == 401  # its turn came: an anonymous caller is refused
    assert (await checkstack_http.get("/readyz")).json()["calls"] == {"running": 0, "waiting": 0}


async def test_readyz_reports_an_unreachable_database(checkstack_http, checkstack_host):
    from checkstack_core.db import Database

    working = checkstack_host.db
    checkstack_host.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        response = await checkstack_http.get("/readyz")
    finally:
        await checkstack_host.db.dispose()
        checkstack_host.db = working
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_request_ids_are_generated_or_kept(checkstack_http):
    generated = await checkstack_http.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    kept = await checkstack_http.get("/healthz", headers={"x-request-id": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    insane = "bad id; with spaces and <markup>" * 3
    replaced = await checkstack_http.get("/healthz", headers={"x-request-id": insane})
    assert replaced.headers["x-request-id"] != insane
    assert len(replaced.headers["x-request-id"]) == 32


async def test_unknown_routes_answer_in_the_documented_shape(checkstack_http):
    response = await checkstack_http.get("/api/hello/nothing/here")
    assert response.status_code in (404, 405)
    assert set(response.json()) == {"code", "message"}


def test_json_logs_carry_the_request_id():
    record = logging.LogRecord(
        "checkstack.x", logging.INFO, __file__, 1, "hello %s", ("there",), None
    )
    RequestIdFilter().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "hello there"
    assert entry["request_id"] == "-"
    assert entry["level"] == "INFO"


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "hello",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_LOG_FORMAT": "json",
    }


@pytest.mark.e2e
def test_python_client_against_a_real_server(checkstack_server):
    with CheckstackClient(checkstack_server.url) as client:
        assert client.call("hello", "getGreeting", {"name": "Ann"}) == {"message": "Hello, Ann!"}
        assert client.batch("hello", {"getGreeting": {}}) == {
            "getGreeting": {"message": "Hello, world!"}
        }
        with pytest.raises(NotFound) as missing:
            client.call("hello", "nope")
        assert missing.value.status == 404
        assert missing.value.message == "Procedure not found: hello.nope"
    with (
        CheckstackClient(
            checkstack_server.url, "ck_00000000-0000-0000-0000-000000000000_x"
        ) as client,
        pytest.raises(Unauthorized),
    ):
        client.call("hello", "getGreeting")
    lines = [
        json.loads(line) for line in checkstack_server.logs().splitlines() if line.startswith("{")
    ]
    assert lines, "the server wrote no JSON log lines"
    assert all({"time", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
