"""A host with the catalog, healthcheck and dns plugins on the core's fixtures (the
scheduler off: tests run checks with ``runNow``), and an admin client over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Plugin
from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-dns-checks"


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_dns import plugin as dns

    return [catalog, healthcheck, dns]


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
