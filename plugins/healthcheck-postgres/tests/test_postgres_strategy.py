"""The postgres strategy against the PostgreSQL server on this machine: healthy, each failure
mode (service down, wrong credentials, missing database, assertion failed, timeout, TLS refused)
with a message a person understands, and through HTTP with the password kept secret."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_postgres import PostgresConfig, PostgresStrategy

from .conftest import HOST, PORT

PASSWORD = "pg-Secret-4711"


async def run(within: float = 5.0, **fields: Any) -> CheckResult:
    config = msgspec.convert(
        {"host": HOST, "port": PORT, "database": "test", **fields}, PostgresConfig
    )
    return await PostgresStrategy().run(config, time.monotonic() + within)


async def test_connects_and_reports_the_server_version():
    result = await run()
    assert (result.status, result.message.split(" in ")[0]) == ("healthy", "Connected")
    assert result.data["connected"] is True
    assert result.data["serverVersion"].split(".")[0].isdigit()
    assert result.latency_ms is not None and result.latency_ms > 0


async def test_a_query_returning_the_expected_value_is_healthy():
    result = await run(
        query="SELECT count(*) FROM pg_database WHERE datname = 'test'", expectedValue="1"
    )
    assert result.status == "healthy", result.message
    assert result.message.startswith("Query returned the expected value in ")
    assert (result.data["rows"], result.data["value"]) == (1, "1")


async def test_booleans_and_null_compare_as_words():
    assert (await run(query="SELECT true", expectedValue="true")).status == "healthy"
    assert (await run(query="SELECT NULL", expectedValue="null")).status == "healthy"


async def test_a_different_value_fails_the_assertion():
    result = await run(query="SELECT 2", expectedValue="1")
    assert (result.status, result.message) == ("unhealthy", "Query returned 2, expected 1")


async def test_a_query_returning_nothing_is_unhealthy():
    result = await run(query="SELECT 1 WHERE false")
    assert (result.status, result.message) == ("unhealthy", "Query returned no rows")


async def test_a_failing_query_is_named_by_its_condition():
    result = await run(query="SELECT * FROM no_such_table_here")
    assert (result.status, result.message) == ("unhealthy", "Query failed: undefined table")
    assert "42P01" in result.data["error"]


async def test_the_query_cannot_write():
    result = await run(query="CREATE TABLE healthcheck_must_not_exist (id int)")
    assert result.message == "Query failed: read only sql transaction"


async def test_service_down_is_connection_refused(closed_port):
    result = await run(port=closed_port)
    assert (result.status, result.message) == ("unhealthy", "Connection refused")
    assert result.data["connected"] is False


async def test_an_unknown_role_is_an_authentication_failure():
    # 127.0.0.1 uses trust auth on this machine, so any password is accepted: a role the server
    # does not know is the credential failure it can produce (a wrong password would read the
    # same: both are SQLSTATE class 28).
    result = await run(user="no_such_role_4711", password=PASSWORD)
    assert (result.status, result.message) == ("unhealthy", "Authentication failed")
    assert "28000" in result.data["error"]
    assert PASSWORD not in repr(result)


async def test_a_missing_database_is_named():
    result = await run(database="no_such_database_4711")
    assert (result.status, result.message) == ("unhealthy", "Database does not exist")


async def test_a_slow_query_times_out_within_the_deadline():
    started = time.monotonic()
    result = await run(within=0.5, query="SELECT pg_sleep(5)")
    assert (result.status, result.message) == ("unhealthy", "Query timed out after 0.5 s")
    assert time.monotonic() - started < 5  # the query was abandoned, not waited for


async def test_a_server_that_never_answers_times_out(silent_port):
    result = await run(within=0.3, port=silent_port)
    assert (result.status, result.message) == ("unhealthy", "Timed out after 0.3 s")


async def test_tls_required_of_a_server_without_it():
    result = await run(sslmode="require")
    assert (result.status, result.message) == ("unhealthy", "Server does not support TLS")


async def test_over_the_threshold_is_degraded():
    result = await run(degradedLatencyMs=0.001)
    assert result.status == "degraded"
    assert result.message.startswith("Slow response: ")
    assert result.message.endswith("(threshold 0.001 ms)")


def test_expected_value_needs_a_query():
    config = PostgresConfig(host=HOST, expected_value="1")
    assert PostgresStrategy().validate(config) == [
        ("expectedValue needs a query", ["expectedValue"])
    ]


async def test_through_http_healthy_then_wrong_credentials_without_leaking(admin, caplog):
    caplog.set_level(logging.DEBUG)
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "postgres")["configSchema"]
    assert schema["properties"]["password"]["anyOf"][0]["x-secret"] is True

    config = {
        "host": HOST,
        "port": PORT,
        "database": "test",
        "password": PASSWORD,
        "query": "SELECT 1",
        "expectedValue": "1",
    }
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "db", "strategyId": "postgres", "config": config},
    )
    assert check["config"]["password"] == "********"
    run_ = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert run_["status"] == "healthy"
    assert run_["message"].startswith("Query returned the expected value in ")

    bad = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {
            "name": "db as nobody",
            "strategyId": "postgres",
            "config": {**config, "user": "no_such_role_4711"},
        },
    )
    failed = await admin.call("healthcheck", "runNow", {"id": bad["id"]})
    assert (failed["status"], failed["message"]) == ("unhealthy", "Authentication failed")

    seen = [
        check,
        bad,
        run_,
        failed,
        await admin.call("healthcheck", "getRun", {"id": failed["id"]}),
        await admin.call("healthcheck", "getHealthChecks"),
    ]
    assert PASSWORD not in repr(seen)
    assert PASSWORD not in caplog.text


def test_the_distribution_names_the_plugin():
    from importlib.metadata import entry_points

    from checkstack_healthcheck_postgres import plugin

    (found,) = entry_points(group="checkstack.plugins", name="healthcheck-postgres")
    assert found.load() is plugin
    assert (plugin.id, list(plugin.depends_on)) == ("healthcheck-postgres", ["healthcheck"])
