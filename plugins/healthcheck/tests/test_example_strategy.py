"""The worked third-party strategy of docs/healthcheck.md, loaded as a plugin of the healthcheck
plugin, run against a tiny Redis-speaking server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .conftest import healthcheck_plugins
from .example_strategy import plugin as redis_plugin


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [*healthcheck_plugins(), redis_plugin]


@pytest.fixture
async def fake_redis() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.startswith(b"AUTH "):
                    ok = line.strip() == b"AUTH hunter2"
                    writer.write(b"+OK\r\n" if ok else b"-WRONGPASS\r\n")
                elif line.strip() == b"PING":
                    writer.write(b"+PONG\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def test_a_third_party_strategy_plugs_in(admin, fake_redis):
    strategies = await admin.call("healthcheck", "getStrategies")
    redis = next(s for s in strategies["strategies"] if s["id"] == "redis")
    assert redis["configSchema"]["properties"]["password"]["anyOf"][0]["x-secret"] is True
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {
            "name": "cache",
            "strategyId": "redis",
            "config": {"host": "127.0.0.1", "port": fake_redis, "password": "hunter2"},
        },
    )
    assert check["config"]["password"] == "********"
    run = await admin.call("healthcheck", "runNow", {"id": check["id"]})
    assert (run["status"], run["message"]) == ("healthy", "PONG")
