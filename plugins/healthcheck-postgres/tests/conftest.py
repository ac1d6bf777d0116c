"""Fixtures for the postgres strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-postgres plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the PostgreSQL server at 127.0.0.1:5432 (trust auth, database ``test``), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

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
PORT = 5432


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_postgres import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)
