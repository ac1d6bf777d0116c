"""Who may see and change which incidents: rules, team grants and team-only systems.

An incident is visible to whoever may read one of its systems (and lists only those systems);
changing it needs ``incident.incident.manage`` globally or a manage grant on every system.

Every test runs twice, through the ``checkstack_access`` kit: over ``MemoryAuth`` (the test kit's
fake) and over the real auth plugin (real users, API keys, teams, grants and the guests' role), so
the fake cannot drift from the product unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Forbidden, Unauthorized
from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for

SYSTEM = "catalog.system"
READ = "incident.incident.read"
MANAGE = "incident.incident.manage"


async def listed(client: Any, **query: Any) -> tuple[list[str], int]:
    page = await client.call("incident", "getIncidents", query)
    return [i["id"] for i in page["incidents"]], page["total"]


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_incident import plugin as incident

    return plugins_for(request.param, [catalog, incident])


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return assert_backend(checkstack_access, checkstack_plugins)


@pytest.fixture
async def admin_caller(access: Any) -> Any:
    """The administrator who makes systems and incidents (replaces the conftest's in-memory one)."""
    return await access.admin(name="Ada Admin")


@pytest.fixture
async def world(make_system, make_incident, access) -> dict[str, str]:
    """A public system and a team-only system that team ``ops`` may manage."""
    public = await make_system("Public site")
    secret = await make_system("Ops database")
    await access.grant("ops", SYSTEM, secret, "manage")
    await access.set_team_only(SYSTEM, secret)
    return {"public": public, "secret": secret}


async def test_team_only_incidents_are_invisible_to_outsiders(world, checkstack_client, access):
    member = checkstack_client(await access.user(MANAGE, teams=["ops"]))
    secret_incident = await member.call(
        "incident",
        "createIncident",
        {"title": "DB", "severity": "major", "systemIds": [world["secret"]]},
    )
    both = await member.call(
        "incident",
        "createIncident",
        {"title": "Both", "severity": "minor", "systemIds": [world["secret"], world["public"]]},
    )
    public_only = await member.call(
        "incident",
        "createIncident",
        {"title": "Site", "severity": "minor", "systemIds": [world["public"]]},
    )

    for outsider in (
        checkstack_client(await access.user(READ, MANAGE, teams=["dev"])),
        checkstack_client(await access.admin()),
        checkstack_client(),
    ):
        assert await listed(outsider) == ([public_only["id"], both["id"]], 2)
        page = await outsider.call("incident", "getIncidents", {})
        assert [i["systemIds"] for i in page["incidents"]] == [[world["public"]]] * 2
        assert await listed(outsider, systemId=world["secret"]) == ([], 0)
        with pytest.raises(Forbidden) as denied:
            await outsider.call("incident", "getIncident", {"id": secret_incident["id"]})
        assert denied.value.status == 403
        assert denied.value.message == "Access denied to a catalog.system this call affects"
        assert world["secret"] not in denied.value.message
        shared = await outsider.call("incident", "getIncident", {"id": both["id"]})
        assert shared["systemIds"] == [world["public"]]

    assert await listed(member) == ([public_only["id"], both["id"], secret_incident["id"]], 3)
    assert await listed(member, systemId=world["secret"]) == (
        [both["id"], secret_incident["id"]],
        2,
    )
    detail = await member.call("incident", "getIncident", {"id": both["id"]})
    assert detail["systemIds"] == sorted([world["secret"], world["public"]])


async def test_pages_count_only_visible_incidents(world, checkstack_client, access):
    member = checkstack_client(await access.user(MANAGE, teams=["ops"]))
    for n in range(3):
        for key in ("secret", "public"):
            await member.call(
                "incident",
                "createIncident",
                {"title": f"{key} {n}", "severity": "minor", "systemIds": [world[key]]},
            )
    outsider = checkstack_client(await access.user(READ))
    first = await outsider.call("incident", "getIncidents", {"limit": 2})
    second = await outsider.call("incident", "getIncidents", {"limit": 2, "offset": 2})
    assert first["total"] == second["total"] == 3
    titles = [i["title"] for i in first["incidents"] + second["incidents"]]
    assert titles == ["public 2", "public 1", "public 0"]


async def test_team_manage_grant_admits_without_the_global_rule(
    world, make_system, checkstack_client, access
):
    member = checkstack_client(await access.user(teams=["ops"]))  # no global manage
    created = await member.call(
        "incident",
        "createIncident",
        {"title": "DB", "severity": "major", "systemIds": [world["secret"]]},
    )
    incident_id = created["id"]
    await member.call("incident", "addUpdate", {"id": incident_id, "message": "on it"})
    await member.call("incident", "resolveIncident", {"id": incident_id})
    # ...but not on a system the grant does not cover, nor to move the incident onto one.
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {world['public']}"):
        await member.call(
            "incident",
            "createIncident",
            {"title": "x", "severity": "minor", "systemIds": [world["secret"], world["public"]]},
        )
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {world['public']}"):
        await member.call(
            "incident", "updateIncident", {"id": incident_id, "systemIds": [world["public"]]}
        )
    await member.call("incident", "deleteIncident", {"id": incident_id})


async def test_global_managers_outside_the_team_cannot_touch_team_only_incidents(
    world, checkstack_client, access
):
    member = checkstack_client(await access.user(teams=["ops"]))
    incident_id = (
        await member.call(
            "incident",
            "createIncident",
            {"title": "DB", "severity": "major", "systemIds": [world["secret"]]},
        )
    )["id"]
    manager = checkstack_client(await access.user(MANAGE))
    denied = f"Access denied to catalog.system {world['secret']}"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("updateIncident", {"id": incident_id, "title": "mine"}),
        ("addUpdate", {"id": incident_id, "message": "hi"}),
        ("resolveIncident", {"id": incident_id}),
        ("deleteIncident", {"id": incident_id}),
        ("createIncident", {"title": "t", "severity": "minor", "systemIds": [world["secret"]]}),
    ]
    for procedure, body in calls:
        # The system is named only when the caller named it; otherwise it stays undisclosed.
        sent = world["secret"] in body.get("systemIds", [])
        expected = denied if sent else "Access denied to a catalog.system this call affects"
        with pytest.raises(Forbidden) as refused:
            await manager.call("incident", procedure, body)
        assert refused.value.message == expected


