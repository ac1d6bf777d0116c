"""Systems: create, read, update (clearing the description), delete, names and events."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from checkstack_catalog.contract import SYSTEM_CREATED, SYSTEM_DELETED, SYSTEM_UPDATED, System
from checkstack_catalog.models import MembershipRow, SystemRow
from sqlmodel import select

from checkstack_core import Conflict, Context, Event, Forbidden, NotFound, Plugin

# -- create and read ------------------------------------------------------------------------------


async def test_create_and_get_a_system(manager, anonymous):
    created = await manager.call(
        "catalog",
        "createSystem",
        {"name": "  Payments API ", "description": "Card payments", "metadata": {"tier": 1}},
    )
    assert created["name"] == "Payments API"  # trimmed
    assert created["description"] == "Card payments"
    assert created["metadata"] == {"tier": 1}
    assert created["groupIds"] == []
    assert created["createdAt"] == created["updatedAt"]
    assert datetime.fromisoformat(created["createdAt"]).utcoffset().total_seconds() == 0

    fetched = await anonymous.call("catalog", "getSystem", {"id": created["id"]}, type=System)
    assert fetched.id == created["id"]
    assert fetched.name == "Payments API"
    assert fetched.metadata == {"tier": 1}
    assert fetched.created_at.tzinfo is not None


async def test_defaults_of_a_new_system(manager):
    created = await manager.call("catalog", "createSystem", {"name": "Bare"})
    assert created["description"] is None
    assert created["metadata"] == {}


async def test_get_systems_lists_every_system_by_name_ignoring_case(manager, anonymous):
    for name in ("beta", "Alpha", "gamma", "ALPHA two"):
        await manager.call("catalog", "createSystem", {"name": name})
    listed = await anonymous.call("catalog", "getSystems")
    assert [s["name"] for s in listed["systems"]] == ["Alpha", "ALPHA two", "beta", "gamma"]
    assert await anonymous.call("catalog", "getSystems", {}) == listed


async def test_get_systems_of_one_group(manager, anonymous):
    web = await manager.call("catalog", "createSystem", {"name": "Web"})
    await manager.call("catalog", "createSystem", {"name": "Batch"})
    group = await manager.call("catalog", "createGroup", {"name": "Frontend"})
    await manager.call(
        "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": web["id"]}
    )

    listed = await anonymous.call("catalog", "getSystems", {"groupId": group["id"]})
    assert [s["id"] for s in listed["systems"]] == [web["id"]]
    assert listed["systems"][0]["groupIds"] == [group["id"]]

    with pytest.raises(NotFound, match="Group not found: nope"):
        await anonymous.call("catalog", "getSystems", {"groupId": "nope"})


async def test_an_unknown_system_is_not_found(anonymous):
    with pytest.raises(NotFound) as missing:
        await anonymous.call("catalog", "getSystem", {"id": "no-such-system"})
    assert missing.value.status == 404
    assert missing.value.message == "System not found: no-such-system"


# -- update ---------------------------------------------------------------------------------------


async def test_update_changes_only_the_fields_given(manager):
    created = await manager.call(
        "catalog", "createSystem", {"name": "Mail", "description": "SMTP", "metadata": {"a": 1}}
    )
    renamed = await manager.call("catalog", "updateSystem", {"id": created["id"], "name": "Email"})
    assert renamed["name"] == "Email"
    assert renamed["description"] == "SMTP"
    assert renamed["metadata"] == {"a": 1}
    assert renamed["createdAt"] == created["createdAt"]
    assert renamed["updatedAt"] > created["updatedAt"]

    changed = await manager.call(
        "catalog", "updateSystem", {"id": created["id"], "metadata": {"b": [1, 2]}}
    )
    assert changed["metadata"] == {"b": [1, 2]}
    assert changed["name"] == "Email"
    assert changed["description"] == "SMTP"


async def test_null_clears_the_description_and_absence_keeps_it(manager, anonymous):
    created = await manager.call("catalog", "createSystem", {"name": "DNS", "description": "Zones"})
    kept = await manager.call("catalog", "updateSystem", {"id": created["id"]})
    assert kept["description"] == "Zones"
    assert kept["updatedAt"] == created["updatedAt"]  # nothing changed

    cleared = await manager.call(
        "catalog", "updateSystem", {"id": created["id"], "description": None}
    )
    assert cleared["description"] is None
    fetched = await anonymous.call("catalog", "getSystem", {"id": created["id"]})
    assert fetched["description"] is None

    set_again = await manager.call(
        "catalog", "updateSystem", {"id": created["id"], "description": "Resolvers"}
    )
    assert set_again["description"] == "Resolvers"
    blank = await manager.call(
        "catalog", "updateSystem", {"id": created["id"], "description": "  "}
    )
    assert blank["description"] is None


async def test_updating_a_missing_system_is_not_found(manager):
    with pytest.raises(NotFound, match="System not found: gone"):
        await manager.call("catalog", "updateSystem", {"id": "gone", "name": "X"})


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["API", "api", "  Api  ", "aPI"])
async def test_system_names_are_unique_ignoring_case_and_spaces(manager, other):
    await manager.call("catalog", "createSystem", {"name": "Api"})
    with pytest.raises(Conflict) as clash:
        await manager.call("catalog", "createSystem", {"name": other})
    assert clash.value.status == 409
    assert clash.value.message == f'A system named "{other.strip()}" already exists'


async def test_unicode_case_folding_applies(manager):
    await manager.call("catalog", "createSystem", {"name": "Straße"})
    with pytest.raises(Conflict):
        await manager.call("catalog", "createSystem", {"name": "STRASSE"})


async def test_renaming_onto_another_systems_name_conflicts(manager):
    await manager.call("catalog", "createSystem", {"name": "Billing"})
    other = await manager.call("catalog", "createSystem", {"name": "Invoices"})
    with pytest.raises(Conflict, match='A system named "billing" already exists'):
        await manager.call("catalog", "updateSystem", {"id": other["id"], "name": "billing"})
    # A system may change the case of its own name.
    recased = await manager.call("catalog", "updateSystem", {"id": other["id"], "name": "INVOICES"})
    assert recased["name"] == "INVOICES"


async def test_a_group_and_a_system_may_share_a_name(manager):
    await manager.call("catalog", "createSystem", {"name": "Storage"})
    group = await manager.call("catalog", "createGroup", {"name": "storage"})
    assert group["name"] == "storage"


async def test_concurrent_creates_of_one_name_let_exactly_one_win(manager, anonymous):
    results = await asyncio.gather(
        *(manager.call("catalog", "createSystem", {"name": name}) for name in ("Queue", "QUEUE ")),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], Conflict), lost[0]
    listed = await anonymous.call("catalog", "getSystems")
    assert [s["name"] for s in listed["systems"]] == [won[0]["name"]]


async def test_a_failing_batch_creates_nothing(anonymous, checkstack_http, checkstack_auth):
    caller = checkstack_auth.user("catalog.catalog.manage")
    response = await checkstack_http.post(
        "/api/catalog/",
        json={"createSystem": {"name": "One"}, "createGroup": {"name": "One"}},
        headers=caller.headers,
    )
    assert response.status_code == 200
    response = await checkstack_http.post(
        "/api/catalog/",
        json={"createSystem": {"name": "Two"}, "createGroup": {"name": "one"}},
        headers=caller.headers,
    )
    assert response.status_code == 409
    assert response.json() == {
        "code": "CONFLICT",
        "message": 'A group named "one" already exists',
        "procedure": "createGroup",
    }
    listed = await anonymous.call("catalog", "getSystems")
    assert [s["name"] for s in listed["systems"]] == ["One"]


# -- delete ---------------------------------------------------------------------------------------


async def test_delete_removes_the_system_and_its_memberships(manager, checkstack_host):
    system = await manager.call("catalog", "createSystem", {"name": "Cache"})
    keep = await manager.call("catalog", "createSystem", {"name": "Keep"})
    groups = [await manager.call("catalog", "createGroup", {"name": n}) for n in ("G1", "G2")]
    for group in groups:
        for member in (system, keep):
            await manager.call(
                "catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": member["id"]}
            )

    assert await manager.call("catalog", "deleteSystem", {"id": system["id"]}) == {
        "id": system["id"]
    }

    with pytest.raises(NotFound, match=f"System not found: {system['id']}"):
        await manager.call("catalog", "getSystem", {"id": system["id"]})
    with pytest.raises(NotFound, match=f"System not found: {system['id']}"):
        await manager.call("catalog", "deleteSystem", {"id": system["id"]})
    listed = await manager.call("catalog", "getGroups")
    assert [g["systemIds"] for g in listed["groups"]] == [[keep["id"]], [keep["id"]]]

    async with checkstack_host.db.session() as session:
        memberships = (await session.exec(select(MembershipRow))).all()
        assert {(m.system_id, m.group_id) for m in memberships} == {
            (keep["id"], groups[0]["id"]),
            (keep["id"], groups[1]["id"]),
        }
        assert await session.get(SystemRow, system["id"]) is None


async def test_deleting_a_missing_system_is_not_found(manager):
    with pytest.raises(NotFound) as missing:
        await manager.call("catalog", "deleteSystem", {"id": "never-was"})
    assert missing.value.message == "System not found: never-was"


# -- events ---------------------------------------------------------------------------------------


class TestEvents:
    """A listener plugin, loaded beside the catalog for these tests, records catalog events."""

    @pytest.fixture
    def seen(self) -> list[tuple[str, dict, bool]]:
        return []

    @pytest.fixture
    def checkstack_plugins(
        self, checkstack_plugins: list[Plugin], seen: list[tuple[str, dict, bool]]
    ) -> list[Plugin]:
        listener = Plugin(id="listener", name="Listener", depends_on=["catalog"])

        for name in (SYSTEM_CREATED, SYSTEM_UPDATED, SYSTEM_DELETED):

            @listener.on_event(name, mode="work_queue", group="system-cleanup")
            async def remember(ctx: Context, event: Event) -> None:
                # Delivered after the commit: the listener's own transaction sees the change.
                row = await ctx.session.get(SystemRow, event.payload["systemId"])
                seen.append((event.name, event.payload, row is not None))

        return [*checkstack_plugins, listener]

    async def test_each_change_is_announced_once_after_commit(self, manager, checkstack_host, seen):
        system = await manager.call("catalog", "createSystem", {"name": "Search"})
        await checkstack_host.events.drain()  # let the listener look before the next change
        await manager.call("catalog", "updateSystem", {"id": system["id"], "name": "Find"})
        await manager.call("catalog", "updateSystem", {"id": system["id"], "name": "Find"})
        await checkstack_host.events.drain()
        await manager.call("catalog", "deleteSystem", {"id": system["id"]})
        await checkstack_host.events.drain()
        sid = system["id"]
        assert seen == [
            (SYSTEM_CREATED, {"systemId": sid, "systemName": "Search"}, True),
            (SYSTEM_UPDATED, {"systemId": sid, "systemName": "Find"}, True),
            (
                SYSTEM_DELETED,
                {
                    "systemId": sid,
                    "systemName": "Find",
                    "resourceType": "catalog.system",
                    "resourceId": sid,
                },
                False,
            ),
        ]

    async def test_concurrent_deletions_delete_and_announce_once(
        self, manager, checkstack_host, seen
    ):
        # Six managers delete the same system at once: one deletes it and announces it, the
        # others find it gone (404, as a later deletion would), on PostgreSQL too.
        system = await manager.call("catalog", "createSystem", {"name": "Twice"})
        await checkstack_host.events.drain()
        seen.clear()
        results = await asyncio.gather(
            *(manager.call("catalog", "deleteSystem", {"id": system["id"]}) for _ in range(6)),
            return_exceptions=True,
        )
        assert results.count({"id": system["id"]}) == 1, results
        assert all(isinstance(r, NotFound) for r in results if r != {"id": system["id"]})
        await checkstack_host.events.drain()
        assert [name for name, _payload, _found in seen] == [SYSTEM_DELETED]

    async def test_nothing_is_announced_when_the_transaction_rolls_back(
        self, manager, checkstack_host, seen
    ):
        system = await manager.call("catalog", "createSystem", {"name": "Ledger"})
        await checkstack_host.events.drain()
        seen.clear()
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with checkstack_host.service_context("catalog") as ctx:
                await ctx.call("catalog", "deleteSystem", {"id": system["id"]})
                raise RuntimeError("changed my mind")
        await checkstack_host.events.drain()
        assert seen == []
        assert (await manager.call("catalog", "getSystem", {"id": system["id"]}))[
            "name"
        ] == "Ledger"

    async def test_a_rejected_delete_announces_nothing(self, manager, checkstack_host, seen):
        with pytest.raises(NotFound):
            await manager.call("catalog", "deleteSystem", {"id": "missing"})
        await checkstack_host.events.drain()
        assert seen == []


# -- for other plugins ----------------------------------------------------------------------------


async def test_other_plugins_resolve_systems_as_a_service(manager, checkstack_host, anonymous):
    a = await manager.call("catalog", "createSystem", {"name": "A"})
    b = await manager.call("catalog", "createSystem", {"name": "B"})
    async with checkstack_host.service_context("catalog") as ctx:
        found = await ctx.call(
            "catalog", "resolveSystems", {"ids": [b["id"], "x", a["id"], b["id"]]}, as_service=True
        )
    assert [s.id for s in found.systems] == [b["id"], a["id"]]
    assert found.missing == ["x"]

    with pytest.raises(Forbidden, match="This procedure is for services only"):
        await manager.call("catalog", "resolveSystems", {"ids": [a["id"]]})
