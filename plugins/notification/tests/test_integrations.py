"""Integrations: outgoing webhooks for any plugin's events, signed like channels, with the same
retries and log; only holders of the integration rule configure them or read their log."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from checkstack_core import BadRequest, Forbidden

from .conftest import INTEGRATIONS
from .signature import verify

SECRET = "whsec-integration-0123456789"


async def delivered(admin: Any, expected: int) -> list[dict[str, Any]]:
    page = await admin.call("notification", "getIntegrationDeliveries", {})
    rows = page["deliveries"]
    if len(rows) < expected or any(row["status"] == "pending" for row in rows):
        return []
    return list(rows)


async def test_an_integration_gets_its_event_types_signed_and_retried(
    admin: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    created = await admin.call(
        "notification",
        "createIntegration",
        {
            "name": "Ticketing",
            "url": receiver.url,
            "secret": SECRET,
            "eventTypes": ["catalog.system.created", "incident.incident.created"],
            "headers": {"X-Team": "ops"},
        },
    )
    assert created["secret"] == "********"
    receiver.script(500)
    system = await admin.call("catalog", "createSystem", {"name": "Queue"})
    await admin.call("catalog", "createGroup", {"name": "Not subscribed"})
    await admin.call(
        "incident",
        "createIncident",
        {"title": "Backlog", "severity": "minor", "systemIds": [system["id"]]},
    )
    await until(lambda: delivered(admin, 2))
    await checkstack_host.events.drain()
    rows = await delivered(admin, 2)
    assert sorted(r["event"] for r in rows) == [
        "catalog.system.created",
        "incident.incident.created",
    ]
    assert all(r["status"] == "delivered" and r["targetId"] == created["id"] for r in rows)
    assert sorted(r["attempts"] for r in rows) == [1, 2]
    successes = [r for r in receiver.requests if r.headers["x-checkstack-event"]]
    assert len(successes) == 3  # one 500, then both delivered
    for request in receiver.requests:
        assert verify(SECRET, request.headers, request.body)
        assert request.headers["x-team"] == "ops"
    bodies = {json.loads(r.body)["event"]: json.loads(r.body) for r in receiver.requests}
    assert bodies["catalog.system.created"]["payload"] == {
        "systemId": system["id"],
        "systemName": "Queue",
    }
    assert bodies["incident.incident.created"]["payload"]["title"] == "Backlog"


async def test_a_system_filter_limits_what_an_integration_gets(
    admin: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    watched = await admin.call("catalog", "createSystem", {"name": "Watched"})
    other = await admin.call("catalog", "createSystem", {"name": "Other"})
    await admin.call(
        "notification",
        "createIntegration",
        {
            "name": "Filtered",
            "url": receiver.url,
            "secret": SECRET,
            "eventTypes": ["*"],
            "systemIds": [watched["id"]],
        },
    )
    for system in (other, watched):
        await admin.call(
            "incident",
            "createIncident",
            {"title": system["name"], "severity": "minor", "systemIds": [system["id"]]},
        )
    await checkstack_host.events.drain()
    await until(lambda: delivered(admin, 1))
    rows = await delivered(admin, 1)
    assert "incident.incident.created" in {r["event"] for r in rows}
    # Every event sent is about the watched system; none about the other one.
    payloads = [json.loads(r.body)["payload"] for r in receiver.requests]
    assert len(payloads) == len(rows)
    assert all(watched["id"] in p.get("systemIds", [p.get("systemId")]) for p in payloads)


async def test_only_integration_managers_configure_them(
    admin: Any, make_user: Any, checkstack_client: Any, checkstack_access: Any
) -> None:
    channel_admin, _ = await make_user("notification.channel.manage")
    for procedure, body in [
        ("getIntegrations", None),
        ("getEventTypes", None),
        (
            "createIntegration",
            {"name": "x", "url": "http://x", "secret": SECRET, "eventTypes": ["*"]},
        ),
        ("deleteIntegration", {"id": "x"}),
        ("getIntegrationDeliveries", {}),
    ]:
        with pytest.raises(Forbidden, match=f"Missing access: {INTEGRATIONS}"):
            await channel_admin.call("notification", procedure, body)
    manager = checkstack_client(await checkstack_access.application(INTEGRATIONS))
    types = await manager.call("notification", "getEventTypes")
    assert {"name": "healthcheck.system.unhealthy", "pluginId": "healthcheck"}.items() <= next(
        t for t in types["eventTypes"] if t["name"] == "healthcheck.system.unhealthy"
    ).items()
    with pytest.raises(BadRequest, match="Input validation failed"):
        await manager.call(
            "notification",
            "createIntegration",
            {"name": "x", "url": "http://x", "secret": SECRET, "eventTypes": ["nobody.thing.done"]},
        )
    with pytest.raises(BadRequest, match="Input validation failed"):
        await manager.call(
            "notification",
            "createIntegration",
            {"name": "x", "url": "http://x", "secret": "short", "eventTypes": ["*"]},
        )
    made = await manager.call(
        "notification",
        "createIntegration",
        {"name": "x", "url": "http://x", "secret": SECRET, "eventTypes": ["*"]},
    )
    kept = await manager.call(
        "notification",
        "updateIntegration",
        {"id": made["id"], "secret": "********", "enabled": False},
    )
    assert kept["secret"] == "********" and kept["enabled"] is False
    assert SECRET not in json.dumps(await manager.call("notification", "getIntegrations"))


#: Events a first-party plugin emits for itself only: never declared, so never offered to
#: integrations (forwarding ``notification.deliveries.queued`` would feed on itself).
INTERNAL_EVENTS = {"notification.deliveries.queued"}


def emitted_constants(package: ModuleType, contract: ModuleType) -> set[str]:
    """The event names a plugin package passes to ``ctx.emit``: every constant of its contract
    named in the first argument (a name, or a dict of names like ``SYSTEM_EVENTS[new]``)."""
    names: set[str] = set()
    for source in Path(package.__file__ or "").parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
                and node.args
            ):
                continue
            for ref in ast.walk(node.args[0]):
                value = getattr(contract, ref.id, None) if isinstance(ref, ast.Name) else None
                if isinstance(value, str):
                    names.add(value)
                elif isinstance(value, dict):
                    names.update(v for v in value.values() if isinstance(v, str))
    return names


@pytest.mark.parametrize(
    "plugin_id", ["auth", "catalog", "healthcheck", "incident", "maintenance", "notification"]
)
def test_each_first_party_plugin_declares_the_events_it_emits(plugin_id: str) -> None:
    """Every event constant a plugin emits is declared in its contract (so integrations offer
    it), and every declared event is one it emits (no typo, no stale declaration)."""
    package = importlib.import_module(f"checkstack_{plugin_id}")
    contract = importlib.import_module(f"checkstack_{plugin_id}.contract")
    found = emitted_constants(package, contract)
    assert found, f"found no ctx.emit call in {plugin_id}"  # the scan itself still works
    declared = {event.name for event in contract.contract.events}
    assert declared == found - INTERNAL_EVENTS
    assert contract.contract.validate() == []
