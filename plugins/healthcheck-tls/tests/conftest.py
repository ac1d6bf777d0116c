"""A host with the catalog, healthcheck and tls plugins on the core's fixtures (the
scheduler off: tests run checks with ``runNow``), and an admin client over HTTP."""

from __future__ import annotations

import pytest
from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
    admin,
    strategy_plugins,
    strategy_settings,
)

from checkstack_core import Plugin
from checkstack_core.settings import Settings


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_tls import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)
