"""Integrations forward every event declared in a loaded plugin's contract: the auth plugin's
(with no secret in the body) and a third-party plugin's, which the notification plugin has never
heard of."""

from __future__ import annotations

import json
from typing import Any

import pytest

from checkstack_core import BadRequest, Contract, EventType, Plugin

from .conftest import notification_plugins
from .signature import verify

SECRET = "whsec-declared-events-0123456789"
WIDGET_BUILT = "widgets.widget.built"

#: A third-party plugin, unknown to the notification plugin, declaring one event.
widgets = Plugin(
    id="widgets",
    name="Widgets",
    contract=Contract(
        "widgets",
        events=[EventType(WIDGET_BUILT, "A widget was built", payload="{widgetId, widgetName}")],
    ),
)


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    return [*notification_plugins(), widgets]


async def integration(admin: Any, url: str, *event_types: str) -> dict[str, Any]:
    body = {"name": "Hook", "url": url, "secret": SECRET, "eventTypes": list(event_types)}
    return dict(await admin.call("notification", "createIntegration", body))


async def delivered(admin: Any) -> list[dict[str, Any]]:
    rows = (await admin.call("notification", "getIntegrationDeliveries", {}))["deliveries"]
    return [] if not rows or any(r["status"] == "pending" for r in rows) else list(rows)


async def test_event_types_list_every_declared_event(admin: Any) -> None:
    types = {
        t["name"]: t for t in (await admin.call("notification", "getEventTypes"))["eventTypes"]
    }
    assert types[WIDGET_BUILT] == {
        "name": WIDGET_BUILT,
        "pluginId": "widgets",
        "description": "A widget was built",
        "payload": "{widgetId, widgetName}",
    }
    assert types["auth.application.created"]["pluginId"] == "auth"
    assert types["catalog.system.created"]["description"] == "A system was created"
    # Internal events are not declared, so they cannot be subscribed to.
    assert "notification.deliveries.queued" not in types
    with pytest.raises(BadRequest, match="Input validation failed"):
        await integration(admin, "http://x", "notification.deliveries.queued")


async def test_an_application_created_reaches_an_integration_without_its_token(
    admin: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    await integration(admin, receiver.url, "auth.application.created")
    created = await admin.call("auth", "createApplication", {"name": "Deploy bot"})
    token = created["token"]
    await checkstack_host.events.drain()
    await until(lambda: delivered(admin))
    [request] = receiver.requests
    assert verify(SECRET, request.headers, request.body)
    body = json.loads(request.body)
    assert body["event"] == "auth.application.created"
    assert body["payload"] == {
        "applicationId": created["application"]["id"],
        "applicationName": "Deploy bot",
        "roles": ["applications"],
        "teams": [],
    }
    # Neither the token nor its secret half travels anywhere in the webhook.
    raw = request.body.decode()
    assert token not in raw and token.rsplit("_", 1)[-1] not in raw


async def test_auth_events_never_carry_secrets(
    admin: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    """Every auth event a full round of user, application, role and team changes emits: ids and
    names only, no password, hash, email, session or token."""
    await integration(admin, receiver.url, "*")
    password = "Qv7-zebra-Lantern-91x"
    user = await admin.call(
        "auth", "createUser", {"email": "eve@example.com", "password": password, "name": "Eve"}
    )
    await admin.call("auth", "setUserRoles", {"id": user["id"], "roles": ["admin"]})
    app = await admin.call("auth", "createApplication", {"name": "Bot"})
    rotated = await admin.call(
        "auth", "regenerateApplicationSecret", {"id": app["application"]["id"]}
    )
    team = await admin.call("auth", "createTeam", {"name": "Ops", "description": ""})
    await admin.call("auth", "addTeamMember", {"id": team["id"], "userId": user["id"]})
    role = await admin.call(
        "auth", "createRole", {"name": "Viewer", "description": "", "rules": []}
    )
    await admin.call("auth", "deleteRole", {"id": role["id"]})
    await admin.call("auth", "deleteApplication", {"id": app["application"]["id"]})
    await admin.call("auth", "deleteTeam", {"id": team["id"]})
    await admin.call("auth", "deleteUser", {"id": user["id"]})
    await checkstack_host.events.drain()
    await until(lambda: delivered(admin))
    bodies = [json.loads(r.body) for r in receiver.requests]
    events = [b["event"] for b in bodies if b["event"].startswith("auth.")]
    assert sorted(events) == sorted(
        [
            "auth.user.created",
            "auth.user.updated",
            "auth.application.created",
            "auth.application.secret_regenerated",
            "auth.team.created",
            "auth.team.updated",
            "auth.role.created",
            "auth.role.deleted",
            "auth.application.deleted",
            "auth.team.deleted",
            "auth.user.deleted",
        ]
    )
    raw = "".join(r.body.decode() for r in receiver.requests)
    for secret in (password, app["token"], rotated["token"], "eve@example.com", "$argon2"):
        assert secret not in raw
    for token in (app["token"], rotated["token"]):
        assert token.rsplit("_", 1)[-1] not in raw


async def test_a_third_party_event_is_forwarded(
    admin: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    await integration(admin, receiver.url, WIDGET_BUILT)
    async with checkstack_host.service_context("widgets") as ctx:
        await ctx.emit(WIDGET_BUILT, {"widgetId": "w1", "widgetName": "Sprocket"})
    await checkstack_host.events.drain()
    await until(lambda: delivered(admin))
    [request] = receiver.requests
    assert verify(SECRET, request.headers, request.body)
    body = json.loads(request.body)
    assert (body["event"], body["payload"]) == (
        WIDGET_BUILT,
        {"widgetId": "w1", "widgetName": "Sprocket"},
    )
