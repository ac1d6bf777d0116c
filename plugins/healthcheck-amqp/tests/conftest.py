"""Fixtures for the amqp strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-amqp plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
RabbitMQ at 127.0.0.1:5672 (``guest``/``guest``), a ``queue`` holding two messages, a
``closed_port`` and a ``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-amqp-checks"
HOST = "127.0.0.1"
PORT = 5672


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_amqp import plugin as amqp

    return [catalog, healthcheck, amqp]


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        secret_key=SECRET_KEY,
        plugin_settings={"healthcheck": {"scheduler": False}},
    )


@pytest.fixture
def admin(checkstack_client: Any, checkstack_auth: Any) -> Any:
    return checkstack_client(checkstack_auth.admin(name="Ada Admin"))


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


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
