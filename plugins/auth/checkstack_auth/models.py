"""The auth plugin's tables (names prefixed ``auth_``).

Secrets never reach a column: applications and sessions store a digest of their secret
(:mod:`checkstack_auth.tokens`), users an argon2 hash of their password
(:mod:`checkstack_auth.passwords`). Link tables cascade on delete, so deleting a user, an
application, a role or a team never fails on a leftover reference.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from checkstack_core.db import UtcDateTime, utcnow

#: Ids of the built-in roles (seeded by the first migration, never deletable).
ADMIN_ROLE = "admin"
USERS_ROLE = "users"
ANONYMOUS_ROLE = "anonymous"
APPLICATIONS_ROLE = "applications"
SYSTEM_ROLES = (ADMIN_ROLE, USERS_ROLE, ANONYMOUS_ROLE, APPLICATIONS_ROLE)
#: Roles everyone of a kind holds implicitly; they cannot be assigned.
IMPLICIT_ROLES = (USERS_ROLE, ANONYMOUS_ROLE)


def _ts(*, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(UtcDateTime, nullable=nullable)


def _fk(target: str, *, primary_key: bool = False, index: bool = False) -> sa.Column[Any]:
    return sa.Column(
        sa.String(36),
        sa.ForeignKey(target, ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=index,
    )


class AuthMeta(SQLModel, table=True):
    """One row (id 1) that writers lock to serialize what must not race: onboarding (only while
    no user exists) and the startup sync of rules into roles.

    ``authz_version`` is bumped by database triggers whenever role rules, grants or team-only
    settings change; every process compares it with its cache once per call.
    """

    __tablename__ = "auth_meta"

    id: int = Field(default=1, primary_key=True)
    lock_counter: int = Field(default=0, sa_column=sa.Column(sa.Integer, nullable=False))
    authz_version: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )


class User(SQLModel, table=True):
    __tablename__ = "auth_user"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(sa_column=sa.Column(sa.String(254), nullable=False, unique=True))
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    password_hash: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class LoginSession(SQLModel, table=True):
    """A login. The cookie carries ``cs_<id>_<secret>``; only the secret's digest is stored."""

    __tablename__ = "auth_session"

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(sa_column=_fk("auth_user.id", index=True))
    secret_digest: str = Field(sa_column=sa.Column(sa.String(80), nullable=False))
    user_agent: str = Field(default="", sa_column=sa.Column(sa.String(256), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())


class Role(SQLModel, table=True):
    __tablename__ = "auth_role"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False, unique=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    system: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class RoleRule(SQLModel, table=True):
    """A qualified access rule id held by a role (admin holds every rule implicitly)."""

    __tablename__ = "auth_role_rule"

    role_id: str = Field(sa_column=_fk("auth_role.id", primary_key=True))
    rule_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))


class RemovedDefaultRule(SQLModel, table=True):
    """An administrator removed a ``default`` rule from ``users`` (or a ``public`` one from
    ``anonymous``): the startup sync must not add it back."""

    __tablename__ = "auth_removed_default_rule"

    role_id: str = Field(sa_column=_fk("auth_role.id", primary_key=True))
    rule_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))


class UserRole(SQLModel, table=True):
    __tablename__ = "auth_user_role"

    user_id: str = Field(sa_column=_fk("auth_user.id", primary_key=True))
    role_id: str = Field(sa_column=_fk("auth_role.id", primary_key=True, index=True))


class Application(SQLModel, table=True):
    """An external application: an API client authenticating with ``ck_<id>_<secret>``."""

    __tablename__ = "auth_application"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    description: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    secret_digest: str = Field(sa_column=sa.Column(sa.String(80), nullable=False))
    created_by: str = Field(default="", sa_column=sa.Column(sa.String(120), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class ApplicationRole(SQLModel, table=True):
    __tablename__ = "auth_application_role"

    application_id: str = Field(sa_column=_fk("auth_application.id", primary_key=True))
    role_id: str = Field(sa_column=_fk("auth_role.id", primary_key=True, index=True))


class Team(SQLModel, table=True):
    __tablename__ = "auth_team"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False, unique=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class TeamUser(SQLModel, table=True):
    """A user who is a member of a team (keyed by user first: authentication reads by user)."""

    __tablename__ = "auth_team_user"

    user_id: str = Field(sa_column=_fk("auth_user.id", primary_key=True))
    team_id: str = Field(sa_column=_fk("auth_team.id", primary_key=True, index=True))


class TeamApplication(SQLModel, table=True):
    """An application that is a member of a team."""

    __tablename__ = "auth_team_application"

    application_id: str = Field(sa_column=_fk("auth_application.id", primary_key=True))
    team_id: str = Field(sa_column=_fk("auth_team.id", primary_key=True, index=True))


class TeamManager(SQLModel, table=True):
    """A user who may change a team's membership (managers need not be members)."""

    __tablename__ = "auth_team_manager"

    team_id: str = Field(sa_column=_fk("auth_team.id", primary_key=True))
    user_id: str = Field(sa_column=_fk("auth_user.id", primary_key=True, index=True))


class ResourceGrant(SQLModel, table=True):
    """A team's ``read`` or ``manage`` access (manage implies read) to one resource."""

    __tablename__ = "auth_resource_grant"

    resource_type: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    resource_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    team_id: str = Field(sa_column=_fk("auth_team.id", primary_key=True, index=True))
    level: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))


class ResourceSettings(SQLModel, table=True):
    """Per-resource access settings: ``team_only`` makes team grants the only way in."""

    __tablename__ = "auth_resource_settings"

    resource_type: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    resource_id: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    team_only: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))


__all__ = ["MODELS", "utcnow"]

MODELS: list[type[SQLModel]] = [
    AuthMeta,
    User,
    LoginSession,
    Role,
    RoleRule,
    RemovedDefaultRule,
    UserRole,
    Application,
    ApplicationRole,
    Team,
    TeamUser,
    TeamApplication,
    TeamManager,
    ResourceGrant,
    ResourceSettings,
]
