"""The :class:`~checkstack_core.auth.AuthBackend` the core asks on every request.

Hot path, by design:

- **One connection per call.** Every lookup goes through the call's unit of work
  (``uow.connection()``): the same pooled connection the handlers use, never a second one.
- **One query per request.** An API key (``Authorization: Bearer ck_<id>_<secret>``) or a session
  cookie (``cs_<id>_<secret>``) is resolved by a single statement: the row by primary key with its
  explicit roles, its teams and the authorization version. An anonymous caller costs one read of
  the version.
- **Validity is never cached.** Deleting, regenerating or expiring a key or ending a session takes
  effect on the next request in every process: the row is read on every request.
- **Authorization data is cached per process**, keyed by ``auth_meta.authz_version``: the rules of
  every role, and per resource type the team grants and team-only settings. Database triggers bump
  the version in the same transaction as any change to those tables, and every call compares it
  with the cache, so a changed role or grant also takes effect on the next request everywhere.
  Calls that write read grants straight from their own transaction instead, so they see their own
  uncommitted changes and never publish them to the cache.
- **No slow hash.** Secrets are random and long; their digests are compared in constant time
  (:mod:`checkstack_auth.tokens`).
- **lastUsedAt** is written off the request's transaction, at most once a minute per application:
  skipped when the row (read anyway) or this process says it was written within the minute, and
  guarded by a conditional ``UPDATE`` so racing processes write it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from checkstack_core.auth import Principal, PrincipalKind, RequestInfo
from checkstack_core.contract import Level
from checkstack_core.db import utcnow
from checkstack_core.errors import Unauthorized

from .contract import SESSION_COOKIE, TEAM_RESOURCE
from .models import (
    ADMIN_ROLE,
    ANONYMOUS_ROLE,
    USERS_ROLE,
    Application,
    ApplicationRole,
    AuthMeta,
    LoginSession,
    ResourceGrant,
    ResourceSettings,
    RoleRule,
    TeamApplication,
    TeamManager,
    TeamUser,
    User,
    UserRole,
)
from .tokens import API_KEY_PREFIX, SESSION_PREFIX, Digester, parse_token

if TYPE_CHECKING:
    from checkstack_core.context import UnitOfWork
    from checkstack_core.host import Host

logger = logging.getLogger("checkstack.plugins.auth")

#: Writes of an application's ``lastUsedAt`` are at most this far apart.
LAST_USED_INTERVAL = timedelta(minutes=1)
#: Resource ids are looked up in chunks of this many (bound-parameter limits).
_CHUNK = 500

INVALID_API_KEY = "Invalid API key"
INVALID_SESSION = "Session expired or revoked: log in again"

_app = Application.__table__  # type: ignore[attr-defined]
_app_role = ApplicationRole.__table__  # type: ignore[attr-defined]
_team_app = TeamApplication.__table__  # type: ignore[attr-defined]
_user = User.__table__  # type: ignore[attr-defined]
_user_role = UserRole.__table__  # type: ignore[attr-defined]
_team_user = TeamUser.__table__  # type: ignore[attr-defined]
_session = LoginSession.__table__  # type: ignore[attr-defined]
_role_rule = RoleRule.__table__  # type: ignore[attr-defined]
_grant = ResourceGrant.__table__  # type: ignore[attr-defined]
_settings = ResourceSettings.__table__  # type: ignore[attr-defined]
_manager = TeamManager.__table__  # type: ignore[attr-defined]
_meta = AuthMeta.__table__  # type: ignore[attr-defined]

#: Roles every application, and every user, holds without being given them.
APPLICATION_IMPLICIT_ROLES = (ANONYMOUS_ROLE,)
USER_IMPLICIT_ROLES = (ANONYMOUS_ROLE, USERS_ROLE)


def _memberships(owner: Any, role_link: sa.Table, team_link: sa.Table, link_column: str) -> Any:
    """(kind, value) rows for a principal: ``o`` explicit role, ``t`` team."""
    return sa.union_all(
        sa.select(sa.literal_column("'o'").label("kind"), role_link.c.role_id.label("value")).where(
            role_link.c[link_column] == owner
        ),
        sa.select(sa.literal_column("'t'"), team_link.c.team_id).where(
            team_link.c[link_column] == owner
        ),
    ).subquery("facts")


def _rules_of(owner: Any, role_link: sa.Table, link_column: str, implicit: Sequence[str]) -> Any:
    """(kind, value) rows ``r`` for every rule a principal holds through its roles."""
    # The implicit roles are SQL literals (not bound lists), so the statement compiles once.
    held_roles = sa.union_all(
        *(sa.select(sa.literal_column(f"'{role}'")) for role in implicit),
        sa.select(role_link.c.role_id).where(role_link.c[link_column] == owner),
    )
    return sa.select(
        sa.literal_column("'r'").label("kind"), _role_rule.c.rule_id.label("value")
    ).where(_role_rule.c.role_id.in_(held_roles))


_VERSION = sa.select(_meta.c.authz_version).where(_meta.c.id == 1)


def _application_statement() -> Any:
    key: Any = sa.bindparam("id")
    facts = _memberships(key, _app_role, _team_app, "application_id")
    return (
        sa.select(
            _app.c.name,
            _app.c.secret_digest,
            _app.c.expires_at,
            _app.c.last_used_at,
            _VERSION.scalar_subquery().label("version"),
            facts.c.kind,
            facts.c.value,
        )
        .select_from(_app.outerjoin(facts, sa.true()))
        .where(_app.c.id == key)
    )


def _session_statement() -> Any:
    key: Any = sa.bindparam("id")
    owner = sa.select(_session.c.user_id).where(_session.c.id == key).scalar_subquery()
    facts = _memberships(owner, _user_role, _team_user, "user_id")
    return (
        sa.select(
            _user.c.id,
            _user.c.email,
            _user.c.name,
            _session.c.secret_digest,
            _session.c.expires_at,
            _VERSION.scalar_subquery().label("version"),
            facts.c.kind,
            facts.c.value,
        )
        .select_from(
            _session.join(_user, _user.c.id == _session.c.user_id).outerjoin(facts, sa.true())
        )
        .where(_session.c.id == key)
    )


def _user_statement() -> Any:
    """A user with every fact, rules included, read through a session (not the cache)."""
    key: Any = sa.bindparam("id")
    memberships = _memberships(key, _user_role, _team_user, "user_id")
    facts = sa.union_all(
        _rules_of(key, _user_role, "user_id", USER_IMPLICIT_ROLES),
        sa.select(memberships.c.kind, memberships.c.value),
    ).subquery("all_facts")
    return (
        sa.select(_user.c.id, _user.c.email, _user.c.name, facts.c.kind, facts.c.value)
        .select_from(_user.outerjoin(facts, sa.true()))
        .where(_user.c.id == key)
    )


_APPLICATION = _application_statement()
_SESSION = _session_statement()
_USER = _user_statement()
_ROLE_RULES = sa.select(_role_rule.c.role_id, _role_rule.c.rule_id)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a principal holds, as read from the database."""

    rules: frozenset[str]
    roles: frozenset[str]
    teams: frozenset[str]

    @classmethod
    def from_rows(cls, rows: Sequence[Any]) -> Facts:
        found: dict[str, set[str]] = {"r": set(), "o": set(), "t": set()}
        for row in rows:
            if row.kind is not None:
                found[row.kind].add(row.value)
        return cls(frozenset(found["r"]), frozenset(found["o"]), frozenset(found["t"]))

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


