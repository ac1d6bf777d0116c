"""The mysql strategy against the MariaDB server on this machine: healthy, each failure mode
(service down, wrong password, missing database, assertion failed, timeout) with a message a
person understands, and through HTTP with the password kept secret."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_mysql import MySQLConfig, MySQLStrategy

from .conftest import HOST, PORT


async def run(within: float = 5.0, **fields: Any) -> CheckResult:
    config = msgspec.convert(
        {"host": HOST, "port": PORT, "database": "test", **fields}, MySQLConfig
    )
    return await MySQLStrategy().run(config, time.monotonic() + within)


async def test_connects_and_reports_the_server_version():
    result = await run()
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Connected")
    assert "MariaDB" in result.data["serverVersion"]


async def test_a_user_with_the_right_password_is_healthy(mysql_user):
    name, password = mysql_user
    result = await run(user=name, password=password, query="SELECT 6 * 7", expectedValue="42")
    assert result.status == "healthy", result.message
    assert result.message.startswith("Query returned the expected value in ")


async def test_a_wrong_password_is_an_authentication_failure(mysql_user):
    name, password = mysql_user
    result = await run(user=name, password=password + "-wrong")
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")
    assert result.data["error"].startswith("1045 ")
    assert password not in repr(result)


async def test_a_different_value_fails_the_assertion():
    result = await run(query="SELECT 2", expectedValue="1")
    assert (result.status, result.message) == ("unhealthy", "Query returned 2, expected 1")


async def test_null_and_text_compare_as_text():
    assert (await run(query="SELECT NULL", expectedValue="null")).status == "healthy"
    assert (await run(query="SELECT 'ok'", expectedValue="ok")).status == "healthy"


async def test_a_query_returning_nothing_is_unhealthy():
    result = await run(query="SELECT 1 FROM DUAL WHERE 1 = 0")
    assert (result.status, result.message) == ("unhealthy", "Query returned no rows")


async def test_a_failing_query_is_named_in_words():
    result = await run(query="SELECT * FROM no_such_table_here")
    assert (result.status, result.message) == ("unhealthy", "Query failed: table does not exist")


async def test_the_query_cannot_write():
    result = await run(query="CREATE TABLE healthcheck_must_not_exist (id int)")
    assert result.status == "unhealthy"
    # DDL commits implicitly in MySQL, so the server refuses it in a read-only transaction.
    assert result.message == "Query failed: read-only transaction"


async def test_service_down_is_connection_refused(closed_port):
    result = await run(port=closed_port)
    assert (result.status, result.message) == ("unhealthy", "Connection refused")


async def test_a_missing_database_is_named():
    result = await run(database="no_such_database_4711")
    assert (result.status, result.message) == ("unhealthy", "Database does not exist")


async def test_a_slow_query_times_out_within_the_deadline():
    started = time.monotonic()
    result = await run(within=0.5, query="SELECT SLEEP(3)")
    assert (result.status, result.message) == ("unhealthy", "Query timed out after 0.5 s")
    assert time.monotonic() - started < 3  # the query was abandoned, not waited for


async def test_an_abandoned_query_does_not_go_on_running_on_the_server():
    import asyncio

    import asyncmy

    marker = f"hc-abandoned-{time.monotonic_ns()}"
    result = await run(within=0.5, query=f"SELECT SLEEP(30) /* {marker} */")
    assert result.message == "Query timed out after 0.5 s"
    conn = await asyncmy.connect(host=HOST, port=PORT, user="root", password="")
    try:
        # The server stops it at the run's limit; it must be gone well before its 30 s.
        for _ in range(100):
            async with conn.cursor() as cursor:
                await cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE %s "
                    "AND id <> CONNECTION_ID()",
                    (f"%{marker}%",),
                )
                (running,) = await cursor.fetchone()
            if not running:
                break
            await asyncio.sleep(0.05)
        assert running == 0
    finally:
        await conn.ensure_closed()


async def test_a_server_that_never_answers_times_out(silent_port):
    result = await run(within=0.3, port=silent_port)
    assert (result.status, result.message) == ("unhealthy", "Timed out after 0.3 s")


async def test_over_the_threshold_is_degraded():
    result = await run(degradedLatencyMs=0.001)
    assert result.status == "degraded"
    assert result.message.endswith("(threshold 0.001 ms)")


async def test_through_http_healthy_then_wrong_password_without_leaking(admin, mysql_user, caplog):
    caplog.set_level(logging.DEBUG)
    name, password = mysql_user
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "mysql")["configSchema"]
    assert schema["properties"]["password"]["anyOf"][0]["x-secret"] is True

    config = {
        "host": HOST,
        "port": PORT,
        "database": "test",
        "user": name,
        "password": password,
        "query": "SELECT 1",
        "expectedValue": "1",
    }
    check = await admin.call(
        "healthcheck", "createHealthCheck", {"name": "db", "strategyId": "mysql", "config": config}
    )
    assert check["config"]["password"] == "********"
    healthy = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert healthy["status"] == "healthy"
    assert healthy["message"].startswith("Query returned the expected value in ")

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

    from checkstack_healthcheck_mysql import plugin

    (found,) = entry_points(group="checkstack.plugins", name="healthcheck-mysql")
    assert found.load() is plugin
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-mysql", ["healthcheck"])
