"""Maintenance tests: a host with the catalog and maintenance plugins, callers from
``checkstack_auth``.

``manager`` holds ``maintenance.maintenance.manage``; ``admin`` holds everything (and creates
the catalog systems); ``anonymous`` has no credentials. ``systems`` are three catalog system ids;
``schedule(**fields)`` schedules a window (defaults: starts in an hour, lasts an hour, affects
the first system) as the manager.

``test_access.py`` replaces ``admin_caller`` and ``manager_caller`` with callers from
``checkstack_access`` and runs over both ``MemoryAuth`` and the real auth plugin.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from checkstack_core import Plugin
from checkstack_core.db import utcnow

READ = "maintenance.maintenance.read"
MANAGE = "maintenance.maintenance.manage"
SYSTEM = "catalog.system"


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    """The plugins the test host loads: the catalog and the plugin under test."""
    from checkstack_catalog import plugin as catalog
    from checkstack_maintenance import plugin as maintenance

    return [catalog, maintenance]


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def in_time(**delta: float) -> str:
    """An ISO time ``delta`` from now (negative values: in the past)."""
    return iso(utcnow() + timedelta(**delta))


@pytest.fixture
def later() -> Callable[..., str]:
    """``later(hours=1)``: an ISO time from now."""
    return in_time


@pytest.fixture
def admin_caller(checkstack_auth: Any) -> Any:
    return checkstack_auth.admin(name="Ada Admin")


@pytest.fixture
def manager_caller(checkstack_auth: Any) -> Any:
    return checkstack_auth.user(MANAGE, name="Max Manager")


@pytest.fixture
def admin(checkstack_client: Any, admin_caller: Any) -> Any:
    return checkstack_client(admin_caller)


@pytest.fixture
def manager(checkstack_client: Any, manager_caller: Any) -> Any:
    return checkstack_client(manager_caller)


@pytest.fixture
def anonymous(checkstack_client: Any) -> Any:
    return checkstack_client()


@pytest.fixture
async def systems(admin: Any) -> list[str]:
    """Three catalog systems: api, db, web."""
    created = [
        await admin.call("catalog", "createSystem", {"name": n}) for n in ("api", "db", "web")
    ]
    return [s["id"] for s in created]


Schedule = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def schedule(manager: Any, systems: list[str]) -> Schedule:
    async def make(client: Any = None, **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Database upgrade",
            "startAt": in_time(hours=1),
            "endAt": in_time(hours=2),
            "systemIds": [systems[0]],
            **fields,
        }
        return await (client or manager).call("maintenance", "scheduleWindow", body)

    return make


@pytest.fixture
def stored_status(checkstack_host: Any) -> Callable[[str], Awaitable[str | None]]:
    """Read a window's status straight from the database (no request involved)."""
    from checkstack_maintenance.models import WindowRow

    async def read(window_id: str) -> str | None:
        async with checkstack_host.db.session() as session:
            row = (
                await session.exec(select(WindowRow).where(col(WindowRow.id) == window_id))
            ).first()
            return row.status if row else None

    return read


async def wait_until(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds (a deadline for a test that
    would otherwise hang, not a timing assertion)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    return wait_until