@dataclass(frozen=True, slots=True)
class TypeAccess:
    """The team grants and team-only settings of every resource of one type."""

    #: resource id → the levels each team holds on it.
    grants: dict[str, dict[str, str]]
    team_only: frozenset[str]

    def admits(
        self, resource_id: str, teams: frozenset[str], levels: frozenset[str], has_global: bool
    ) -> bool:
        """The SPEC §5.5 decision for one resource."""
        grants = self.grants.get(resource_id)
        if not grants:
            return has_global
        by_team = any(grants.get(team) in levels for team in teams)
        if resource_id in self.team_only:
            return by_team
        return has_global or by_team


@dataclass(slots=True)
class AuthzSnapshot:
    """Authorization data as of one ``authz_version``."""

    version: int
    role_rules: dict[str, frozenset[str]]
    #: Filled per resource type on first use.
    types: dict[str, TypeAccess] = field(default_factory=dict)

    def rules_of(self, roles: Iterable[str]) -> frozenset[str]:
        held: set[str] = set()
        for role in roles:
            held |= self.role_rules.get(role, frozenset())
        return frozenset(held)


def _levels(level: Level) -> frozenset[str]:
    """The grant levels sufficient for ``level`` (manage implies read)."""
    if level is Level.MANAGE:
        return frozenset({Level.MANAGE.value})
    return frozenset({Level.READ.value, Level.MANAGE.value})


def _clear_cookie_header() -> dict[str, str]:
    return {
        "set-cookie": f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    }


