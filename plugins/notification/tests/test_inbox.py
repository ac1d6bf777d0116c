"""Subscriptions and the inbox: pagination, unread counts, marking read; and attackers: nobody
sees (or subscribes to) a system they cannot read, or touches another user's inbox."""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Forbidden, NotFound, Unauthorized

from .conftest import TEAMS

SYSTEM = "catalog.system"


async def incident(admin: Any, system_ids: list[str], title: str) -> None:
    await admin.call(
        "incident",
        "createIncident",
        {"title": title, "severity": "minor", "systemIds": system_ids},
    )


async def inbox_total(user: Any, expected: int) -> bool:
    return bool((await user.call("notification", "getNotifications"))["total"] >= expected)


async def test_the_inbox_pages_counts_and_marks_read(
    admin: Any, make_user: Any, until: Any
) -> None:
    system = await admin.call("catalog", "createSystem", {"name": "Web"})
    ann, _ = await make_user()
    sub = await ann.call("notification", "subscribe", {"systemId": system["id"]})
    assert sub["ownerKind"] == "user" and sub["minImportance"] == "info"
    for n in range(5):
        await incident(admin, [system["id"]], f"Incident {n}")
    await until(lambda: inbox_total(ann, 5))

    page = await ann.call("notification", "getNotifications", {"limit": 2, "offset": 1})
    assert page["total"] == 5 and page["unread"] == 5 and len(page["notifications"]) == 2
    everything = (await ann.call("notification", "getNotifications", {"limit": 10}))[
        "notifications"
    ]
    assert [n["id"] for n in everything[1:3]] == [n["id"] for n in page["notifications"]]
    assert await ann.call("notification", "getUnreadCount") == {"count": 5}

    marked = await ann.call("notification", "markRead", {"ids": [everything[0]["id"]]})
    assert marked == {"count": 1}
    assert await ann.call("notification", "markRead", {"ids": [everything[0]["id"]]}) == {
        "count": 0
    }
    unread = await ann.call("notification", "getNotifications", {"unreadOnly": True})
    assert unread["total"] == 4 and unread["unread"] == 4
    assert await ann.call("notification", "markAllRead") == {"count": 4}
    assert await ann.call("notification", "getUnreadCount") == {"count": 0}

    # A stricter minimum importance: minor incidents (info) no longer reach her.
    await ann.call(
        "notification", "subscribe", {"systemId": system["id"], "minImportance": "critical"}
    )
    assert len((await ann.call("notification", "getSubscriptions"))["subscriptions"]) == 1
    await ann.call("notification", "unsubscribe", {"id": sub["id"]})
    assert (await ann.call("notification", "getSubscriptions"))["subscriptions"] == []


async def test_a_user_never_sees_a_system_they_cannot_read(
    admin: Any, make_user: Any, checkstack_access: Any, until: Any
) -> None:
    open_system = await admin.call("catalog", "createSystem", {"name": "Public site"})
    secret_system = await admin.call("catalog", "createSystem", {"name": "Vault"})
    group = await admin.call("catalog", "createGroup", {"name": "Everything"})
    for system in (open_system, secret_system):
        await admin.call(
            "catalog", "addSystemToGroup", {"systemId": system["id"], "groupId": group["id"]}
        )
    await checkstack_access.grant("vault-team", SYSTEM, secret_system["id"], "read")
    await checkstack_access.set_team_only(SYSTEM, secret_system["id"])
    insider, _ = await make_user(teams=("vault-team",))
    outsider, _ = await make_user()
    # A team-only system is out of reach even of admins: a team member reports its incidents.
    await checkstack_access.grant("vault-ops", SYSTEM, secret_system["id"], "manage")
    reporter, _ = await make_user("incident.incident.manage", teams=("vault-ops",))

    # Subscribing straight to it answers like a system that does not exist.
    with pytest.raises(NotFound, match=f"System not found: {secret_system['id']}"):
        await outsider.call("notification", "subscribe", {"systemId": secret_system["id"]})
    # Through the group the outsider hears about the systems it can read, never the other.
    await outsider.call("notification", "subscribe", {"groupId": group["id"]})
    await insider.call("notification", "subscribe", {"groupId": group["id"]})
    await incident(reporter, [secret_system["id"]], "Vault breach")
    await incident(reporter, [open_system["id"], secret_system["id"]], "Both down")
    await until(lambda: inbox_total(insider, 2))
    await until(lambda: inbox_total(outsider, 1))

    seen = (await outsider.call("notification", "getNotifications"))["notifications"]
    assert [n["title"] for n in seen] == ["Incident reported: Both down"]
    assert seen[0]["systemIds"] == [open_system["id"]]
    insider_seen = (await insider.call("notification", "getNotifications"))["notifications"]
    assert sorted(n["title"] for n in insider_seen) == [
        "Incident reported: Both down",
        "Incident reported: Vault breach",
    ]

    # Access withdrawn later: what the outsider got disappears from its inbox and its count.
    await checkstack_access.grant("web-team", SYSTEM, open_system["id"], "read")
    await checkstack_access.set_team_only(SYSTEM, open_system["id"])
    assert (await outsider.call("notification", "getNotifications"))["total"] == 0
    assert await outsider.call("notification", "getUnreadCount") == {"count": 0}

    # Nobody reads or marks another user's notifications.
    theirs = insider_seen[0]["id"]
    assert await outsider.call("notification", "markRead", {"ids": [theirs]}) == {"count": 0}
    assert (await insider.call("notification", "getUnreadCount"))["count"] == 2


async def test_subscriptions_belong_to_their_owner(
    admin: Any, make_user: Any, checkstack_client: Any, checkstack_access: Any
) -> None:
    system = await admin.call("catalog", "createSystem", {"name": "Mail"})
    ann, _ = await make_user()
    bob, _ = await make_user()
    sub = await ann.call("notification", "subscribe", {"systemId": system["id"]})
    with pytest.raises(NotFound, match="Subscription not found"):
        await bob.call("notification", "unsubscribe", {"id": sub["id"]})
    assert (await bob.call("notification", "getSubscriptions"))["subscriptions"] == []
    # Team subscriptions need their own rule; an API key is not a user with an inbox.
    with pytest.raises(Forbidden, match=r"Missing access: notification\.subscription\.manage"):
        await bob.call("notification", "subscribeTeam", {"teamId": "t", "systemId": system["id"]})
    with pytest.raises(NotFound, match="Team not found: t"):
        lead, _ = await make_user(TEAMS)
        await lead.call("notification", "subscribeTeam", {"teamId": "t", "systemId": system["id"]})
    app = checkstack_client(await checkstack_access.application("notification.notification.read"))
    with pytest.raises(Forbidden, match="for users only"):
        await app.call("notification", "getNotifications")
    with pytest.raises(Unauthorized):
        await checkstack_client().call("notification", "getNotifications")
    from checkstack_core import BadRequest

    with pytest.raises(BadRequest):
        await ann.call("notification", "subscribe", {"systemId": "a", "groupId": "b"})
    with pytest.raises(BadRequest):
        await ann.call("notification", "setMyChannels", {"channelIds": ["nope"]})
