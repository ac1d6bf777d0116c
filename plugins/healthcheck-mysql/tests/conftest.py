"""Fixtures for the mysql strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-mysql plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the MariaDB server at 127.0.0.1:3306 (``root`` without a password, database ``test``), a
``mysql_user`` with a password (created for the test, dropped after), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-mysql-checks"
HOST = "127.0.0.1"
PORT = 3306


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_mysql import plugin as mysql

    return [catalog, healthcheck, mysql]


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
