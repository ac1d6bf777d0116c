"""Catalog tests: a host with the catalog plugin only, callers from ``checkstack_auth``.

``manager`` is a client holding ``catalog.catalog.manage`` (and, like every caller, the public
``catalog.catalog.read``); ``anonymous`` is a client without credentials.

``test_catalog_access.py`` replaces ``manager`` with one from ``checkstack_access`` and runs over
both ``MemoryAuth`` and the real auth plugin.
"""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Plugin

READ = "catalog.catalog.read"
MANAGE = "catalog.catalog.manage"


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    """The plugins the test host loads: the one under test."""
    from checkstack_catalog import plugin

    return [plugin]


@pytest.fixture
def manager(checkstack_client: Any, checkstack_auth: Any) -> Any:
    """A client allowed to change the catalog."""
    return checkstack_client(checkstack_auth.user(MANAGE))


@pytest.fixture
def anonymous(checkstack_client: Any) -> Any:
    """A client without credentials."""
    return checkstack_client()
