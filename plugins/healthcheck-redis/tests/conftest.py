"""Fixtures for the redis strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-redis plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the Redis server at 127.0.0.1:6379 (no password), an ``acl_user`` with a password (created for
the test with ``ACL SETUSER``, deleted after), a ``key`` holding ``ok``, a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-redis-checks"
HOST = "127.0.0.1"
PORT = 6379


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_redis import plugin as redis_plugin

    return [catalog, healthcheck, redis_plugin]


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
async def redis_server() -> AsyncIterator[Any]:
    """A client of the Redis server under test (for arranging what a check reads)."""
    import redis.asyncio as redis

    client = redis.Redis(host=HOST, port=PORT)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def acl_user(redis_server: Any) -> AsyncIterator[tuple[str, str]]:
    """``(name, password)`` of an ACL user allowed every command, deleted afterwards."""
    name, password = f"hc_{secrets.token_hex(4)}", f"Rd-{secrets.token_hex(8)}"
    await redis_server.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "+@all")
    try:
        yield name, password
    finally:
        await redis_server.execute_command("ACL", "DELUSER", name)


@pytest.fixture
async def key(redis_server: Any) -> AsyncIterator[str]:
    """A key holding ``ok`` (expiring in a minute whatever happens), deleted afterwards."""
    name = f"checkstack:test:{secrets.token_hex(6)}"
    await redis_server.set(name, "ok", ex=60)
    try:
        yield name
    finally:
        await redis_server.delete(name)
