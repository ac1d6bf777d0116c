"""Fixtures for the amqp strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-amqp plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
RabbitMQ at 127.0.0.1:5672 (``guest``/``guest``), a ``queue`` holding two messages, a
``closed_port`` and a ``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
    admin,
    closed_port,
    silent_port,
    strategy_plugins,
    strategy_settings,
)

from checkstack_core import Plugin
from checkstack_core.settings import Settings

HOST = "127.0.0.1"
PORT = 5672


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_amqp import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    """The name of a queue holding two messages, deleted afterwards."""
    import aiormq

    name = f"checkstack.test.{secrets.token_hex(6)}"
    connection = await aiormq.connect(f"amqp://guest:guest@{HOST}:{PORT}/")
    try:
        channel = await connection.channel()
        # Deleted by the broker too, should this test die before it does (x-expires).
        await channel.queue_declare(name, arguments={"x-expires": 60_000})
        for body in (b"one", b"two"):
            await channel.basic_publish(body, routing_key=name)
        yield name
        await channel.queue_delete(name)
    finally:
        await connection.close()