@pytest.mark.parametrize(
    ("procedure", "body"),
    [
        ("createIncident", {"title": "t", "severity": "minor", "systemIds": ["{system}"]}),
        ("updateIncident", {"id": "{incident}", "title": "x"}),
        ("addUpdate", {"id": "{incident}", "message": "x"}),
        ("resolveIncident", {"id": "{incident}"}),
        ("deleteIncident", {"id": "{incident}"}),
        ("updateIncident", {"id": "missing", "title": "x"}),
    ],
)
async def test_mutations_without_manage_are_forbidden(
    procedure, body, make_system, make_incident, checkstack_client, access
):
    system = await make_system("Site")
    incident = await make_incident([system])
    filled = {
        k: ([system] if v == ["{system}"] else incident["id"] if v == "{incident}" else v)
        for k, v in body.items()
    }
    for caller in (await access.user(READ), await access.application(READ)):
        with pytest.raises(Forbidden) as denied:
            await checkstack_client(caller).call("incident", procedure, filled)
        assert denied.value.status == 403
        assert denied.value.message == "Missing access: incident.incident.manage"
    with pytest.raises(Unauthorized) as anonymous:
        await checkstack_client().call("incident", procedure, filled)
    assert anonymous.value.status == 401


async def test_anonymous_readers_lose_access_when_the_public_rule_is_removed(
    make_system, make_incident, checkstack_client, access
):
    system = await make_system("Site")
    incident = await make_incident([system])
    anonymous = checkstack_client()
    assert await listed(anonymous) == ([incident["id"]], 1)
    assert (await anonymous.call("incident", "getIncident", {"id": incident["id"]}))["id"]

    await access.revoke_anonymous()  # an admin took every rule away from guests
    for procedure, body in (("getIncidents", {}), ("getIncident", {"id": incident["id"]})):
        with pytest.raises(Unauthorized) as denied:
            await anonymous.call("incident", procedure, body)
        assert denied.value.status == 401
    # A caller without the read rule is refused with the rule named (an API key: every person
    # holds incident.read through the users role).
    reader_less = checkstack_client(await access.application())
    with pytest.raises(Forbidden, match=r"Missing access: incident\.incident\.read"):
        await reader_less.call("incident", "getIncidents", {})
    with pytest.raises(Forbidden, match=r"Missing access: incident\.incident\.read"):
        await reader_less.call("incident", "getIncident", {"id": incident["id"]})


async def test_incidents_without_systems_follow_the_global_read_rule(
    make_system, make_incident, admin, checkstack_client, access, checkstack_host
):
    system = await make_system("Gone soon")
    incident = await make_incident([system])
    await admin.call("catalog", "deleteSystem", {"id": system})
    await checkstack_host.events.drain()
    reader = checkstack_client(await access.user(READ))
    assert await listed(reader) == ([incident["id"]], 1)
    assert (await reader.call("incident", "getIncident", {"id": incident["id"]}))["systemIds"] == []
