"""Fixtures for the postgres strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-postgres plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the PostgreSQL server at 127.0.0.1:5432 (trust auth, database ``test``), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-postgres-checks"
HOST = "127.0.0.1"
PORT = 5432


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_postgres import plugin as postgres

    return [catalog, healthcheck, postgres]


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
