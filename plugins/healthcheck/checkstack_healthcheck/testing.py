"""Test helpers for strategy plugins (import them in your ``conftest.py``).

A strategy's tests need a host with the catalog, the healthcheck plugin and the strategy, the
scheduler off (tests run checks with ``runNow``), an administrator's client, and loopback
targets that refuse or never answer::

    from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
        admin, closed_port, silent_port, strategy_plugins, strategy_settings,
    )

    @pytest.fixture
    def checkstack_plugins():
        from checkstack_healthcheck_redis import plugin
        return strategy_plugins(plugin)

    @pytest.fixture
    def checkstack_settings(checkstack_database_url):
        return strategy_settings(checkstack_database_url)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from checkstack_core import Plugin
from checkstack_core.settings import Settings

#: The server key of test hosts (secret config fields are encrypted with it).
SECRET_KEY = "test-secret-key-for-strategy-checks"
LOOPBACK = "127.0.0.1"


def strategy_plugins(*strategies: Plugin) -> list[Plugin]:
    """The catalog and healthcheck plugins, then ``strategies``."""
    from checkstack_catalog import plugin as catalog

    from checkstack_healthcheck import plugin as healthcheck

    return [catalog, healthcheck, *strategies]


def strategy_settings(database_url: str, *, secret_key: str = SECRET_KEY) -> Settings:
    """Settings of a test host: strict plugin loading, a server key, the scheduler off."""
    return Settings(
        database_url=database_url,
        strict_plugins=True,
        secret_key=secret_key,
        plugin_settings={"healthcheck": {"scheduler": False}},
    )


@pytest.fixture
def admin(checkstack_client: Any, checkstack_auth: Any) -> Any:
    """A client over HTTP as an administrator."""
    return checkstack_client(checkstack_auth.admin(name="Ada Admin"))


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
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

    server = await asyncio.start_server(hold, LOOPBACK, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
