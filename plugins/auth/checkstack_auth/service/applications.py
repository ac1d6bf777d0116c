"""External applications (API keys): listing, creating, changing, rotating and deleting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Principal, PrincipalKind
from checkstack_core.db import core_rows
from checkstack_core.errors import validation_error

from ..contract import (
    APPLICATION_CREATED,
    APPLICATION_DELETED,
    APPLICATION_SECRET_REGENERATED,
    APPLICATION_UPDATED,
    ApplicationInfo,
)
from ..models import (
    APPLICATIONS_ROLE,
    Application,
    ApplicationRole,
    TeamApplication,
    utcnow,
)
from ..tokens import API_KEY_PREFIX, format_token, new_id, new_secret
from .common import digester, get_application, get_team
from .roles import resolve_role, resolve_roles_to_give
from .teams import assert_membership_rights, resolve_teams, team_updated


async def _application_links(
    session: AsyncSession, app_ids: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    roles: dict[str, list[str]] = {app_id: [] for app_id in app_ids}
    teams: dict[str, list[str]] = {app_id: [] for app_id in app_ids}
    if app_ids:
        for role_row in await session.exec(
            select(ApplicationRole)
            .where(col(ApplicationRole.application_id).in_(app_ids))
            .order_by(ApplicationRole.role_id)
        ):
            roles[role_row.application_id].append(role_row.role_id)
        for team_row in await session.exec(
            select(TeamApplication)
            .where(col(TeamApplication.application_id).in_(app_ids))
            .order_by(TeamApplication.team_id)
        ):
            teams[team_row.application_id].append(team_row.team_id)
    return roles, teams


def _application_info(app: Application, roles: list[str], teams: list[str]) -> ApplicationInfo:
    return ApplicationInfo(
        id=app.id,
        name=app.name,
        description=app.description,
        roles=roles,
        teams=teams,
        created_by=app.created_by,
        created_at=app.created_at,
        updated_at=app.updated_at,
        last_used_at=app.last_used_at,
        expires_at=app.expires_at,
    )


#: Every application with its roles, one row per (application, role) pair, by name.
_ALL_APPLICATIONS = (
    sa.select(
        col(Application.id),
        col(Application.name),
        col(Application.description),
        col(Application.created_by),
        col(Application.created_at),
        col(Application.updated_at),
        col(Application.last_used_at),
        col(Application.expires_at),
        col(ApplicationRole.role_id),
    )
    .select_from(Application)
    .outerjoin(ApplicationRole, col(ApplicationRole.application_id) == col(Application.id))
    .order_by(col(Application.name), col(Application.id), col(ApplicationRole.role_id))
)
#: Every application's teams (a second query: joined with the roles it would multiply rows).
_ALL_APPLICATION_TEAMS = sa.select(
    col(TeamApplication.application_id), col(TeamApplication.team_id)
).order_by(col(TeamApplication.team_id))


async def list_applications(ctx: Context) -> list[ApplicationInfo]:
    apps: dict[str, ApplicationInfo] = {}
    last: ApplicationInfo | None = None
    for row in await core_rows(ctx.session, _ALL_APPLICATIONS):
        (id, name, description, created_by, created_at, updated_at, last_used, expires, role) = row
        if last is None or last.id != id:
            last = apps[id] = ApplicationInfo(
                id=id,
                name=name,
                description=description,
                roles=[],
                teams=[],
                created_by=created_by,
                created_at=created_at,
                updated_at=updated_at,
                last_used_at=last_used,
                expires_at=expires,
            )
        if role is not None:
            last.roles.append(role)
    if apps:
        for app_id, team_id in await core_rows(ctx.session, _ALL_APPLICATION_TEAMS):
            apps[app_id].teams.append(team_id)
    return list(apps.values())


async def application_info(ctx: Context, app: Application) -> ApplicationInfo:
    roles, teams = await _application_links(ctx.session, [app.id])
    return _application_info(app, roles[app.id], teams[app.id])


def _event(info: ApplicationInfo) -> dict[str, Any]:
    """The payload of an application's events: ids and names, never its secret or token."""
    return {
        "applicationId": info.id,
        "applicationName": info.name,
        "roles": list(info.roles),
        "teams": list(info.teams),
    }


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise validation_error(
            [{"message": "expiresAt needs a time zone (e.g. a trailing Z)", "path": ["expiresAt"]}]
        )
    return expires_at.astimezone(UTC)


def _created_by(principal: Principal) -> str:
    if principal.kind is PrincipalKind.SERVICE:
        return "cli"
    return f"{principal.kind}:{principal.id}"


