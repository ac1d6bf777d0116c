"""An in-memory :class:`~checkstack_core.auth.AuthBackend` for tests of plugins without the auth
plugin: principals holding chosen rules and teams, team grants and team-only resources.

Callers are presented as ``Authorization: Bearer test_<n>`` tokens, so tests exercise the same
HTTP path as real API keys. As in the product, every caller also holds ``anonymous_rules`` as
they stand at each request (the guests' role is every principal's).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from ..auth import Principal, PrincipalKind, RequestInfo
from ..context import UnitOfWork
from ..contract import Level
from ..errors import Unauthorized

TOKEN_PREFIX = "Bearer test_"


@dataclass(frozen=True)
class Caller:
    """A principal the tests can call as: ``headers`` carries its token."""

    principal: Principal
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class _Grant:
    team_id: str
    level: Level


@dataclass
class MemoryAuth:
    """Principals, teams and grants held in memory; implements the SPEC §5.5 decision."""

    anonymous_rules: set[str] = field(default_factory=set)
    _callers: dict[str, Caller] = field(default_factory=dict)
    #: Each token's own rules, without the guests' (those are added per request).
    _own_rules: dict[str, frozenset[str]] = field(default_factory=dict)
    _grants: dict[tuple[str, str], list[_Grant]] = field(default_factory=dict)
    _team_only: set[tuple[str, str]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- making callers ---------------------------------------------------------------------

    def _issue(
        self,
        kind: PrincipalKind,
        rules: Iterable[str],
        teams: Iterable[str],
        admin: bool,
        name: str | None,
    ) -> Caller:
        number = next(self._ids)
        principal = Principal(
            kind,
            id=f"{kind}-{number}",
            name=name or f"{kind} {number}",
            rules=frozenset(rules) | frozenset(self.anonymous_rules),
            team_ids=frozenset(teams),
            is_admin=admin,
        )
        caller = Caller(principal, f"test_{number}")
        self._callers[caller.token] = caller
        self._own_rules[caller.token] = frozenset(rules)
        return caller

    def user(self, *rules: str, teams: Sequence[str] = (), name: str | None = None) -> Caller:
        """A person holding ``rules`` (qualified ids) and belonging to ``teams``."""
        return self._issue(PrincipalKind.USER, rules, teams, False, name)

    def admin(self, name: str | None = None) -> Caller:
        """A person holding every rule."""
        return self._issue(PrincipalKind.USER, (), (), True, name)

    def application(
        self, *rules: str, teams: Sequence[str] = (), name: str | None = None
    ) -> Caller:
        """An API client holding ``rules`` and belonging to ``teams``."""
        return self._issue(PrincipalKind.APPLICATION, rules, teams, False, name)

    def revoke(self, caller: Caller) -> None:
        """Make ``caller``'s token fail from the next request on."""
        self._callers.pop(caller.token, None)

    # -- resource access --------------------------------------------------------------------

    def grant(self, team_id: str, resource_type: str, resource_id: str, level: Level | str) -> None:
        """Give ``team_id`` ``level`` access (manage implies read) to one resource."""
        self._grants.setdefault((resource_type, resource_id), []).append(
            _Grant(team_id, Level(level))
        )

    def set_team_only(self, resource_type: str, resource_id: str, team_only: bool = True) -> None:
        """Mark a resource so only team grants admit (global rules no longer suffice)."""
        key = (resource_type, resource_id)
        if team_only:
            self._team_only.add(key)
        else:
            self._team_only.discard(key)

    # -- AuthBackend --------------------------------------------------------------------------

    async def authenticate(self, request: RequestInfo, *, uow: UnitOfWork) -> Principal | None:
        header = request.authorization
        if not header:
            return None
        caller = (
            self._callers.get(header[len("Bearer ") :]) if header.startswith(TOKEN_PREFIX) else None
        )
        if caller is None:
            raise Unauthorized("Invalid API key")
        # As in the product, every caller holds what guests hold *now*: a rule taken from
        # ``anonymous_rules`` after the caller was made is gone from its next request on.
        own = self._own_rules[caller.token]
        return replace(caller.principal, rules=own | frozenset(self.anonymous_rules))

    async def anonymous(self, *, uow: UnitOfWork) -> Principal:
        return Principal.anonymous(self.anonymous_rules)

    async def admitted_ids(
        self,
        principal: Principal,
        resource_type: str,
        resource_ids: Sequence[str],
        level: Level,
        has_global: bool,
        *,
        uow: UnitOfWork,
    ) -> set[str]:
        admitted: set[str] = set()
        for resource_id in resource_ids:
            grants = self._grants.get((resource_type, resource_id), [])
            by_team = any(
                g.team_id in principal.team_ids and (g.level is Level.MANAGE or level is Level.READ)
                for g in grants
            )
            if not grants:
                allowed = has_global
            elif (resource_type, resource_id) in self._team_only:
                allowed = by_team
            else:
                allowed = has_global or by_team
            if allowed:
                admitted.add(resource_id)
        return admitted
