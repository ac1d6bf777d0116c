"""Fixtures for the mysql strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-mysql plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the MariaDB server at 127.0.0.1:3306 (``root`` without a password, database ``test``), a
``mysql_user`` with a password (created for the test, dropped after), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

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
PORT = 3306


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_mysql import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


@pytest.fixture
async def mysql_user() -> AsyncIterator[tuple[str, str]]:
    """``(name, password)`` of a user allowed to read database ``test``, dropped afterwards."""
    import asyncmy

    name, password = f"hc_{secrets.token_hex(4)}", f"My-{secrets.token_hex(8)}"
    conn = await asyncmy.connect(host=HOST, port=PORT, user="root", password="")
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, password))
            await cursor.execute(f"GRANT SELECT ON test.* TO `{name}`@'%'")
        yield name, password
    finally:
        async with conn.cursor() as cursor:
            await cursor.execute("DROP USER IF EXISTS %s@'%%'", (name,))
        await conn.ensure_closed()
