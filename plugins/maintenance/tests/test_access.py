"""Who may see and change windows: the rules, and resource-level access through the catalog
systems a window affects (SPEC §5.5)."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_maintenance.contract import READ, SYSTEM

from checkstack_core import Forbidden, Unauthorized

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
    procedure, body, schedule, systems, checkstack_client, checkstack_auth, checkstack_http, later
):
    window = await schedule()
    raw = body(window["id"], systems[0], later)
    reader = checkstack_auth.user(READ)
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


async def test_anonymous_callers_read_until_the_rule_is_removed(
    schedule, anonymous, checkstack_auth
):
    window = await schedule()
    listed = await anonymous.call("maintenance", "getWindows")
    assert [w["id"] for w in listed["windows"]] == [window["id"]]
    assert (await anonymous.call("maintenance", "getWindow", {"id": window["id"]}))["id"]

    checkstack_auth.anonymous_rules.clear()  # an admin removed the public rules
    for procedure, body in [
        ("getWindows", {}),
        ("getWindow", {"id": window["id"]}),
        ("getActiveWindowsForSystem", {"systemId": window["systemIds"][0]}),
    ]:
        with pytest.raises(Unauthorized) as denied:
            await anonymous.call("maintenance", procedure, body)
        assert denied.value.status == 401
        assert denied.value.message == "Authentication required"


async def test_a_user_without_the_read_rule_is_told_so(
    schedule, checkstack_client, checkstack_auth
):
    window = await schedule()
    checkstack_auth.anonymous_rules.clear()
    stranger = checkstack_client(checkstack_auth.user())
    for procedure, body in [("getWindows", {}), ("getWindow", {"id": window["id"]})]:
        with pytest.raises(Forbidden, match=r"Missing access: maintenance\.maintenance\.read"):
            await stranger.call("maintenance", procedure, body)


async def test_team_only_systems_hide_their_windows_from_outsiders(
    schedule, systems, checkstack_client, checkstack_auth, manager
):
    secret, public, other = systems
    only_secret = await schedule(title="Secret", systemIds=[secret])
    mixed = await schedule(title="Mixed", systemIds=[secret, public])
    plain = await schedule(title="Plain", systemIds=[other])
    checkstack_auth.grant("ops", SYSTEM, secret, "read")
    checkstack_auth.set_team_only(SYSTEM, secret)

    outsider = checkstack_client(checkstack_auth.user(READ, teams=["dev"]))
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

    member = checkstack_client(checkstack_auth.user(READ, teams=["ops"]))
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
    schedule, systems, checkstack_client, checkstack_auth, later
):
    secret = systems[0]
    await schedule(systemIds=[secret], startAt=later(minutes=-1))
    checkstack_auth.grant("ops", SYSTEM, secret, "read")
    checkstack_auth.set_team_only(SYSTEM, secret)
    outsider = checkstack_client(checkstack_auth.user(READ))
    with pytest.raises(Forbidden, match=f"Access denied to catalog.system {secret}"):
        await outsider.call("maintenance", "getActiveWindowsForSystem", {"systemId": secret})
    member = checkstack_client(checkstack_auth.user(READ, teams=["ops"]))
    active = await member.call("maintenance", "getActiveWindowsForSystem", {"systemId": secret})
    assert len(active["windows"]) == 1


async def test_a_team_manage_grant_admits_without_the_global_rule(
    schedule, systems, checkstack_client, checkstack_auth, later
):
    own, foreign = systems[0], systems[1]
    checkstack_auth.grant("ops", SYSTEM, own, "manage")
    member = checkstack_client(checkstack_auth.user(teams=["ops"], name="Olga Ops"))
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
    schedule, systems, checkstack_client, checkstack_auth, checkstack_host
):
    admin = checkstack_client(checkstack_auth.admin())
    with pytest.raises(Forbidden, match="This procedure is for services only"):
        await admin.call("maintenance", "isSuppressed", {"systemId": systems[0]})
    async with checkstack_host.service_context("healthcheck") as ctx:
        answer: Any = await ctx.call("maintenance", "isSuppressed", {"systemId": systems[0]})
    assert answer.suppressed is False
