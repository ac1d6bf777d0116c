"""Fixtures for the redis strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-redis plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the Redis server at 127.0.0.1:6379 (no password), an ``acl_user`` with a password (created for
the test with ``ACL SETUSER``, deleted after), a ``key`` holding ``ok``, a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

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
PORT = 6379


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_redis import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


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
