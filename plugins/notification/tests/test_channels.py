"""Channels: administrators configure them, secrets are encrypted at rest and masked, and
``testChannel`` reaches real receivers (a webhook server, an SMTP server, the MQTT broker)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from sqlmodel import select

from checkstack_core import BadRequest, Forbidden, NotFound, Unauthorized

from .conftest import MANAGE, webhook_channel
from .signature import verify

SECRET = "whsec-0123456789abcdef"


async def stored_config(host: Any, channel_id: str) -> str:
    from checkstack_notification.models import ChannelRow

    async with host.db.session() as session:
        row = (await session.exec(select(ChannelRow).where(ChannelRow.id == channel_id))).one()
        return str(row.config)


async def test_a_webhook_channel_is_signed_and_its_secret_never_shown(
    admin: Any, receiver: Any, checkstack_host: Any
) -> None:
    created = await webhook_channel(admin, receiver.url, SECRET, name="Ops hook")
    assert created["config"] == {"url": receiver.url, "secret": "********", "headers": {}}
    stored = await stored_config(checkstack_host, created["id"])
    assert SECRET not in stored and "enc:v1:" in stored

    result = await admin.call("notification", "testChannel", {"id": created["id"]})
    assert result["ok"] is True and result["error"] is None
    [request] = receiver.requests
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert verify(SECRET, request.headers, request.body) is True
    assert verify("another-secret-entirely", request.headers, request.body) is False
    assert json.loads(request.body)["title"] == "Checkstack test notification"

    # Sending the mask back keeps the secret; the channel still signs with it.
    changed = await admin.call(
        "notification",
        "updateChannel",
        {"id": created["id"], "name": "Renamed", "config": {**created["config"], "headers": {}}},
    )
    assert changed["name"] == "Renamed" and changed["config"]["secret"] == "********"
    await admin.call("notification", "testChannel", {"id": created["id"]})
    assert verify(SECRET, receiver.requests[-1].headers, receiver.requests[-1].body)
    listed = await admin.call("notification", "getChannels")
    assert SECRET not in json.dumps(listed)


async def test_a_failing_receiver_is_reported_by_test_channel(admin: Any, receiver: Any) -> None:
    receiver.script(503)
    created = await webhook_channel(admin, receiver.url)
    result = await admin.call("notification", "testChannel", {"id": created["id"]})
    assert result == {"ok": False, "error": "HTTP 503", "durationMs": result["durationMs"]}


async def test_email_through_an_apprise_mailto_url_reaches_an_smtp_server(
    admin: Any, smtp: Any, checkstack_host: Any
) -> None:
    # Plain SMTP on loopback, no TLS and no login (aiosmtpd offers none).
    url = (
        f"mailto://127.0.0.1:{smtp.port}"
        "?from=alerts@example.com&to=ops@example.com&name=hunter2-sender"
    )
    created = await admin.call(
        "notification",
        "createChannel",
        {"name": "Email", "kind": "apprise", "config": {"url": url}},
    )
    assert created["config"] == {"url": "********"}
    assert "hunter2" not in await stored_config(checkstack_host, created["id"])
    before = len(smtp.sink.messages)
    result = await admin.call("notification", "testChannel", {"id": created["id"]})
    assert result["ok"] is True, result
    message = smtp.sink.messages[before]
    assert message["Subject"] == "Checkstack test notification"
    assert smtp.sink.envelopes[before][1] == ["ops@example.com"]


async def test_an_apprise_mqtt_url_publishes_to_the_broker(admin: Any) -> None:
    """Needs the Mosquitto broker of the test machine (and CI) on 127.0.0.1:1883: no skip."""
    import paho.mqtt.client as mqtt

    topic = f"checkstack/test/{id(admin)}"
    got: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe(topic)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        assert await asyncio.to_thread(subscribed.wait, 10)
        created = await admin.call(
            "notification",
            "createChannel",
            {
                "name": "MQTT",
                "kind": "apprise",
                "config": {"url": f"mqtt://127.0.0.1:1883/{topic}"},
            },
        )
        result = await admin.call("notification", "testChannel", {"id": created["id"]})
        assert result["ok"] is True, result
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got and b"test message" in got[0]
    finally:
        client.loop_stop()
        client.disconnect()


async def test_callers_without_the_manage_rule_cannot_touch_channels(
    admin: Any, make_user: Any, checkstack_client: Any, receiver: Any
) -> None:
    created = await webhook_channel(admin, receiver.url, SECRET)
    person, _ = await make_user()
    for procedure, body in [
        ("getChannels", None),
        ("getChannel", {"id": created["id"]}),
        ("createChannel", {"name": "x", "kind": "webhook", "config": {}}),
        ("updateChannel", {"id": created["id"], "name": "mine"}),
        ("deleteChannel", {"id": created["id"]}),
        ("testChannel", {"id": created["id"]}),
        ("getDeliveries", {}),
    ]:
        with pytest.raises(Forbidden, match=f"Missing access: {MANAGE}"):
            await person.call("notification", procedure, body)
        with pytest.raises(Unauthorized):
            await checkstack_client().call("notification", procedure, body)
    # What a user may see of channels: names to choose from, never a config.
    choices = await person.call("notification", "getMyChannels")
    assert choices == {
        "channels": [{"id": created["id"], "name": "Hook", "kind": "webhook", "selected": False}]
    }


async def test_hostile_bodies_get_the_documented_error(
    admin: Any, checkstack_http: Any, checkstack_access: Any
) -> None:
    caller = await checkstack_access.admin()
    hook = {"url": "http://x", "secret": SECRET}
    forged = {**hook, "headers": {"X-Checkstack-Signature": "forged"}}
    cases = [
        ({"kind": "webhook", "config": {**hook, "url": "ftp://x"}}, "config"),
        ({"kind": "webhook", "config": {**hook, "secret": "short"}}, "config"),
        ({"kind": "webhook", "config": forged}, "headers"),
        ({"kind": "apprise", "config": {"url": "nonsense://what"}}, "url"),
        ({"kind": "apprise", "config": {"url": "x", "extra": 1}}, "config"),
        ({"kind": "sms", "config": {}}, "kind"),
        ({"name": " ", "kind": "webhook", "config": hook}, "name"),
    ]
    for fields, where in cases:
        body = {"name": "x", **fields}
        response = await checkstack_http.post(
            "/api/notification/", json={"createChannel": body}, headers=caller.headers
        )
        assert response.status_code == 400, body
        error = response.json()
        assert error["code"] == "BAD_REQUEST" and error["procedure"] == "createChannel"
        assert error["message"] == "Input validation failed"
        assert where in json.dumps(error["data"]["issues"]), (body, error)
        assert SECRET not in response.text
    with pytest.raises(NotFound, match="Channel not found: nope"):
        await admin.call("notification", "testChannel", {"id": "nope"})
    with pytest.raises(BadRequest):
        await admin.call("notification", "createChannel", {"name": "x", "kind": "webhook"})