class DatabaseAuthBackend:
    """Authenticates API keys and session cookies against the auth plugin's tables."""

    def __init__(self, host: Host, *, now: Callable[[], datetime] | None = None) -> None:
        self.host = host
        self.digester = Digester(host.settings.secret_key)
        #: The clock (tests move it forward to see ``lastUsedAt`` advance).
        self.now: Callable[[], datetime] = now or utcnow
        self._written: dict[str, datetime] = {}
        self._pending: set[asyncio.Task[None]] = set()
        #: The newest committed authorization data this process has read.
        self._shared = AuthzSnapshot(-1, {})

    # -- AuthBackend ----------------------------------------------------------------------------

    async def authenticate(self, request: RequestInfo, *, uow: UnitOfWork) -> Principal | None:
        # Before the call's first statement, whatever is read is committed data.
        shareable = uow.read_only or not uow.has_session
        header = request.authorization
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized(INVALID_API_KEY)
            return await self._application(token.strip(), uow, shareable)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return await self._session(cookie, uow, shareable)
        return None

    async def anonymous(self, *, uow: UnitOfWork) -> Principal:
        snapshot = await self._current(uow)
        return Principal.anonymous(snapshot.role_rules.get(ANONYMOUS_ROLE, frozenset()))

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
        ids = list(dict.fromkeys(resource_ids))
        if principal.kind is PrincipalKind.SERVICE:
            return set(ids)
        conn = await uow.connection()
        if resource_type == TEAM_RESOURCE:
            return await self._managed_teams(conn, principal, ids, has_global)
        if not uow.read_only:
            # A writing call may have changed grants itself: decide from its own transaction.
            return await self._admitted_in_transaction(
                conn, principal, resource_type, ids, level, has_global
            )
        snapshot = await self._current(uow)
        access = snapshot.types.get(resource_type)
        if access is None:
            access = snapshot.types[resource_type] = await self._load_type(conn, resource_type)
        levels = _levels(level)
        teams = principal.team_ids
        return {i for i in ids if access.admits(i, teams, levels, has_global)}

    # -- the cache ------------------------------------------------------------------------------

    async def _current(
        self, uow: UnitOfWork, version: int | None = None, *, shareable: bool | None = None
    ) -> AuthzSnapshot:
        """The snapshot this call works with, validated against the database once per call.

        ``shareable`` says whether what this call reads is committed data (a read-only call, or
        a writing call before its first statement) and so may become the process-wide cache.
        """
        snapshot: AuthzSnapshot | None = uow.memo.get(self)
        if snapshot is not None and (version is None or version == snapshot.version):
            return snapshot
        if shareable is None:
            shareable = uow.read_only or not uow.has_session
        conn = await uow.connection()
        if version is None:
            version = (await conn.execute(_VERSION)).scalar_one()
        shared = self._shared
        if shared.version == version:
            snapshot = shared
        else:
            rules: dict[str, set[str]] = {}
            for role_id, rule_id in (await conn.execute(_ROLE_RULES)).all():
                rules.setdefault(role_id, set()).add(rule_id)
            snapshot = AuthzSnapshot(version, {k: frozenset(v) for k, v in rules.items()})
            if shareable and version > self._shared.version:
                self._shared = snapshot
        uow.memo[self] = snapshot
        return snapshot

    @staticmethod
    async def _load_type(conn: AsyncConnection, resource_type: str) -> TypeAccess:
        grants: dict[str, dict[str, str]] = {}
        rows = await conn.execute(
            sa.select(_grant.c.resource_id, _grant.c.team_id, _grant.c.level).where(
                _grant.c.resource_type == resource_type
            )
        )
        for resource_id, team_id, level in rows:
            grants.setdefault(resource_id, {})[team_id] = level
        team_only = await conn.execute(
            sa.select(_settings.c.resource_id).where(
                _settings.c.resource_type == resource_type, _settings.c.team_only.is_(True)
            )
        )
        return TypeAccess(grants, frozenset(team_only.scalars()))

    @staticmethod
    async def _admitted_in_transaction(
        conn: AsyncConnection,
        principal: Principal,
        resource_type: str,
        ids: list[str],
        level: Level,
        has_global: bool,
    ) -> set[str]:
        teams = list(principal.team_ids)
        levels = sorted(_levels(level))
        admitted: set[str] = set(ids) if has_global else set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            if has_global:
                # Only team-only resources that have grants can shut out a global holder.
                restricted = sa.select(_settings.c.resource_id).where(
                    _settings.c.resource_type == resource_type,
                    _settings.c.resource_id.in_(chunk),
                    _settings.c.team_only.is_(True),
                    sa.exists().where(
                        _grant.c.resource_type == _settings.c.resource_type,
                        _grant.c.resource_id == _settings.c.resource_id,
                    ),
                )
                if teams:
                    restricted = restricted.where(
                        ~sa.exists().where(
                            _grant.c.resource_type == _settings.c.resource_type,
                            _grant.c.resource_id == _settings.c.resource_id,
                            _grant.c.team_id.in_(teams),
                            _grant.c.level.in_(levels),
                        )
                    )
                admitted.difference_update((await conn.execute(restricted)).scalars())
            elif teams:
                granted = sa.select(_grant.c.resource_id).where(
                    _grant.c.resource_type == resource_type,
                    _grant.c.resource_id.in_(chunk),
                    _grant.c.team_id.in_(teams),
                    _grant.c.level.in_(levels),
                )
                admitted.update((await conn.execute(granted)).scalars())
        return admitted

    # -- principals -----------------------------------------------------------------------------

    async def _application(self, token: str, uow: UnitOfWork, shareable: bool) -> Principal:
        parsed = parse_token(token, API_KEY_PREFIX)
        if parsed is None:
            raise Unauthorized(INVALID_API_KEY)
        conn = await uow.connection()
        rows = (await conn.execute(_APPLICATION, {"id": parsed.id})).all()
        if not rows or not self.digester.verify(parsed.secret, rows[0].secret_digest):
            raise Unauthorized(INVALID_API_KEY)
        head = rows[0]
        now = self.now()
        expires_at = head.expires_at
        if expires_at is not None and expires_at <= now:
            raise Unauthorized(INVALID_API_KEY)
        self._note_use(parsed.id, head.last_used_at, now)
        facts = Facts.from_rows(rows)
        snapshot = await self._current(uow, head.version, shareable=shareable)
        return Principal(
            PrincipalKind.APPLICATION,
            id=parsed.id,
            name=head.name,
            rules=snapshot.rules_of([*APPLICATION_IMPLICIT_ROLES, *facts.roles]),
            team_ids=facts.teams,
            is_admin=facts.is_admin,
        )

    async def _session(self, cookie: str, uow: UnitOfWork, shareable: bool) -> Principal:
        parsed = parse_token(cookie, SESSION_PREFIX)
        if parsed is None:
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        conn = await uow.connection()
        rows = (await conn.execute(_SESSION, {"id": parsed.id})).all()
        if not rows or not self.digester.verify(parsed.secret, rows[0].secret_digest):
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        head = rows[0]
        expires_at = head.expires_at
        if expires_at is None or expires_at <= self.now():
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        facts = Facts.from_rows(rows)
        snapshot = await self._current(uow, head.version, shareable=shareable)
        rules = snapshot.rules_of([*USER_IMPLICIT_ROLES, *facts.roles])
        return self._user_principal(head, Facts(rules, facts.roles, facts.teams))

    @classmethod
    async def user_principal(cls, session: Any, user_id: str) -> tuple[Principal, Facts] | None:
        """The principal a session of ``user_id`` resolves to, read through ``session`` (so a
        user created in the current transaction is found)."""
        rows = (await session.exec(_USER, params={"id": user_id})).all()
        if not rows:
            return None
        facts = Facts.from_rows(rows)
        return cls._user_principal(rows[0], facts), facts

    @staticmethod
    def _user_principal(head: Any, facts: Facts) -> Principal:
        return Principal(
            PrincipalKind.USER,
            id=head.id,
            name=head.name or head.email,
            rules=facts.rules,
            team_ids=facts.teams,
            is_admin=facts.is_admin,
        )

    @staticmethod
    async def _managed_teams(
        conn: AsyncConnection, principal: Principal, ids: list[str], has_global: bool
    ) -> set[str]:
        if has_global:
            return set(ids)
        if principal.kind is not PrincipalKind.USER or not ids:
            return set()
        admitted: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            managed = sa.select(_manager.c.team_id).where(
                _manager.c.user_id == principal.id,
                _manager.c.team_id.in_(ids[start : start + _CHUNK]),
            )
            admitted.update((await conn.execute(managed)).scalars())
        return admitted

    # -- lastUsedAt -----------------------------------------------------------------------------

    def _note_use(self, app_id: str, last_used_at: datetime | None, now: datetime) -> None:
        if last_used_at is not None and now - last_used_at < LAST_USED_INTERVAL:
            return
        written = self._written.get(app_id)
        if written is not None and now - written < LAST_USED_INTERVAL:
            return
        if len(self._written) > 10_000:
            self._written = {k: v for k, v in self._written.items() if now - v < LAST_USED_INTERVAL}
        self._written[app_id] = now
        task = asyncio.get_running_loop().create_task(self._touch(app_id, now))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _touch(self, app_id: str, now: datetime) -> None:
        statement = (
            sa.update(_app)
            .where(
                _app.c.id == app_id,
                sa.or_(
                    _app.c.last_used_at.is_(None),
                    _app.c.last_used_at < now - LAST_USED_INTERVAL,
                ),
            )
            .values(last_used_at=now)
        )
        try:
            async with self.host.db.write_engine.begin() as conn:
                await conn.execute(statement)
        except Exception:
            logger.warning("Could not record lastUsedAt of application %s", app_id, exc_info=True)

    async def flush(self) -> None:
        """Wait for pending ``lastUsedAt`` writes (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
