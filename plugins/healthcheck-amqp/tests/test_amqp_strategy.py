"""The amqp strategy against RabbitMQ on this machine: healthy (connect, round trip, queue
backlog), each failure mode (service down, wrong password, unknown virtual host or queue, backlog
over its limit, timeout) with a message a person understands, and through HTTP with the password
kept secret."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_amqp import AmqpConfig, AmqpStrategy

from .conftest import HOST, PORT

PASSWORD = "guest"  # RabbitMQ's default user on loopback
WRONG = "Amqp-Wrong-4711"


async def run(within: float = 5.0, **fields: Any) -> CheckResult:
    config = msgspec.convert(
        {"host": HOST, "port": PORT, "password": PASSWORD, **fields}, AmqpConfig
    )
    return await AmqpStrategy().run(config, time.monotonic() + within)


async def test_connects_and_names_the_broker():
    result = await run()
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Connected")
    assert result.data["server"].startswith("RabbitMQ ")


async def test_a_round_trip_through_a_temporary_queue():
    result = await run(roundTrip=True)
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Round trip completed")
    assert result.data["roundTripMs"] >= 0


async def test_a_queue_within_its_backlog_limit(queue):
    result = await run(queue=queue, maxMessages=2)
    assert result.status == "healthy", result.message
    assert result.data["messages"] == 2


async def test_a_queue_over_its_backlog_limit(queue):
    result = await run(queue=queue, maxMessages=1)
    assert (result.status, result.message) == (
        "unhealthy",
        "Queue holds 2 messages, expected at most 1",
    )


async def test_a_missing_queue_is_named():
    result = await run(queue="checkstack.no-such-queue-4711")
    assert (result.status, result.message) == ("unhealthy", "Queue does not exist")


async def test_a_wrong_password_is_an_authentication_failure(caplog):
    caplog.set_level(logging.DEBUG)
    result = await run(password=WRONG)
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")
    assert WRONG not in repr(result)
    assert WRONG not in caplog.text  # aiormq logs the URL, with the password masked


async def test_an_unknown_virtual_host_is_named():
    result = await run(vhost="no-such-vhost-4711")
    assert (result.status, result.message) == (
        "unhealthy",
        "Virtual host not found or not permitted",
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


def test_max_messages_needs_a_queue():
    assert AmqpStrategy().validate(AmqpConfig(host=HOST, max_messages=3)) == [
        ("maxMessages needs a queue", ["maxMessages"])
    ]


async def test_through_http_healthy_then_wrong_password_without_leaking(admin, caplog):
    caplog.set_level(logging.DEBUG)
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "amqp")["configSchema"]
    assert schema["properties"]["password"]["anyOf"][0]["x-secret"] is True

    config = {"host": HOST, "port": PORT, "password": PASSWORD, "roundTrip": True}
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "broker", "strategyId": "amqp", "config": config},
    )
    assert check["config"]["password"] == "********"
    healthy = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert healthy["status"] == "healthy"
    assert healthy["message"].startswith("Round trip completed in ")

    updated = await admin.call(
        "healthcheck",
        "updateHealthCheck",
        {"id": check["id"], "config": {**config, "password": WRONG}},
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
    assert WRONG not in repr(seen)
    assert WRONG not in caplog.text


def test_the_distribution_names_the_plugin():
    from importlib.metadata import entry_points

    from checkstack_healthcheck_amqp import plugin

    (found,) = entry_points(group="checkstack.plugins", name="healthcheck-amqp")
    assert found.load() is plugin
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-amqp", ["healthcheck"])
