"""Incident tests run a host with the catalog and incident plugins on the core's fixtures.

Principals come from ``checkstack_auth`` (in-memory); systems are made through the catalog's own
procedures, as a user would. ``test_access.py`` replaces ``admin_caller`` with one from
``checkstack_access`` and runs over both ``MemoryAuth`` and the real auth plugin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from checkstack_core import Plugin

MANAGE = "incident.incident.manage"
READ = "incident.incident.read"


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_catalog import plugin as catalog
    from checkstack_incident import plugin as incident

    return [catalog, incident]


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {"CHECKSTACK_PLUGINS": "catalog,incident", "CHECKSTACK_STRICT_PLUGINS": "1"}


@pytest.fixture
def admin_caller(checkstack_auth: Any) -> Any:
    """An administrator (every rule); ``.headers`` authenticates raw HTTP requests."""
    return checkstack_auth.admin(name="Ada Admin")


@pytest.fixture
def admin(checkstack_client: Any, admin_caller: Any) -> Any:
    """A client calling as the administrator."""
    return checkstack_client(admin_caller)


@pytest.fixture
def make_system(admin: Any) -> Callable[[str], Awaitable[str]]:
    """``await make_system(name)`` → the id of a new catalog system."""

    async def make(name: str) -> str:
        system = await admin.call("catalog", "createSystem", {"name": name})
        return str(system["id"])

    return make


@pytest.fixture
def make_incident(admin: Any) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``await make_incident(system_ids, **fields)`` → a new incident (as the admin)."""

    async def make(system_ids: list[str], **fields: Any) -> dict[str, Any]:
        body = {"title": "Outage", "severity": "major", "systemIds": system_ids, **fields}
        return dict(await admin.call("incident", "createIncident", body))

    return make