async def create_application(
    ctx: Context,
    name: str,
    *,
    description: str = "",
    roles: Sequence[str] = (),
    teams: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> tuple[ApplicationInfo, str]:
    """A new application holding the ``applications`` role (plus ``roles``); returns its info and
    its token, which exists nowhere else afterwards."""
    session = ctx.session
    # The caller's roles alone, so that an issue's path points into the caller's own list.
    wanted = await resolve_roles_to_give(ctx, roles)
    if APPLICATIONS_ROLE not in {role.id for role in wanted}:
        wanted.append(await resolve_role(session, APPLICATIONS_ROLE))
    joined = await resolve_teams(ctx, teams)
    await assert_membership_rights(ctx, [t.id for t in joined])
    secret = new_secret()
    app = Application(
        id=new_id(),
        name=name,
        description=description,
        secret_digest=digester(ctx).digest(secret),
        created_by=_created_by(ctx.principal),
        expires_at=_check_expiry(expires_at),
    )
    session.add(app)
    await session.flush()
    for role in wanted:
        session.add(ApplicationRole(application_id=app.id, role_id=role.id))
    for team in joined:
        session.add(TeamApplication(application_id=app.id, team_id=team.id))
    await session.flush()
    info = await application_info(ctx, app)
    await ctx.emit(APPLICATION_CREATED, _event(info))
    for team in joined:  # each team has a new member, as if added through addTeamMember
        await team_updated(ctx, team, "members")
    return info, format_token(API_KEY_PREFIX, app.id, secret)


async def update_application(
    ctx: Context,
    app_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    roles: Sequence[str] | None = None,
    teams: Sequence[str] | None = None,
    expires_at: datetime | None = None,
    change_expiry: bool = False,
) -> ApplicationInfo:
    session = ctx.session
    app = await get_application(session, app_id)
    current_roles, current_teams = await _application_links(session, [app.id])
    before = _application_info(app, current_roles[app.id], current_teams[app.id])
    if name is not None:
        app.name = name
    if description is not None:
        app.description = description
    if change_expiry:
        app.expires_at = _check_expiry(expires_at)
    if roles is not None:
        wanted = await resolve_roles_to_give(ctx, roles)
        removed = set(current_roles[app.id]) - {r.id for r in wanted}
        if removed:
            await session.exec(
                sa.delete(ApplicationRole).where(
                    col(ApplicationRole.application_id) == app.id,
                    col(ApplicationRole.role_id).in_(removed),
                )
            )
        for role in wanted:
            if role.id not in current_roles[app.id]:
                session.add(ApplicationRole(application_id=app.id, role_id=role.id))
    changed_teams: list[str] = []
    if teams is not None:
        joined = {t.id for t in await resolve_teams(ctx, teams)}
        had = set(current_teams[app.id])
        changed_teams = sorted(joined ^ had)
        await assert_membership_rights(ctx, sorted(joined ^ had))
        if had - joined:
            await session.exec(
                sa.delete(TeamApplication).where(
                    col(TeamApplication.application_id) == app.id,
                    col(TeamApplication.team_id).in_(had - joined),
                )
            )
        for team_id in sorted(joined - had):
            session.add(TeamApplication(application_id=app.id, team_id=team_id))
    app.updated_at = utcnow()
    session.add(app)
    await session.flush()
    info = await application_info(ctx, app)
    changes = [
        field
        for field, old, new in (
            ("name", before.name, info.name),
            ("description", before.description, info.description),
            ("expiresAt", before.expires_at, info.expires_at),
            ("roles", before.roles, info.roles),
            ("teams", before.teams, info.teams),
        )
        if old != new
    ]
    if changes:
        await ctx.emit(APPLICATION_UPDATED, {**_event(info), "changes": changes})
    for team_id in changed_teams:  # joined or left: each team's members changed
        await team_updated(ctx, await get_team(session, team_id), "members")
    return info


async def regenerate_secret(ctx: Context, app_id: str) -> str:
    app = await get_application(ctx.session, app_id)
    secret = new_secret()
    app.secret_digest = digester(ctx).digest(secret)
    app.updated_at = utcnow()
    ctx.session.add(app)
    await ctx.session.flush()
    await ctx.emit(
        APPLICATION_SECRET_REGENERATED, {"applicationId": app.id, "applicationName": app.name}
    )
    return format_token(API_KEY_PREFIX, app.id, secret)


async def delete_application(ctx: Context, app_id: str) -> None:
    app = await get_application(ctx.session, app_id, lock=True)
    await ctx.session.delete(app)
    await ctx.session.flush()
    await ctx.emit(APPLICATION_DELETED, {"applicationId": app.id, "applicationName": app.name})
