"""Who may see what: status reads are public and filtered by the caller's access to systems
(team-only systems included); configurations need ``healthcheck.healthcheck.read``; raw results
need ``healthcheck.details.read``; and the seed's documented calls work verbatim with an API key.

Every test runs over both ``MemoryAuth`` and the real auth plugin (``checkstack_access``).
"""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Forbidden, Unauthorized
from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for

from .conftest import DETAILS, MANAGE, READ, STATUS, healthcheck_plugins

SYSTEM = "catalog.system"


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    return plugins_for(request.param, healthcheck_plugins())


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return assert_backend(checkstack_access, checkstack_plugins)


@pytest.fixture
async def admin_caller(access: Any) -> Any:
    return await access.admin(name="Ada Admin")


@pytest.fixture
async def world(
    admin, make_system, make_check, target, access, checkstack_client
) -> dict[str, str]:
    """A public system and a team-only one (team ``ops`` may manage it), each with a check that
    has run once."""
    public = await make_system("Public site")
    secret = await make_system("Ops database")
    check = await make_check({"url": target.url, "secretHeaders": {"Authorization": "tok3n"}})
    for system in (public, secret):
        await admin.call(
            "healthcheck", "assignHealthCheck", {"id": check["id"], "systemId": system}
        )
    await access.grant("ops", SYSTEM, secret, "manage")
    await access.set_team_only(SYSTEM, secret)
    member = await access.user(MANAGE, teams=["ops"])
    for system in (public, secret):
        await checkstack_client(member).call(
            "healthcheck", "runNow", {"id": check["id"], "systemId": system}
        )
    return {"public": public, "secret": secret, "check": check["id"]}


async def history_systems(client: Any, **query: Any) -> list[str]:
    page = await client.call("healthcheck", "getHistory", query)
    return sorted(r["systemId"] for r in page["runs"])


async def test_guests_see_status_and_history_of_readable_systems_only(world, checkstack_client):
    guest = checkstack_client()
    assert await history_systems(guest) == [world["public"]]
    page = await guest.call("healthcheck", "getHistory", {})
    assert page["total"] == 1 and "result" not in page["runs"][0]
    assert (await guest.call("healthcheck", "getSystemHealth", {"systemId": world["public"]}))[
        "status"
    ] == "healthy"
    with pytest.raises(Forbidden):
        await guest.call("healthcheck", "getSystemHealth", {"systemId": world["secret"]})
    bulk = await guest.call(
        "healthcheck", "getBulkSystemHealth", {"systemIds": [world["public"], world["secret"]]}
    )
    assert list(bulk["statuses"]) == [world["public"]]
    daily = await guest.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [world["public"], world["secret"]]}
    )
    assert list(daily["systems"]) == [world["public"]]
    assert daily["systems"][world["public"]][0]["runs"] == 1
    with pytest.raises(Unauthorized):
        await guest.call("healthcheck", "getHealthChecks", {})


async def test_team_members_see_their_team_only_system(world, access, checkstack_client):
    member = checkstack_client(await access.user(teams=["ops"]))
    assert await history_systems(member) == sorted([world["public"], world["secret"]])
    assert await history_systems(member, systemId=world["secret"]) == [world["secret"]]
    outsider = checkstack_client(await access.admin())
    assert await history_systems(outsider, systemId=world["secret"]) == []
    bulk = await member.call(
        "healthcheck", "getBulkSystemHealth", {"systemIds": [world["public"], world["secret"]]}
    )
    assert sorted(bulk["statuses"]) == sorted([world["public"], world["secret"]])
    daily = await member.call(
        "healthcheck", "getDailyAvailability", {"systemIds": [world["public"], world["secret"]]}
    )
    assert [len(d) for d in daily["systems"].values()] == [1, 1]


async def test_configurations_need_the_read_rule_and_hide_secrets(world, access, checkstack_client):
    person = checkstack_client(await access.user())
    with pytest.raises(Forbidden, match=r"Missing access: healthcheck\.healthcheck\.read"):
        await person.call("healthcheck", "getHealthChecks", {})
    reader = checkstack_client(await access.application(READ))
    listed = await reader.call("healthcheck", "getHealthChecks", {})
    [check] = listed["healthChecks"]
    assert check["config"]["secretHeaders"] == {"Authorization": "********"}
    # The team-only system's assignment is not shown to a reader outside the team.
    assert [a["systemId"] for a in check["assignments"]] == [world["public"]]
    with pytest.raises(Forbidden, match=r"Missing access: healthcheck\.healthcheck\.manage"):
        await reader.call("healthcheck", "runNow", {"id": world["check"]})


async def test_raw_results_need_the_details_rule(world, access, checkstack_client):
    plain = checkstack_client(await access.application(READ))
    page = await plain.call("healthcheck", "getHistory", {"systemId": world["public"]})
    assert "result" not in page["runs"][0]
    with pytest.raises(Forbidden, match=r"Missing access: healthcheck\.details\.read"):
        await plain.call("healthcheck", "getRun", {"id": page["runs"][0]["id"]})
    detailed = checkstack_client(await access.application(DETAILS))
    page = await detailed.call("healthcheck", "getHistory", {"systemId": world["public"]})
    assert page["runs"][0]["result"]["statusCode"] == 200
    run = await detailed.call("healthcheck", "getRun", {"id": page["runs"][0]["id"]})
    assert run["result"]["statusCode"] == 200


async def test_the_seed_calls_work_verbatim_and_batched(world, access, checkstack_http):
    key = await access.application(READ)
    response = await checkstack_http.post(
        "/api/healthcheck/",
        json={
            "getHealthChecks": {},
            "getHistory": {"systemId": world["public"], "limit": 10},
            "getStrategies": {},
        },
        headers=key.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["getHealthChecks", "getHistory", "getStrategies"]
    assert body["getHealthChecks"]["healthChecks"][0]["id"] == world["check"]
    assert body["getHistory"]["total"] == 1
    # Without the read rule the whole batch is refused before anything runs.
    bare = await access.application(STATUS)
    refused = await checkstack_http.post(
        "/api/healthcheck/", json={"getHistory": {}, "getHealthChecks": {}}, headers=bare.headers
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == "Missing access: healthcheck.healthcheck.read"


async def test_uptime_bars_kept_for_one_visitor_never_reach_another(
    world, admin_caller, access, checkstack_http, checkstack_host
):
    """The status page keeps past days per system in the process; which systems a page shows
    is still the visitor's own call."""
    from datetime import timedelta

    from checkstack_healthcheck.models import DailyRow

    from checkstack_core.db import utcnow

    async with checkstack_host.db.session() as session:
        for system in (world["public"], world["secret"]):
            session.add(
                DailyRow(
                    system_id=system,
                    check_id=world["check"],
                    day=utcnow().date() - timedelta(days=1),
                    runs=10,
                    healthy=10,
                )
            )
        await session.commit()
    member = await access.user(teams=["ops"])
    seen = (await checkstack_http.get("/", headers=member.headers)).text
    assert "Ops database" in seen and seen.count('class="uptime-bars"') == 2
    guest = (await checkstack_http.get("/")).text
    assert "Ops database" not in guest and guest.count('class="uptime-bars"') == 1
    assert world["secret"] not in guest
