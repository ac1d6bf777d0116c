"""The redis strategy against the Redis server on this machine: healthy, each failure mode
(service down, wrong password, key missing or different, timeout) with a message a person
understands, and through HTTP with the password kept secret."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_redis import RedisConfig, RedisStrategy

from .conftest import HOST, PORT


async def run(within: float = 5.0, **fields: Any) -> CheckResult:
    config = msgspec.convert({"host": HOST, "port": PORT, **fields}, RedisConfig)
    return await RedisStrategy().run(config, time.monotonic() + within)


async def test_ping_is_healthy():
    result = await run()
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "PONG")
    assert result.data["connected"] is True


async def test_an_acl_user_with_the_right_password_is_healthy(acl_user, key):
    name, password = acl_user
    result = await run(username=name, password=password, key=key, expectedValue="ok")
    assert result.status == "healthy", result.message
    assert result.message.startswith("Key holds the expected value in ")


async def test_a_wrong_password_is_an_authentication_failure(acl_user):
    name, password = acl_user
    result = await run(username=name, password="Not-" + password)
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")
    assert password not in repr(result)


async def test_an_unknown_user_is_an_authentication_failure():
    result = await run(username="no_such_user_4711", password="whatever")
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")


async def test_a_user_without_the_command_is_denied(redis_server, acl_user, key):
    name, password = acl_user
    await redis_server.execute_command("ACL", "SETUSER", name, "-get")
    result = await run(username=name, password=password, key=key)
    assert (result.status, result.message) == ("unhealthy", "Permission denied")


async def test_a_different_value_fails_the_assertion(key):
    result = await run(key=key, expectedValue="ready")
    assert (result.status, result.message) == ("unhealthy", "Key holds ok, expected ready")


async def test_a_missing_key_is_unhealthy(key):
    result = await run(key=key + ":missing")
    assert (result.status, result.message) == ("unhealthy", "Key not found")


async def test_a_key_of_another_type_is_named(redis_server, key):
    await redis_server.delete(key)
    await redis_server.rpush(key, "a")
    result = await run(key=key)
    assert (result.status, result.message) == (
        "unhealthy",
        "Key holds a value that is not a string",
    )


async def test_a_database_out_of_range_is_named():
    result = await run(db=99_999)
    assert (result.status, result.message) == ("unhealthy", "Database index out of range")


async def test_service_down_is_connection_refused(closed_port):
    result = await run(port=closed_port)
    assert (result.status, result.message) == ("unhealthy", "Connection refused")


async def test_a_server_that_never_answers_times_out(silent_port):
    result = await run(within=0.3, port=silent_port)
    assert (result.status, result.message) == ("unhealthy", "Timed out after 0.3 s")


async def test_over_the_threshold_is_degraded():
    result = await run(degradedLatencyMs=0.001)
    assert result.status == "degraded"
    assert result.message.endswith("(threshold 0.001 ms)")


def test_config_rules():
    strategy = RedisStrategy()
    assert strategy.validate(RedisConfig(host=HOST, expected_value="x")) == [
        ("expectedValue needs a key", ["expectedValue"])
    ]
    assert strategy.validate(RedisConfig(host=HOST, username="u")) == [
        ("username needs a password", ["password"])
    ]


async def test_through_http_healthy_then_wrong_password_without_leaking(
    admin, acl_user, key, caplog
):
    caplog.set_level(logging.DEBUG)
    name, password = acl_user
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "redis")["configSchema"]
    assert schema["properties"]["password"]["anyOf"][0]["x-secret"] is True

    config = {
        "host": HOST,
        "port": PORT,
        "username": name,
        "password": password,
        "key": key,
        "expectedValue": "ok",
    }
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "cache", "strategyId": "redis", "config": config},
    )
    assert check["config"]["password"] == "********"
    healthy = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert healthy["status"] == "healthy"
    assert healthy["message"].startswith("Key holds the expected value in ")

    updated = await admin.call(
        "healthcheck",
        "updateHealthCheck",
        {"id": check["id"], "config": {**config, "password": "Not-" + password}},
    )
    failed = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert (failed["status"], failed["message"]) == ("unhealthy", "Authentication failed")

    seen = [
        check,
        updated,
        healthy,
        failed,
        await admin.call("healthcheck", "getRun", {"id": failed["id"]}),
        await admin.call("healthcheck", "getHealthChecks"),
    ]
    assert password not in repr(seen)
    assert password not in caplog.text


def test_the_distribution_names_the_plugin():
    from importlib.metadata import entry_points

    from checkstack_healthcheck_redis import plugin

    (found,) = entry_points(group="checkstack.plugins", name="healthcheck-redis")
    assert found.load() is plugin
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-redis", ["healthcheck"])
