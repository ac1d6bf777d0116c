"""One way for tests to arrange who may do what, over either auth backend (the ``checkstack_access``
fixture): the in-memory :class:`~checkstack_core.testing.memory_auth.MemoryAuth`, or the real auth
plugin (``checkstack_auth``) when it is loaded.

Access tests written against :class:`AccessKit` run unchanged over both, so the fake can never
drift from the product: parametrise ``checkstack_plugins`` over :data:`BACKENDS` with
:func:`plugins_for`, and check with :func:`assert_backend` that the kit is the one asked for::

    @pytest.fixture(params=BACKENDS)
    def checkstack_plugins(request):
        from checkstack_catalog import plugin as catalog
        return plugins_for(request.param, [catalog])

The real kit acts as the auth plugin would for an administrator: it creates roles, users (with a
live session cookie), applications (with an API key), teams, grants and team-only settings through
the plugin's service layer, in committed transactions, so the requests that follow see them
exactly as they would in production. Neither kit calls an ``AuthBackend`` method: only requests
(through HTTP) decide access.

The semantics both kits share (those of the product, SPEC §5):

- ``user(*rules)`` is a person: besides ``rules`` it holds what every signed-in user holds (the
  ``default`` rules) and what guests hold (the ``public`` rules);
- ``application(*rules)`` is an API key holding ``rules`` and the ``public`` rules only;
- ``admin()`` is a person holding every rule (team-only resources still need a team grant);
- ``name=`` gives a caller its display name (what a handler records as ``createdBy``);
- teams are named by the test (``"ops"``); the real kit creates each on first use;
- ``allow_anonymous(*rules)`` / ``revoke_anonymous(*rules)`` change what guests hold, and so what
  every caller holds, those already made included (in the product every user and application
  holds the guests' role); ``revoke_anonymous()`` with no rule takes every rule from guests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..auth import Principal, PrincipalKind

if TYPE_CHECKING:
    from ..host import Host
    from .memory_auth import MemoryAuth

#: The password of every user the real kit makes (it passes the auth plugin's policy).
PASSWORD = "Access-Kit-Passw0rd"

#: The backends an access test runs over: the in-memory fake and the real auth plugin.
BACKENDS = ("memory", "auth")


def plugins_for(backend: str, plugins: Sequence[Any]) -> list[Any]:
    """``plugins`` as a host over ``backend`` loads them: with the auth plugin first for
    ``"auth"``, as they are for ``"memory"`` (``MemoryAuth`` then decides)."""
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "memory":
        return list(plugins)
    from checkstack_auth import plugin as auth

    return [auth, *plugins]


def assert_backend(kit: AccessKit, plugins: Sequence[Any]) -> AccessKit:
    """``kit``, after checking it drives the backend ``plugins`` call for, so a parametrised
    test can never silently fall back to the fake."""
    wanted = "auth" if any(getattr(p, "id", None) == "auth" for p in plugins) else "memory"
    assert kit.backend == wanted, f"access kit drives {kit.backend!r}, expected {wanted!r}"
    return kit


@dataclass(frozen=True)
class AccessCaller:
    """Someone to call as: ``headers`` carries the credential (API key or session cookie).

    ``principal`` is what the backend resolves the credential to, for in-process calls made on
    the caller's behalf (``Context(host, plugin, principal, uow)``).
    """

    kind: str
    id: str
    headers: dict[str, str]
    principal: Principal
    token: str | None = None


class AccessKit(Protocol):
    """What an access test arranges; see the module documentation for the shared semantics."""

    #: ``"memory"`` or ``"auth"``: which backend decides.
    backend: str

    async def user(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller: ...

    async def application(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller: ...

    async def admin(self, name: str | None = None) -> AccessCaller: ...

    async def grant(
        self, team: str, resource_type: str, resource_id: str, level: str = "read"
    ) -> None: ...

    async def set_team_only(
        self, resource_type: str, resource_id: str, team_only: bool = True
    ) -> None: ...

    async def allow_anonymous(self, *rules: str) -> None: ...

    async def revoke_anonymous(self, *rules: str) -> None: ...


def _rules(host: Host, flag: str) -> set[str]:
    return {rule.qualified_id(plugin) for plugin, rule in host.all_rules() if getattr(rule, flag)}


@dataclass
class MemoryAccessKit:
    """:class:`AccessKit` over ``MemoryAuth`` (the ``checkstack_auth`` fixture)."""

    host: Host
    auth: MemoryAuth
    backend: str = "memory"

    def _wrap(self, caller: Any) -> AccessCaller:
        principal = caller.principal
        return AccessCaller(
            str(principal.kind), str(principal.id), caller.headers, principal, caller.token
        )

    async def user(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller:
        held = {*rules, *_rules(self.host, "default")}
        return self._wrap(self.auth.user(*sorted(held), teams=teams, name=name))

    async def application(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller:
        return self._wrap(self.auth.application(*rules, teams=teams, name=name))

    async def admin(self, name: str | None = None) -> AccessCaller:
        return self._wrap(self.auth.admin(name=name))

    async def grant(
        self, team: str, resource_type: str, resource_id: str, level: str = "read"
    ) -> None:
        self.auth.grant(team, resource_type, resource_id, level)

    async def set_team_only(
        self, resource_type: str, resource_id: str, team_only: bool = True
    ) -> None:
        self.auth.set_team_only(resource_type, resource_id, team_only)

    async def allow_anonymous(self, *rules: str) -> None:
        self.auth.anonymous_rules.update(rules)

    async def revoke_anonymous(self, *rules: str) -> None:
        if rules:
            self.auth.anonymous_rules.difference_update(rules)
        else:
            self.auth.anonymous_rules.clear()


@dataclass
class AuthPluginAccessKit:
    """:class:`AccessKit` over the real auth plugin (its tables, its backend, its SQL)."""

    host: Host
    backend: str = "auth"
    _teams: dict[str, str] = field(default_factory=dict)
    #: What the guests' role holds, as far as the kit changed it (``None``: the public rules).
    _guests: set[str] | None = None
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _context(self) -> Any:
        return self.host.service_context("auth")

    async def _role(self, rules: Iterable[str]) -> list[str]:
        from checkstack_auth import service

        wanted = sorted(set(rules))
        if not wanted:
            return []
        async with self._context() as ctx:
            role = await service.create_role(ctx, f"kit role {next(self._numbers)}", "", wanted)
        return [role.id]

    async def _team_ids(self, teams: Sequence[str]) -> list[str]:
        from checkstack_auth import service

        for name in teams:
            if name not in self._teams:
                async with self._context() as ctx:
                    self._teams[name] = (await service.create_team(ctx, name, "")).id
        return [self._teams[name] for name in teams]

    def _principal(
        self, kind: PrincipalKind, id: str, rules: Iterable[str], teams: Iterable[str], admin: bool
    ) -> Principal:
        guests = _rules(self.host, "public") if self._guests is None else self._guests
        held = {*rules, *guests}
        if kind is PrincipalKind.USER:
            held |= _rules(self.host, "default")
        return Principal(
            kind, id=id, name=id, rules=frozenset(held), team_ids=frozenset(teams), is_admin=admin
        )

    async def _person(
        self, rules: Sequence[str], teams: Sequence[str], admin: bool, name: str | None
    ) -> Any:
        from checkstack_auth import service
        from checkstack_auth.contract import SESSION_COOKIE
        from checkstack_auth.models import ADMIN_ROLE, TeamUser

        roles = await self._role(rules)
        if admin:
            roles.append(ADMIN_ROLE)
        team_ids = await self._team_ids(teams)
        async with self._context() as ctx:
            address = f"kit-user-{next(self._numbers)}@example.com"
            user = await service.create_user(ctx, address, PASSWORD, name=name or "", roles=roles)
            for team_id in team_ids:
                ctx.session.add(TeamUser(user_id=user.id, team_id=team_id))
            await service.open_session(ctx, user)
            cookie = ctx.response.cookies[-1].value
        principal = self._principal(PrincipalKind.USER, user.id, rules, team_ids, admin)
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        return AccessCaller("user", user.id, headers, principal)

    async def user(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller:
        caller: AccessCaller = await self._person(rules, teams, False, name)
        return caller

    async def admin(self, name: str | None = None) -> AccessCaller:
        caller: AccessCaller = await self._person((), (), True, name)
        return caller

    async def application(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> AccessCaller:
        from checkstack_auth import service

        roles = await self._role(rules)
        team_ids = await self._team_ids(teams)
        async with self._context() as ctx:
            # Application names are unique: a chosen name gets the kit's number too.
            label = f"{name or 'kit app'} {next(self._numbers)}"
            info, token = await service.create_application(ctx, label, roles=roles, teams=team_ids)
        principal = self._principal(PrincipalKind.APPLICATION, info.id, rules, team_ids, False)
        headers = {"Authorization": f"Bearer {token}"}
        return AccessCaller("application", info.id, headers, principal, token)

    async def grant(
        self, team: str, resource_type: str, resource_id: str, level: str = "read"
    ) -> None:
        from checkstack_auth import service

        [team_id] = await self._team_ids([team])
        async with self._context() as ctx:
            await service.grant(ctx, team_id, resource_type, resource_id, level)

    async def set_team_only(
        self, resource_type: str, resource_id: str, team_only: bool = True
    ) -> None:
        from checkstack_auth import service

        async with self._context() as ctx:
            await service.set_team_only(ctx, resource_type, resource_id, team_only)

    async def _set_guests(self, change: Any) -> None:
        """Give the guests' role ``change(rules it holds)``, as an administrator would."""
        from checkstack_auth import service
        from checkstack_auth.models import ANONYMOUS_ROLE

        async with self._context() as ctx:
            held = (await service.role_rules(ctx.session, [ANONYMOUS_ROLE])).get(
                ANONYMOUS_ROLE, set()
            )
            wanted = set(change(set(held)))
            await service.update_role(ctx, ANONYMOUS_ROLE, rules=sorted(wanted))
        self._guests = wanted

    async def allow_anonymous(self, *rules: str) -> None:
        await self._set_guests(lambda held: held | set(rules))

    async def revoke_anonymous(self, *rules: str) -> None:
        await self._set_guests(lambda held: held - set(rules) if rules else set())


def access_kit(host: Host, memory: MemoryAuth) -> AccessKit:
    """The kit for the backend in force on ``host``: the auth plugin's when it is loaded."""
    if "auth" in host.plugins and host.auth is not memory:
        return AuthPluginAccessKit(host)
    return MemoryAccessKit(host, memory)
