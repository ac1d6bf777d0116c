"""The real backend's promises that only show in what it reads and when (backend.py's docstring):
validity is exact to the instant, an authenticated request reads the authorization version once
(with its key or session), the role rules are read once per version whatever kind of call reads
them first, and what a principal is called comes from its own row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from checkstack_core.auth import RequestInfo
from checkstack_core.context import UnitOfWork

from . import vault_plugin

READ = "vault.item.read"
HELLO_MANAGE = "hello.hello.manage"


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
def statements(host: Any) -> Iterator[list[str]]:
    """Every SQL statement the host's engine runs while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = host.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def reading(seen: list[str], table: str) -> list[str]:
    """The statements of ``seen`` that are lookups of ``table`` itself (``SELECT table.…``), not
    the key's or session's one statement, which reads it among others."""
    return [s for s in seen if s.startswith(f"SELECT {table}.")]


async def bump_authorization(principals: Any) -> None:
    """Change what roles hold (a new role), so the authorization version moves on."""
    await principals.role(READ)


# -- validity to the instant ----------------------------------------------------------------


async def _expiry(host: Any, model: Any, **where: str) -> Any:
    """The ``expires_at`` stored for the row of ``model`` matching ``where``, as read back."""
    from sqlmodel import select

    async with host.db.session() as session:
        query = select(model.expires_at).filter_by(**where)
        return (await session.exec(query)).one()


async def test_a_key_is_refused_from_the_instant_it_expires(checkstack_host, rpc, principals):
    from checkstack_auth import service
    from checkstack_auth.models import Application

    from checkstack_core.db import utcnow

    async with principals.ctx() as ctx:
        info, token = await service.create_application(
            ctx, "expiring", expires_at=utcnow() + timedelta(days=1)
        )
    headers = {"Authorization": f"Bearer {token}"}
    expires_at = await _expiry(checkstack_host, Application, id=info.id)
    backend = checkstack_host.auth
    backend.now = lambda: expires_at - timedelta(microseconds=1)
    assert (await rpc("hello", "getGreeting", None, headers=headers)).status_code == 200
    backend.now = lambda: expires_at
    at_expiry = await rpc("hello", "getGreeting", None, headers=headers)
    assert at_expiry.status_code == 401, at_expiry.text
    assert at_expiry.json()["message"] == "Invalid API key"
    await backend.flush()


async def test_a_session_is_refused_from_the_instant_it_expires(checkstack_host, rpc, principals):
    from checkstack_auth.models import LoginSession

    user = await principals.user()
    expires_at = await _expiry(checkstack_host, LoginSession, user_id=user.id)
    backend = checkstack_host.auth
    backend.now = lambda: expires_at - timedelta(microseconds=1)
    assert (await rpc("auth", "getCurrentUser", None, user)).status_code == 200
    backend.now = lambda: expires_at
    at_expiry = await rpc("auth", "getCurrentUser", None, user)
    assert at_expiry.status_code == 401, at_expiry.text
    assert "checkstack_session=;" in at_expiry.headers["set-cookie"]


# -- what is read, and when -------------------------------------------------------------------


async def test_an_authenticated_call_reads_the_version_only_with_its_key(
    checkstack_host, rpc, principals
):
    """The version comes with the key's row; the call's later lookups (here the output filter)
    reuse what the call already validated instead of asking again."""
    vault_plugin.ITEMS.update({"a": "A", "b": "B"})
    reader = await principals.app(READ)
    assert (await rpc("vault", "getItems", None, reader)).status_code == 200  # warm the cache
    with statements(checkstack_host) as seen:
        response = await rpc("vault", "getItems", None, reader)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["getItems"]["items"]] == ["a", "b"]
    assert reading(seen, "auth_meta") == []
    assert reading(seen, "auth_role_rule") == []


@pytest.mark.parametrize("first", ["application", "user", "guest"])
async def test_a_writing_call_shares_the_rules_it_read_before_writing(
    checkstack_host, rpc, principals, first
):
    """Read before its first statement, the role rules are committed data: a writing call keeps
    them for the next calls like a query does (and only what it reads after writing is private)."""
    caller = {
        "application": lambda: principals.app(HELLO_MANAGE),
        "user": lambda: principals.user(HELLO_MANAGE),
        "guest": None,
    }[first]
    who = await caller() if caller else None
    await bump_authorization(principals)
    written = await rpc("hello", "setGreeting", {"template": "Hi {name}"}, who)
    assert written.status_code == (200 if who else 401), written.text
    with statements(checkstack_host) as seen:
        again = await rpc("hello", "getGreeting", None, who)
    assert again.status_code == 200, again.text
    assert reading(seen, "auth_role_rule") == []
    await checkstack_host.auth.flush()


# -- who the principal is ---------------------------------------------------------------------


async def test_a_user_is_called_by_its_name(checkstack_host, principals):
    """What handlers record as who did something (an incident's ``createdBy``)."""
    from checkstack_auth import service

    async with principals.ctx() as ctx:
        user = await service.create_user(ctx, "ann@example.com", "Correct-Horse-9", name="Ann Lee")
        await service.open_session(ctx, user)
        cookie = ctx.response.cookies[-1].value
    uow = UnitOfWork(checkstack_host, read_only=True)
    async with uow.scope():
        principal = await checkstack_host.auth.authenticate(
            RequestInfo(cookies={"checkstack_session": cookie}), uow=uow
        )
    assert principal is not None
    assert (principal.id, principal.name) == (user.id, "Ann Lee")


async def test_an_application_without_the_teams_rule_sees_no_team(rpc, principals):
    admin = await principals.admin()
    for name in ("ops", "dev"):
        assert (await rpc("auth", "createTeam", {"name": name}, admin)).status_code == 200
    app = await principals.app()
    response = await rpc("auth", "getTeams", None, app)
    assert response.status_code == 200, response.text
    assert response.json()["getTeams"]["teams"] == []


async def test_a_manager_of_one_team_among_many_sees_it(checkstack_host, rpc, principals):
    """More teams than the backend looks up at once (500): the one managed comes last."""
    from checkstack_auth.models import Team, TeamManager

    manager = await principals.user()
    async with principals.ctx() as ctx:
        ctx.session.add_all(
            Team(id=f"t{number:03}", name=f"team {number:03}") for number in range(500)
        )
        ctx.session.add(Team(id="zz", name="zz managed"))
        await ctx.session.flush()
        ctx.session.add(TeamManager(team_id="zz", user_id=manager.id))
    response = await rpc("auth", "getTeams", None, manager)
    assert response.status_code == 200, response.text
    assert [team["id"] for team in response.json()["getTeams"]["teams"]] == ["zz"]
