"""The request path with the real auth backend: one connection per call, a bounded wait for one,
and cached authorization data that every process sees change on its next request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from checkstack_core.app import create_app
from checkstack_core.host import Host
from checkstack_core.settings import Settings

from . import vault_plugin
from .vault_plugin import ITEM

READ = "vault.item.read"
HELLO_READ = "hello.hello.read"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_auth import plugin
    from checkstack_hello import plugin as hello

    return [plugin, hello, vault_plugin.plugin]


@pytest.fixture(autouse=True)
def _empty_vault() -> Iterator[None]:
    vault_plugin.ITEMS.clear()
    yield
    vault_plugin.ITEMS.clear()


@contextmanager
def checkouts(host: Host) -> Iterator[list[int]]:
    """Count pool checkouts and the most connections held at once while the block runs."""
    held = [0]
    seen = {"checkouts": 0, "most": 0}

    def checkout(*_: Any) -> None:
        held[0] += 1
        seen["checkouts"] += 1
        seen["most"] = max(seen["most"], held[0])

    def checkin(*_: Any) -> None:
        held[0] -= 1

    pool = host.db.engine.sync_engine.pool
    event.listen(pool, "checkout", checkout)
    event.listen(pool, "checkin", checkin)
    counts: list[int] = []
    try:
        yield counts
    finally:
        event.remove(pool, "checkout", checkout)
        event.remove(pool, "checkin", checkin)
        counts.extend([seen["checkouts"], seen["most"]])


async def _world(rpc: Any, principals: Any) -> dict[str, Any]:
    admin = await principals.admin()
    for item in ("a", "b", "c"):
        response = await rpc("vault", "createItem", {"id": item, "name": item.upper()}, admin)
        assert response.status_code == 200, response.text
    team = await rpc("auth", "createTeam", {"name": "ops"}, admin)
    return {"admin": admin, "ops": team.json()["createTeam"]["id"]}


async def test_every_call_holds_exactly_one_connection(checkstack_host, rpc, principals):
    world = await _world(rpc, principals)
    await rpc(
        "auth",
        "grantTeamAccess",
        {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "b", "level": "read"},
        world["admin"],
    )
    key = await principals.app(READ, HELLO_READ)
    user = await principals.user(READ)
    calls = [
        ("hello", "getGreeting", {"name": "x"}, None),
        ("hello", "getGreeting", {"name": "x"}, key),
        ("vault", "getItems", None, key),
        ("vault", "getItems", None, user),
        ("vault", "getItem", {"id": "b"}, key),
        ("vault", "updateItem", {"id": "b", "name": "B2"}, world["admin"]),
    ]
    for plugin, procedure, body, caller in calls:
        with checkouts(checkstack_host) as seen:
            response = await rpc(plugin, procedure, body, caller)
        assert response.status_code == 200, (procedure, response.text)
        # (The lastUsedAt write of a key runs after the call, on its own, at most once a minute.)
        await checkstack_host.auth.flush()
        assert seen[1] == 1, f"{procedure} held {seen[1]} connections at once"


@asynccontextmanager
async def _second_process(settings: Settings, plugins: list[Any]) -> AsyncIterator[Any]:
    """Another host on the same database: a process with a cache of its own."""
    host = Host(settings, plugins=plugins, discover_installed=False)
    await host.start()
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as client:
            yield client
    finally:
        await host.stop()


async def test_changes_reach_another_process_on_its_next_request(
    checkstack_settings, checkstack_plugins, rpc, principals
):
    async with _second_process(checkstack_settings, checkstack_plugins) as other:
        # (Started first: the vault keeps its items in memory and clears them on start.)
        world = await _world(rpc, principals)
        role_id = await principals.role(READ, HELLO_READ)
        key = await principals.app(roles=(role_id,))

        async def items(headers: dict[str, str] | None = None) -> Any:
            response = await other.post("/api/vault/", json={"getItems": {}}, headers=headers)
            return response.status_code, [i["id"] for i in response.json()["getItems"]["items"]]

        async def greet(headers: dict[str, str] | None = None) -> int:
            response = await other.post(
                "/api/hello/", json={"getGreeting": {"name": "x"}}, headers=headers
            )
            return response.status_code

        # Warm the other process's cache.
        assert await items(key.headers) == (200, ["a", "b", "c"])
        assert await greet() == 200

        # A grant plus team-only on "b" shuts the key out of it, in the other process at once.
        await rpc(
            "auth",
            "grantTeamAccess",
            {"teamId": world["ops"], "resourceType": ITEM, "resourceId": "b", "level": "read"},
            world["admin"],
        )
        await rpc(
            "auth",
            "setTeamOnly",
            {"resourceType": ITEM, "resourceId": "b", "teamOnly": True},
            world["admin"],
        )
        assert await items(key.headers) == (200, ["a", "c"])

        # The anonymous role losing a rule: guests must authenticate on the next request.
        roles = (await rpc("auth", "getRoles", None, world["admin"])).json()["getRoles"]["roles"]
        anonymous = next(r for r in roles if r["id"] == "anonymous")
        kept = [rule for rule in anonymous["rules"] if rule != HELLO_READ]
        changed = await rpc(
            "auth", "updateRole", {"id": "anonymous", "rules": kept}, world["admin"]
        )
        assert changed.status_code == 200, changed.text
        assert await greet() == 401

        # A key's role losing its rule: the key is refused on the next request.
        stripped = await rpc("auth", "updateRole", {"id": role_id, "rules": []}, world["admin"])
        assert stripped.status_code == 200, stripped.text
        # (A filtered list answers without the rule, listing only what grants admit: nothing.)
        assert await items(key.headers) == (200, [])
        assert await greet(key.headers) == 403


async def test_a_writing_call_sees_the_grants_it_made_itself(checkstack_host, rpc, principals):
    from checkstack_auth import service

    from checkstack_core import Level, Principal, PrincipalKind

    world = await _world(rpc, principals)
    member = Principal(PrincipalKind.APPLICATION, id="m", team_ids=frozenset({world["ops"]}))
    # Warm the shared cache with "no grants on a".
    assert (await rpc("vault", "getItems", None, await principals.app(READ))).status_code == 200
    async with checkstack_host.service_context("auth") as ctx:
        await service.grant(ctx, world["ops"], ITEM, "a", "manage")
        admitted = await checkstack_host.auth.admitted_ids(
            member, ITEM, ["a", "b"], Level.MANAGE, False, uow=ctx.uow
        )
        assert admitted == {"a"}


async def test_an_exhausted_pool_answers_503_with_retry_after(checkstack_settings):
    from dataclasses import replace

    from checkstack_hello import plugin as hello

    settings = replace(checkstack_settings, db_pool_size=1, db_pool_timeout=0.2)
    host = Host(settings, plugins=[hello], discover_installed=False)
    await host.start()
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # Every connection the pool may open (pool_size + as many again) is taken.
            async with host.db.engine.connect() as one, host.db.engine.connect() as two:
                for conn in (one, two):
                    await conn.exec_driver_sql("SELECT 1")
                busy = await client.post("/api/hello/", json={"getGreeting": {"name": "x"}})
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert busy.json()["code"] == "SERVICE_UNAVAILABLE"
            again = await client.post("/api/hello/", json={"getGreeting": {"name": "x"}})
            assert again.status_code == 200
    finally:
        await host.stop()


async def test_a_rolled_back_change_never_becomes_the_shared_cache(checkstack_host, rpc):
    """What a writing call reads after its own change is uncommitted: it must not become the
    process-wide cache, even when a later commit brings the database to the same version."""
    from sqlalchemy import text

    class RolledBack(Exception):
        pass

    body = {"getGreeting": {"name": "x"}}
    assert (await rpc("hello", "getGreeting", body["getGreeting"])).status_code == 200
    seen_inside: dict[str, Any] = {}
    try:
        async with checkstack_host.service_context("auth") as ctx:
            connection = await ctx.uow.connection()
            await connection.execute(text("DELETE FROM auth_role_rule WHERE role_id = 'anonymous'"))
            inside = await checkstack_host.auth.anonymous(uow=ctx.uow)
            seen_inside["rules"] = inside.rules
            version = await connection.execute(text("SELECT authz_version FROM auth_meta"))
            seen_inside["version"] = version.scalar_one()
            raise RolledBack
    except RolledBack:
        pass
    assert HELLO_READ not in seen_inside["rules"]  # the call saw its own change
    # Another change commits and happens to bring the version to the same number.
    async with checkstack_host.service_context("auth") as ctx:
        connection = await ctx.uow.connection()
        await connection.execute(
            text("UPDATE auth_meta SET authz_version = :v"), {"v": seen_inside["version"]}
        )
    again = await rpc("hello", "getGreeting", body["getGreeting"])
    assert again.status_code == 200, again.text


async def test_a_writing_call_decides_from_its_transaction_not_its_first_look(
    checkstack_host, rpc, principals
):
    """A writing call that looked at access before changing grants sees its own change."""
    from checkstack_auth import service

    from checkstack_core import Level, Principal, PrincipalKind

    world = await _world(rpc, principals)
    member = Principal(PrincipalKind.APPLICATION, id="m", team_ids=frozenset({world["ops"]}))
    auth = checkstack_host.auth
    async with checkstack_host.service_context("auth") as ctx:
        await auth.anonymous(uow=ctx.uow)
        before = await auth.admitted_ids(member, ITEM, ["a"], Level.MANAGE, False, uow=ctx.uow)
        assert before == set()
        await service.grant(ctx, world["ops"], ITEM, "a", "manage")
        after = await auth.admitted_ids(member, ITEM, ["a"], Level.MANAGE, False, uow=ctx.uow)
        assert after == {"a"}


async def test_every_connection_goes_back_to_the_pool_whatever_the_call_ends_with(
    checkstack_host, rpc, principals
):
    """Success, refusal, bad input, a missing record, a failing batch: none keeps a connection."""
    world = await _world(rpc, principals)
    reader = await principals.app(READ)
    pool = checkstack_host.db.engine.sync_engine.pool
    outcomes = [
        ("vault", "getItems", None, reader, 200),
        ("vault", "updateItem", {"id": "a", "name": "x"}, reader, 403),
        ("vault", "getItem", {"id": 7}, reader, 400),
        ("vault", "getItem", {"id": "missing"}, world["admin"], 404),
        ("hello", "getGreeting", {"name": "x"}, None, 200),
    ]
    for plugin, procedure, body, caller, status in outcomes:
        response = await rpc(plugin, procedure, body, caller)
        assert response.status_code == status, (procedure, response.text)
        await checkstack_host.auth.flush()
        assert pool.checkedout() == 0, f"{procedure} ({status}) kept a connection"


async def test_queries_are_not_held_up_by_a_writer(checkstack_host, checkstack_database_url, rpc):
    """A query runs without a transaction: a writer holding SQLite's write lock (or a row lock on
    PostgreSQL) does not make it wait."""
    import asyncio

    from sqlalchemy import text

    async with checkstack_host.db.session() as writer:
        connection = await writer.connection()
        await connection.execute(
            text("UPDATE auth_meta SET lock_counter = lock_counter + 1 WHERE id = 1")
        )
        # The write lock is held until this block ends; a query must answer meanwhile.
        answered = await asyncio.wait_for(rpc("hello", "getGreeting", {"name": "x"}), timeout=10)
        assert answered.status_code == 200, answered.text
        await writer.rollback()


@pytest.mark.parametrize(("lost", "status"), [(True, 503), (False, 500)])
async def test_a_database_failure_while_the_key_is_looked_up(
    checkstack_host, rpc, principals, lost, status
):
    """A lost connection asks for a retry; any other failure is a 500 — never a guest's call."""
    from db_faults import failing_statement

    app = await principals.app(HELLO_READ)
    pool = checkstack_host.db.engine.sync_engine.pool
    with failing_statement(
        checkstack_host.db.engine, "SELECT auth_application.", lost=lost
    ) as failed:
        response = await rpc("hello", "getGreeting", {"name": "x"}, app)
    assert failed, "the fault was never injected"
    assert response.status_code == status, response.text
    assert ("retry-after" in response.headers) is lost
    assert "injected" not in response.text
    await checkstack_host.auth.flush()
    assert pool.checkedout() == 0
    assert (await rpc("hello", "getGreeting", {"name": "x"}, app)).status_code == 200
