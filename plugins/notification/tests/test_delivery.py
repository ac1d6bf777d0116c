"""Triggers and delivery: a system turning unhealthy notifies each subscriber once per channel,
nobody while a suppressing maintenance is in progress; failed attempts are retried with backoff,
a channel's rate limit holds messages back, and the log says what happened."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from checkstack_core.db import utcnow
from checkstack_core.testing.server import free_port

from .conftest import TEAMS, failing_check, webhook_channel
from .signature import verify

SECRET = "whsec-delivery-tests-0123456789"


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def settled(admin: Any, expected: int) -> list[dict[str, Any]]:
    """The channel deliveries once ``expected`` exist and none is pending."""
    page = await admin.call("notification", "getDeliveries", {"limit": 100})
    rows = page["deliveries"]
    if len(rows) < expected or any(row["status"] == "pending" for row in rows):
        return []
    return list(rows)


async def test_unhealthy_notifies_each_subscriber_once_per_channel(
    admin: Any, make_user: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    system = await admin.call("catalog", "createSystem", {"name": "Payments"})
    group = await admin.call("catalog", "createGroup", {"name": "Money"})
    await admin.call(
        "catalog", "addSystemToGroup", {"systemId": system["id"], "groupId": group["id"]}
    )
    first = await webhook_channel(admin, receiver.url, SECRET, name="First")
    second = await webhook_channel(admin, receiver.url + "/second", SECRET, name="Second")

    # Ann matches four times: the system, its group, her team's subscription, and again.
    ann, ann_caller = await make_user(teams=("payments",), name="Ann")
    await ann.call("notification", "subscribe", {"systemId": system["id"]})
    await ann.call("notification", "subscribe", {"groupId": group["id"]})
    await ann.call("notification", "setMyChannels", {"channelIds": [first["id"], second["id"]]})
    teams = await admin.call("auth", "getTeams")
    team_id = next(t["id"] for t in teams["teams"] if t["name"] == "payments")
    lead, _ = await make_user(TEAMS)
    await lead.call("notification", "subscribeTeam", {"teamId": team_id, "systemId": system["id"]})
    # Bob, through the group only, on one channel.
    bob, bob_caller = await make_user(name="Bob")
    await bob.call(
        "notification", "subscribe", {"groupId": group["id"], "minImportance": "warning"}
    )
    await bob.call("notification", "setMyChannels", {"channelIds": [first["id"]]})
    # Cid wants critical only from another system: nothing here is for him.
    other = await admin.call("catalog", "createSystem", {"name": "Other"})
    cid, _ = await make_user(name="Cid")
    await cid.call("notification", "subscribe", {"systemId": other["id"]})
    await cid.call("notification", "setMyChannels", {"channelIds": [first["id"]]})

    check_id = await failing_check(admin, system["id"], free_port())
    run = await admin.call("healthcheck", "runNow", {"id": check_id, "systemId": system["id"]})
    assert run["status"] == "unhealthy"

    await until(lambda: settled(admin, 3))
    await checkstack_host.events.drain()
    deliveries = await settled(admin, 3)
    pairs = sorted((d["userId"], d["targetId"]) for d in deliveries)
    assert pairs == sorted(
        [(ann_caller.id, first["id"]), (ann_caller.id, second["id"]), (bob_caller.id, first["id"])]
    )
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries)
    assert all(d["event"] == "healthcheck.system.unhealthy" for d in deliveries)
    assert len(receiver.requests) == 3
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert sorted(b["recipient"]["userId"] for b in bodies) == sorted(
        [ann_caller.id, ann_caller.id, bob_caller.id]
    )
    assert all(verify(SECRET, r.headers, r.body) for r in receiver.requests)
    assert {b["title"] for b in bodies} == {"System health critical: Payments"}
    assert {b["importance"] for b in bodies} == {"critical"}

    inbox = await ann.call("notification", "getNotifications")
    assert inbox["total"] == 1 and inbox["unread"] == 1
    [note] = inbox["notifications"]
    assert note["title"] == "System health critical: Payments"
    assert note["systemIds"] == [system["id"]] and note["read"] is False
    assert (await cid.call("notification", "getNotifications"))["total"] == 0


async def test_no_health_notification_while_a_suppressing_maintenance_runs(
    admin: Any, make_user: Any, receiver: Any, until: Any, checkstack_host: Any
) -> None:
    system = await admin.call("catalog", "createSystem", {"name": "Search"})
    channel = await webhook_channel(admin, receiver.url, SECRET)
    ann, _ = await make_user()
    await ann.call("notification", "subscribe", {"systemId": system["id"]})
    await ann.call("notification", "setMyChannels", {"channelIds": [channel["id"]]})
    now = utcnow()
    window = await admin.call(
        "maintenance",
        "scheduleWindow",
        {
            "title": "Reindex",
            "startAt": iso(now - timedelta(minutes=1)),
            "endAt": iso(now + timedelta(hours=1)),
            "systemIds": [system["id"]],
            "suppressNotifications": True,
        },
    )

    async def in_progress() -> bool:
        got = await admin.call("maintenance", "getWindow", {"id": window["id"]})
        return bool(got["status"] == "in_progress")

    await until(in_progress)
    check_id = await failing_check(admin, system["id"], free_port())
    run = await admin.call("healthcheck", "runNow", {"id": check_id, "systemId": system["id"]})
    assert run["status"] == "unhealthy"
    await checkstack_host.events.drain()
    await until(lambda: settled(admin, 2))
    events = sorted(d["event"] for d in await settled(admin, 2))
    # The maintenance itself is announced (scheduled, started); the health change is not.
    assert events == ["maintenance.window.created", "maintenance.window.status_changed"]
    titles = [
        n["title"] for n in (await ann.call("notification", "getNotifications"))["notifications"]
    ]
    assert sorted(titles) == ["Maintenance scheduled: Reindex", "Maintenance started: Reindex"]


async def incident(admin: Any, system_id: str, title: str = "Outage") -> Any:
    return await admin.call(
        "incident",
        "createIncident",
        {"title": title, "severity": "major", "systemIds": [system_id]},
    )


async def subscribed(admin: Any, make_user: Any, channel: Any) -> tuple[Any, Any, str]:
    system = await admin.call("catalog", "createSystem", {"name": "API"})
    user, caller = await make_user()
    await user.call("notification", "subscribe", {"systemId": system["id"]})
    await user.call("notification", "setMyChannels", {"channelIds": [channel["id"]]})
    return user, caller, system["id"]


async def test_a_receiver_failing_twice_gets_the_message_on_the_third_attempt(
    admin: Any, make_user: Any, receiver: Any, until: Any
) -> None:
    channel = await webhook_channel(admin, receiver.url, SECRET)
    _, _, system_id = await subscribed(admin, make_user, channel)
    receiver.script(500, 500)
    await incident(admin, system_id)
    await until(lambda: settled(admin, 1))
    [delivery] = await settled(admin, 1)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["lastError"] == "HTTP 500" and delivery["durationMs"] is not None
    assert delivery["deliveredAt"] is not None and delivery["nextAttemptAt"] is None
    assert len(receiver.requests) == 3
    # The same delivery id every time, so a receiver de-duplicates retries.
    assert len({r.headers["x-checkstack-delivery"] for r in receiver.requests}) == 1
    assert json.loads(receiver.requests[-1].body)["title"] == "Incident reported: Outage"


async def test_a_receiver_that_keeps_failing_ends_failed_after_the_last_attempt(
    admin: Any, make_user: Any, receiver: Any, until: Any
) -> None:
    channel = await webhook_channel(admin, receiver.url, SECRET)
    _, _, system_id = await subscribed(admin, make_user, channel)
    receiver.script(502, 502, 502, 502, 502)
    await incident(admin, system_id)
    await until(lambda: settled(admin, 1))
    [delivery] = await settled(admin, 1)
    assert delivery["status"] == "failed" and delivery["attempts"] == 4  # max_attempts
    assert delivery["lastError"] == "HTTP 502"
    failed = await admin.call("notification", "getDeliveries", {"status": "failed"})
    assert failed["total"] == 1


async def test_a_channel_rate_limit_holds_further_messages_back(
    admin: Any, make_user: Any, receiver: Any, until: Any
) -> None:
    channel = await webhook_channel(admin, receiver.url, SECRET, rateLimitPerMinute=1)
    _, _, system_id = await subscribed(admin, make_user, channel)
    await incident(admin, system_id, "First")
    await incident(admin, system_id, "Second")

    async def one_held() -> bool:
        # A pending delivery not yet attempted has a nextAttemptAt too (due at once): wait until
        # the rate limit has pushed it a minute past the one sent.
        page = await admin.call("notification", "getDeliveries", {"targetId": channel["id"]})
        statuses = sorted(d["status"] for d in page["deliveries"])
        if statuses != ["delivered", "pending"]:
            return False
        [held] = [d for d in page["deliveries"] if d["status"] == "pending"]
        [sent] = [d for d in page["deliveries"] if d["status"] == "delivered"]
        return held["nextAttemptAt"] is not None and datetime.fromisoformat(
            held["nextAttemptAt"]
        ) - datetime.fromisoformat(sent["lastAttemptAt"]) >= timedelta(seconds=59)

    await until(one_held)
    page = await admin.call("notification", "getDeliveries", {"targetId": channel["id"]})
    [held] = [d for d in page["deliveries"] if d["status"] == "pending"]
    [sent] = [d for d in page["deliveries"] if d["status"] == "delivered"]
    assert held["attempts"] == 0
    wait = datetime.fromisoformat(held["nextAttemptAt"]) - datetime.fromisoformat(
        sent["lastAttemptAt"]
    )
    assert wait >= timedelta(seconds=59)
    assert len(receiver.requests) == 1
