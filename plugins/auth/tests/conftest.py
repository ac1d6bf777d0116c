"""Auth plugin tests run a host with the auth and hello plugins, on the core's fixtures.

``principals`` makes real callers through the plugin's own service layer: applications with API
keys and users with session cookies, holding exactly the rules a test asks for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

PASSWORD = "Correct-Horse-9"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_auth import plugin
    from checkstack_hello import plugin as hello

    return [plugin, hello]


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {"CHECKSTACK_STRICT_PLUGINS": "1", "CHECKSTACK_PLUGINS": "auth,hello"}


@dataclass
class Caller:
    """A principal to call as: ``headers`` carries its API key or session cookie."""

    kind: str
    id: str
    token: str
    headers: dict[str, str]


class Principals:
    """Makes applications and users holding chosen rules, acting as the auth plugin."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self._roles = 0

    @asynccontextmanager
    async def ctx(self) -> AsyncIterator[Any]:
        async with self.host.service_context("auth") as ctx:
            yield ctx

    async def role(self, *rules: str) -> str:
        from checkstack_auth import service

        self._roles += 1
        async with self.ctx() as ctx:
            role = await service.create_role(ctx, f"test role {self._roles}", "", list(rules))
        return role.id

    async def app(
        self,
        *rules: str,
        roles: tuple[str, ...] = (),
        teams: tuple[str, ...] = (),
        name: str = "test app",
        bare: bool = False,
    ) -> Caller:
        """An application with a role holding ``rules``; ``bare`` removes even ``applications``."""
        from checkstack_auth import service

        wanted = [*roles, await self.role(*rules)] if rules else list(roles)
        async with self.ctx() as ctx:
            info, token = await service.create_application(ctx, name, roles=wanted, teams=teams)
            if bare:
                await service.update_application(ctx, info.id, roles=[])
        return Caller("application", info.id, token, {"Authorization": f"Bearer {token}"})

    async def user(
        self,
        *rules: str,
        admin: bool = False,
        teams: tuple[str, ...] = (),
        email: str | None = None,
    ) -> Caller:
        """A user (with a live session) holding ``rules`` besides the implicit roles."""
        from checkstack_auth import service
        from checkstack_auth.models import ADMIN_ROLE, TeamUser

        roles = [await self.role(*rules)] if rules else []
        if admin:
            roles.append(ADMIN_ROLE)
        self._roles += 1
        address = email or f"user{self._roles}@example.com"
        async with self.ctx() as ctx:
            user = await service.create_user(ctx, address, PASSWORD, roles=roles)
            for team_id in teams:
                ctx.session.add(TeamUser(user_id=user.id, team_id=team_id))
            await service.open_session(ctx, user)
            token = ctx.response.cookies[-1].value
        return Caller("user", user.id, token, {"Cookie": f"checkstack_session={token}"})

    async def admin(self) -> Caller:
        return await self.user(admin=True)

    async def team(self, name: str) -> str:
        from checkstack_auth import service

        async with self.ctx() as ctx:
            team = await service.create_team(ctx, name, "")
        return team.id


@pytest.fixture
def principals(checkstack_host: Any) -> Principals:
    return Principals(checkstack_host)


@pytest.fixture
def rpc(checkstack_http: httpx.AsyncClient) -> Callable[..., Any]:
    """``await rpc(plugin, procedure, input, caller)`` → the raw httpx response."""

    async def call(
        plugin: str,
        procedure: str,
        input: Any = None,
        caller: Caller | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(caller.headers if caller else {})
        sent.update(headers or {})
        return await checkstack_http.post(
            f"/api/{plugin}/", json={procedure: {} if input is None else input}, headers=sent
        )

    return call
