"""The :class:`~checkstack_core.auth.AuthBackend` the core asks on every request.

Hot path, by design:

- **One query per request.** An API key (``Authorization: Bearer ck_<id>_<secret>``) or a session
  cookie (``cs_<id>_<secret>``) is resolved by a single statement: the row by primary key, joined
  with the union of its roles' rules (plus the implicit ``anonymous`` and, for people, ``users``
  roles), its explicit roles and its teams. An anonymous caller costs one indexed read of the
  ``anonymous`` role's rules.
- **No cache of validity or rules.** Deleting, regenerating or expiring a key, ending a session or
  changing a role takes effect on the next request in every process. Reading the anonymous role's
  few rules is as cheap as reading a version row would be, so there is nothing to invalidate.
- **No slow hash.** Secrets are random and long; their digests are compared in constant time
  (:mod:`checkstack_auth.tokens`).
- **lastUsedAt** is written off the request's transaction, at most once a minute per application:
  skipped when the row (read anyway) or this process says it was written within the minute, and
  guarded by a conditional ``UPDATE`` so racing processes write it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

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


def _facts(
    owner: Any, role_link: sa.Table, team_link: sa.Table, link_column: str, implicit: Sequence[str]
) -> Any:
    """(kind, value) rows for a principal: ``r`` rule, ``o`` explicit role, ``t`` team."""
    # The implicit roles are SQL literals (not bound lists), so the statement compiles once.
    held_roles = sa.union_all(
        *(sa.select(sa.literal_column(f"'{role}'")) for role in implicit),
        sa.select(role_link.c.role_id).where(role_link.c[link_column] == owner),
    )
    return sa.union_all(
        sa.select(
            sa.literal_column("'r'").label("kind"), _role_rule.c.rule_id.label("value")
        ).where(_role_rule.c.role_id.in_(held_roles)),
        sa.select(sa.literal_column("'o'"), role_link.c.role_id).where(
            role_link.c[link_column] == owner
        ),
        sa.select(sa.literal_column("'t'"), team_link.c.team_id).where(
            team_link.c[link_column] == owner
        ),
    ).subquery("facts")


def _application_statement() -> Any:
    key: Any = sa.bindparam("id")
    facts = _facts(key, _app_role, _team_app, "application_id", [ANONYMOUS_ROLE])
    return (
        sa.select(
            _app.c.name,
            _app.c.secret_digest,
            _app.c.expires_at,
            _app.c.last_used_at,
            facts.c.kind,
            facts.c.value,
        )
        .select_from(_app.outerjoin(facts, sa.true()))
        .where(_app.c.id == key)
    )


def _session_statement() -> Any:
    key: Any = sa.bindparam("id")
    owner = sa.select(_session.c.user_id).where(_session.c.id == key).scalar_subquery()
    facts = _facts(owner, _user_role, _team_user, "user_id", [ANONYMOUS_ROLE, USERS_ROLE])
    return (
        sa.select(
            _user.c.id,
            _user.c.email,
            _user.c.name,
            _session.c.secret_digest,
            _session.c.expires_at,
            facts.c.kind,
            facts.c.value,
        )
        .select_from(
            _session.join(_user, _user.c.id == _session.c.user_id).outerjoin(facts, sa.true())
        )
        .where(_session.c.id == key)
    )


def _user_statement() -> Any:
    key: Any = sa.bindparam("id")
    facts = _facts(key, _user_role, _team_user, "user_id", [ANONYMOUS_ROLE, USERS_ROLE])
    return (
        sa.select(_user.c.id, _user.c.email, _user.c.name, facts.c.kind, facts.c.value)
        .select_from(_user.outerjoin(facts, sa.true()))
        .where(_user.c.id == key)
    )


_APPLICATION = _application_statement()
_SESSION = _session_statement()
_USER = _user_statement()
_ANONYMOUS = sa.select(_role_rule.c.rule_id).where(_role_rule.c.role_id == ANONYMOUS_ROLE)


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

    # -- AuthBackend ----------------------------------------------------------------------------

    async def authenticate(self, request: RequestInfo) -> Principal | None:
        header = request.authorization
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized(INVALID_API_KEY)
            return await self._application(token.strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return await self._session(cookie)
        return None

    async def anonymous(self) -> Principal:
        async with self.host.db.engine.connect() as conn:
            rules = (await conn.execute(_ANONYMOUS)).scalars().all()
        return Principal.anonymous(rules)

    async def admitted_ids(
        self,
        principal: Principal,
        resource_type: str,
        resource_ids: Sequence[str],
        level: Level,
        has_global: bool,
    ) -> set[str]:
        ids = list(dict.fromkeys(resource_ids))
        if principal.kind is PrincipalKind.SERVICE:
            return set(ids)
        if resource_type == TEAM_RESOURCE:
            return await self._managed_teams(principal, ids, has_global)
        teams = list(principal.team_ids)
        levels = (
            [Level.MANAGE.value]
            if level is Level.MANAGE
            else [Level.READ.value, Level.MANAGE.value]
        )
        admitted: set[str] = set(ids) if has_global else set()
        async with self.host.db.engine.connect() as conn:
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

    async def _application(self, token: str) -> Principal:
        parsed = parse_token(token, API_KEY_PREFIX)
        if parsed is None:
            raise Unauthorized(INVALID_API_KEY)
        async with self.host.db.engine.connect() as conn:
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
        return Principal(
            PrincipalKind.APPLICATION,
            id=parsed.id,
            name=head.name,
            rules=facts.rules,
            team_ids=facts.teams,
            is_admin=facts.is_admin,
        )

    async def _session(self, cookie: str) -> Principal:
        parsed = parse_token(cookie, SESSION_PREFIX)
        if parsed is None:
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        async with self.host.db.engine.connect() as conn:
            rows = (await conn.execute(_SESSION, {"id": parsed.id})).all()
        if not rows or not self.digester.verify(parsed.secret, rows[0].secret_digest):
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        head = rows[0]
        expires_at = head.expires_at
        if expires_at is None or expires_at <= self.now():
            raise Unauthorized(INVALID_SESSION, headers=_clear_cookie_header())
        return self._user_principal(head, Facts.from_rows(rows))

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

    async def _managed_teams(
        self, principal: Principal, ids: list[str], has_global: bool
    ) -> set[str]:
        if has_global:
            return set(ids)
        if principal.kind is not PrincipalKind.USER or not ids:
            return set()
        admitted: set[str] = set()
        async with self.host.db.engine.connect() as conn:
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
            async with self.host.db.engine.begin() as conn:
                await conn.execute(statement)
        except Exception:
            logger.warning("Could not record lastUsedAt of application %s", app_id, exc_info=True)

    async def flush(self) -> None:
        """Wait for pending ``lastUsedAt`` writes (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
