"""Concurrent deletions of one team, application or role: one call deletes it and announces it,
the others answer 404 as a later deletion would (on PostgreSQL the row is locked as it is read;
SQLite's writers take turns anyway)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_auth.contract import APPLICATION_DELETED, ROLE_DELETED, TEAM_DELETED
from checkstack_hello import plugin as hello_plugin

from checkstack_core import Context, Event, Plugin


@pytest.fixture
def deleted() -> list[str]:
    return []


@pytest.fixture
def checkstack_plugins(deleted: list[str]) -> list[Any]:
    listener = Plugin(id="listener", name="Listener")
    for name in (TEAM_DELETED, APPLICATION_DELETED, ROLE_DELETED):

        @listener.on_event(name)
        async def remember(ctx: Context, event: Event) -> None:
            deleted.append(event.name)

    return [auth_plugin, hello_plugin, listener]


@pytest.mark.parametrize(
    ("create", "body", "delete", "event"),
    [
        ("createTeam", {"name": "short-lived"}, "deleteTeam", TEAM_DELETED),
        ("createApplication", {"name": "short-lived"}, "deleteApplication", APPLICATION_DELETED),
        ("createRole", {"name": "short-lived"}, "deleteRole", ROLE_DELETED),
    ],
)
async def test_six_concurrent_deletions_delete_and_announce_once(
    rpc, principals, checkstack_host, deleted, create, body, delete, event
):
    admin = await principals.admin()
    created = (await rpc("auth", create, body, admin)).json()[create]
    item_id = created["id"] if "id" in created else created["application"]["id"]
    await checkstack_host.events.drain()
    deleted.clear()
    responses = await asyncio.gather(
        *(rpc("auth", delete, {"id": item_id}, admin) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 404, 404, 404, 404, 404], [r.text for r in responses]
    await checkstack_host.events.drain()
    assert deleted == [event]
