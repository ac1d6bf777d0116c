"""Who may see and change windows: the rules, and resource-level access through the catalog
systems a window affects (SPEC §5.5).

Every test runs twice, through the ``checkstack_access`` kit: over ``MemoryAuth`` (the test kit's
fake) and over the real auth plugin (real users, API keys, teams, grants and the guests' role), so
the fake cannot drift from the product unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_maintenance.contract import MANAGE, READ, SYSTEM

from checkstack_core import Forbidden, Unauthorized
from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_maintenance import plugin as maintenance

    return plugins_for(request.param, [catalog, maintenance])


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return assert_backend(checkstack_access, checkstack_plugins)


# The conftest's callers, made by the kit instead of the in-memory fake directly.
@pytest.fixture
async def admin_caller(access: Any) -> Any:
    return await access.admin(name="Ada Admin")


@pytest.fixture
async def manager_caller(access: Any) -> Any:
    return await access.user(MANAGE, name="Max Manager")


MUTATIONS = [
    (
        "scheduleWindow",
        lambda w, s, later: {
            "title": "x",
            "startAt": later(hours=1),
            "endAt": later(hours=2),
            "systemIds": [s],
        },
    ),
    ("updateWindow", lambda w, s, later: {"id": w, "title": "changed"}),
    ("addUpdate", lambda w, s, later: {"id": w, "message": "hello"}),
    ("completeWindow", lambda w, s, later: {"id": w}),
    ("cancelWindow", lambda w, s, later: {"id": w}),
    ("deleteWindow", lambda w, s, later: {"id": w}),
]


@pytest.mark.parametrize(("procedure", "body"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
async def test_every_mutation_needs_the_manage_rule(
    procedure, body, schedule, systems, checkstack_client, access, checkstack_http, later
):
    window = await schedule()
    raw = body(window["id"], systems[0], later)
    reader = await access.user(READ)
    response = await checkstack_http.post(
        "/api/maintenance/", json={procedure: raw}, headers=reader.headers
    )
    assert response.status_code == 403
    assert response.json() == {
        "code": "FORBIDDEN",
        "message": "Missing access: maintenance.maintenance.manage",
        "procedure": procedure,
    }
    with pytest.raises(Unauthorized):
        await checkstack_client().call("maintenance", procedure, raw)
    # An unknown window is not revealed to a caller who could not change it anyway.
    if "id" in raw:
        with pytest.raises(Forbidden, match=r"Missing access: maintenance\.maintenance\.manage"):
            await checkstack_client(reader).call(
                "maintenance", procedure, {**raw, "id": "no-such-window"}
            )


async def test_anonymous_callers_read_until_the_rule_is_removed(schedule, anonymous, access):
    window = await schedule()
    listed = await anonymous.call("maintenance", "getWindows")
    assert [w["id"] for w in listed["windows"]] == [window["id"]]
    assert (await anonymous.call("maintenance", "getWindow", {"id": window["id"]}))["id"]

    await access.revoke_anonymous()  # an admin removed the public rules
    for procedure, body in [
        ("getWindows", {}),
        ("getWindow", {"id": window["id"]}),
        ("getActiveWindowsForSystem", {"systemId": window["systemIds"][0]}),
    ]:
        with pytest.raises(Unauthorized) as denied:
            await anonymous.call("maintenance", procedure, body)
        assert denied.value.status == 401
        assert denied.value.message == "Authentication required"


async def test_a_caller_without_the_read_rule_is_told_so(schedule, checkstack_client, access):
    window = await schedule()
    await access.revoke_anonymous()
    # An API key: every person holds maintenance.read through the users role.
    stranger = checkstack_client(await access.application())
    for procedure, body in [("getWindows", {}), ("getWindow", {"id": window["id"]})]:
        with pytest.raises(Forbidden, match=r"Missing access: maintenance\.maintenance\.read"):
            await stranger.call("maintenance", procedure, body)


async def test_team_only_systems_hide_their_windows_from_outsiders(
    schedule, systems, checkstack_client, access, manager
):
    secret, public, other = systems
    only_secret = await schedule(title="Secret", systemIds=[secret])
    mixed = await schedule(title="Mixed", systemIds=[secret, public])
    plain = await schedule(title="Plain", systemIds=[other])
    await access.grant("ops", SYSTEM, secret, "read")
    await access.set_team_only(SYSTEM, secret)

    outsider = checkstack_client(await access.user(READ, teams=["dev"]))
    listed = await outsider.call("maintenance", "getWindows")
    assert listed["total"] == 2
    by_id = {w["id"]: w for w in listed["windows"]}
    assert set(by_id) == {mixed["id"], plain["id"]}
    assert by_id[mixed["id"]]["systemIds"] == [public]  # the secret system is not named
    with pytest.raises(Forbidden) as refused:
        await outsider.call("maintenance", "getWindow", {"id": only_secret["id"]})
    # The caller named the window, not the system: the system stays undisclosed.
    assert refused.value.message == "Access denied to a catalog.system this call affects"
    seen = await outsider.call("maintenance", "getWindow", {"id": mixed["id"]})
    assert seen["systemIds"] == [public]
    filtered = await outsider.call("maintenance", "getWindows", {"systemId": secret})
    assert filtered == {"windows": [], "total": 0}
    anonymous = checkstack_client()
    assert (await anonymous.call("maintenance", "getWindows"))["total"] == 2

    member = checkstack_client(await access.user(READ, teams=["ops"]))
    assert (await member.call("maintenance", "getWindows"))["total"] == 3
    detail = await member.call("maintenance", "getWindow", {"id": mixed["id"]})
    assert detail["systemIds"] == sorted([secret, public])
    assert (await member.call("maintenance", "getWindows", {"systemId": secret}))["total"] == 2

    # A global manager outside the team cannot touch windows of the team-only system...
    for procedure, body, message in [
        (
            "completeWindow",
            {"id": mixed["id"]},
            "Access denied to a catalog.system this call affects",
        ),
        (
            "updateWindow",
            {"id": plain["id"], "systemIds": [other, secret]},
            f"Access denied to catalog.system {secret}",
        ),
    ]:
        with pytest.raises(Forbidden) as refused:
            await manager.call("maintenance", procedure, body)
        assert refused.value.message == message
    # ...nor does the team's read grant let a member without the manage rule change them.
    with pytest.raises(Forbidden):
        await member.call("maintenance", "cancelWindow", {"id": only_secret["id"]})


async def test_active_windows_for_a_team_only_system(
    schedule, systems, checkstack_client, access, later
):
    secret = systems[0]
    await schedule(systemIds=[secret], startAt=later(minutes=-1))
    await access.grant("ops", SYSTEM, secret, "read")
    await access.set_team_only(SYSTEM, secret)
    outsider = checkstack_client(await access.user(READ))
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {secret}"):
        await outsider.call("maintenance", "getActiveWindowsForSystem", {"systemId": secret})
    member = checkstack_client(await access.user(READ, teams=["ops"]))
    active = await member.call("maintenance", "getActiveWindowsForSystem", {"systemId": secret})
    assert len(active["windows"]) == 1


async def test_a_team_manage_grant_admits_without_the_global_rule(
    schedule, systems, checkstack_client, access, later
):
    own, foreign = systems[0], systems[1]
    await access.grant("ops", SYSTEM, own, "manage")
    member = checkstack_client(await access.user(teams=["ops"], name="Olga Ops"))
    body = {"title": "Ops work", "startAt": later(hours=1), "endAt": later(hours=2)}
    window = await member.call("maintenance", "scheduleWindow", {**body, "systemIds": [own]})
    assert window["createdBy"]["name"] == "Olga Ops"
    await member.call("maintenance", "addUpdate", {"id": window["id"], "message": "on it"})
    # Every affected system needs the grant: one without it is named.
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {foreign}"):
        await member.call("maintenance", "scheduleWindow", {**body, "systemIds": [own, foreign]})
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {foreign}"):
        await member.call(
            "maintenance", "updateWindow", {"id": window["id"], "systemIds": [own, foreign]}
        )
    # The manage grant implies read, and the window is listed.
    assert (await member.call("maintenance", "getWindow", {"id": window["id"]}))["id"]
    await member.call("maintenance", "deleteWindow", {"id": window["id"]})


async def test_is_suppressed_is_for_services_only(
    schedule, systems, checkstack_client, access, checkstack_host
):
    admin = checkstack_client(await access.admin())
    with pytest.raises(Forbidden, match="This procedure is for services only"):
        await admin.call("maintenance", "isSuppressed", {"systemId": systems[0]})
    async with checkstack_host.service_context("healthcheck") as ctx:
        answer: Any = await ctx.call("maintenance", "isSuppressed", {"systemId": systems[0]})
    assert answer.suppressed is False
