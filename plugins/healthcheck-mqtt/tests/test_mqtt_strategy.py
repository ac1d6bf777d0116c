"""The mqtt strategy against Mosquitto on this machine: healthy (connect, round trip), each
failure mode (service down, wrong password, refused topic, timeout) with a message a person
understands, and through HTTP with the password kept secret."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_mqtt import MqttConfig, MqttStrategy

from .conftest import HOST, PORT


async def run(within: float = 5.0, **fields: Any) -> CheckResult:
    config = msgspec.convert({"host": HOST, "port": PORT, **fields}, MqttConfig)
    return await MqttStrategy().run(config, time.monotonic() + within)


async def test_connects():
    result = await run()
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Connected")
    assert result.data["connected"] is True


async def test_a_round_trip_on_a_topic():
    result = await run(topic="checkstack/test/round-trip")
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Round trip completed")
    assert result.data["roundTripMs"] >= 0


async def test_a_round_trip_over_mqtt_5_at_most_once():
    result = await run(topic="checkstack/test/v5", protocol="5", qos=0)
    assert result.status == "healthy", result.message


async def test_the_right_password_is_healthy(private_broker):
    result = await run(
        port=private_broker.port,
        username=private_broker.username,
        password=private_broker.password,
        topic="checkstack/health",
    )
    assert result.status == "healthy", result.message


async def test_a_wrong_password_is_an_authentication_failure(private_broker):
    result = await run(
        port=private_broker.port,
        username=private_broker.username,
        password="Not-" + private_broker.password,
    )
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")
    assert private_broker.password not in repr(result)


async def test_anonymous_is_refused_where_a_login_is_required(private_broker):
    result = await run(port=private_broker.port, protocol="5")
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")


async def test_a_topic_the_user_may_not_use_fails_the_round_trip(private_broker):
    # Mosquitto grants the subscription and drops the publication: the message never comes back.
    result = await run(
        within=0.5,
        port=private_broker.port,
        username=private_broker.username,
        password=private_broker.password,
        topic="private/health",
    )
    assert (result.status, result.message) == (
        "unhealthy",
        "Published message not received within 0.5 s",
    )


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
    strategy = MqttStrategy()
    assert strategy.validate(MqttConfig(host=HOST, topic="a/+/b")) == [
        ("topic must not hold the wildcards # or +", ["topic"])
    ]
    assert strategy.validate(MqttConfig(host=HOST, password="x")) == [
        ("password needs a username", ["username"])
    ]


async def test_through_http_healthy_then_wrong_password_without_leaking(
    admin, private_broker, caplog
):
    caplog.set_level(logging.DEBUG)
    password = private_broker.password
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "mqtt")["configSchema"]
    assert schema["properties"]["password"]["anyOf"][0]["x-secret"] is True

    config = {
        "host": HOST,
        "port": private_broker.port,
        "username": private_broker.username,
        "password": password,
        "topic": "checkstack/http",
    }
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "broker", "strategyId": "mqtt", "config": config},
    )
    assert check["config"]["password"] == "********"
    healthy = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert healthy["status"] == "healthy"
    assert healthy["message"].startswith("Round trip completed in ")

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

    from checkstack_healthcheck_mqtt import plugin

    (found,) = entry_points(group="checkstack.plugins", name="healthcheck-mqtt")
    assert found.load() is plugin
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-mqtt", ["healthcheck"])
