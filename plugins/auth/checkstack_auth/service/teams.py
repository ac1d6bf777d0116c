"""Teams: listing, details, creating, renaming, deleting, members and managers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import col, select

from checkstack_core import Context, PrincipalKind
from checkstack_core.db import core_rows
from checkstack_core.errors import Forbidden, NotFound, validation_error

from ..contract import (
    TEAM_CREATED,
    TEAM_DELETED,
    TEAM_UPDATED,
    TEAMS_MANAGE,
    TeamDetail,
    TeamGrant,
    TeamInfo,
    TeamManagerInfo,
    TeamMember,
)
from ..models import (
    Application,
    ResourceGrant,
    Team,
    TeamApplication,
    TeamManager,
    TeamUser,
    User,
    utcnow,
)
from ..tokens import new_id
from .common import dedupe, get_application, get_team, get_user, name_free


async def resolve_teams(ctx: Context, team_ids: Sequence[str]) -> list[Team]:
    teams = []
    issues = []
    for index, team_id in enumerate(dedupe(team_ids)):
        team = await ctx.session.get(Team, team_id)
        if team is None:
            issues.append({"message": f"Team not found: {team_id}", "path": ["teams", index]})
        else:
            teams.append(team)
    if issues:
        raise validation_error(issues)
    return teams


async def may_manage_membership(ctx: Context, team_id: str) -> bool:
    """Holders of ``auth.teams.manage`` and the team's managers change its membership."""
    principal = ctx.principal
    if principal.holds(TEAMS_MANAGE):
        return True
    if principal.kind is not PrincipalKind.USER:
        return False
    return await ctx.session.get(TeamManager, (team_id, principal.id)) is not None


async def assert_membership_rights(ctx: Context, team_ids: Iterable[str]) -> None:
    for team_id in team_ids:
        if not await may_manage_membership(ctx, team_id):
            raise Forbidden(f"You cannot change the membership of team {team_id}")


#: Every team with its member count (users and applications) and whether the user bound as
#: ``manager`` manages it, by name: the whole list in one query.
_MEMBER_COUNTS = (
    sa.select(col(TeamUser.team_id).label("team_id"))
    .union_all(sa.select(col(TeamApplication.team_id)))
    .subquery()
)
_ALL_TEAMS = sa.select(
    col(Team.id),
    col(Team.name),
    col(Team.description),
    sa.select(sa.func.count())
    .select_from(_MEMBER_COUNTS)
    .where(_MEMBER_COUNTS.c.team_id == col(Team.id))
    .scalar_subquery(),
    sa.exists()
    .where(col(TeamManager.team_id) == col(Team.id))
    .where(col(TeamManager.user_id) == sa.bindparam("manager"))
    .correlate(Team),
).order_by(col(Team.name), col(Team.id))


async def list_teams(ctx: Context) -> list[TeamInfo]:
    principal = ctx.principal
    # Only a user manages teams: any other principal's id matches no manager row.
    manager = principal.id if principal.kind is PrincipalKind.USER else None
    rows = await core_rows(ctx.session, _ALL_TEAMS, {"manager": manager})
    return [
        TeamInfo(
            id=id,
            name=name,
            description=description,
            member_count=int(count),
            is_manager=bool(manages),
        )
        for id, name, description, count, manages in rows
    ]


async def team_info(ctx: Context, team: Team) -> TeamInfo:
    for info in await list_teams(ctx):
        if info.id == team.id:
            return info
    raise NotFound(f"Team not found: {team.id}")


async def team_detail(ctx: Context, team_id: str) -> TeamDetail:
    session = ctx.session
    team = await get_team(session, team_id)
    users = await session.exec(
        select(User)
        .join(TeamUser, col(TeamUser.user_id) == User.id)
        .where(TeamUser.team_id == team.id)
    )
    apps = await session.exec(
        select(Application)
        .join(TeamApplication, col(TeamApplication.application_id) == Application.id)
        .where(TeamApplication.team_id == team.id)
    )
    managers = await session.exec(
        select(User)
        .join(TeamManager, col(TeamManager.user_id) == User.id)
        .where(TeamManager.team_id == team.id)
    )
    grants = await session.exec(
        select(ResourceGrant)
        .where(ResourceGrant.team_id == team.id)
        .order_by(ResourceGrant.resource_type, ResourceGrant.resource_id)
    )
    members = [TeamMember(kind="user", id=u.id, name=u.name, email=u.email) for u in users]
    members += [TeamMember(kind="application", id=a.id, name=a.name) for a in apps]
    manager_list = [TeamManagerInfo(id=u.id, name=u.name, email=u.email) for u in managers]
    principal = ctx.principal
    return TeamDetail(
        id=team.id,
        name=team.name,
        description=team.description,
        is_manager=any(m.id == principal.id for m in manager_list)
        and principal.kind is PrincipalKind.USER,
        members=sorted(members, key=lambda m: (m.kind, m.name, m.id)),
        managers=sorted(manager_list, key=lambda m: (m.name, m.id)),
        grants=[
            TeamGrant(resource_type=g.resource_type, resource_id=g.resource_id, level=g.level)
            for g in grants
        ],
    )


async def create_team(ctx: Context, name: str, description: str) -> Team:
    await name_free(ctx.session, Team, name, None)
    team = Team(id=new_id(), name=name, description=description)
    ctx.session.add(team)
    await ctx.session.flush()
    await ctx.emit(TEAM_CREATED, {"teamId": team.id, "teamName": team.name})
    return team


async def team_updated(ctx: Context, team: Team, change: str) -> None:
    """Emit ``auth.team.updated``: ``change`` is edited, members, managers or access."""
    await ctx.emit(TEAM_UPDATED, {"teamId": team.id, "teamName": team.name, "change": change})


async def update_team(
    ctx: Context, team_id: str, *, name: str | None = None, description: str | None = None
) -> Team:
    team = await get_team(ctx.session, team_id)
    before = (team.name, team.description)
    if name is not None and name != team.name:
        await name_free(ctx.session, Team, name, team.id)
        team.name = name
    if description is not None:
        team.description = description
    team.updated_at = utcnow()
    ctx.session.add(team)
    await ctx.session.flush()
    if before != (team.name, team.description):
        await team_updated(ctx, team, "edited")
    return team


async def delete_team(ctx: Context, team_id: str) -> None:
    team = await get_team(ctx.session, team_id, lock=True)
    await ctx.session.delete(team)
    await ctx.session.flush()
    await ctx.emit(TEAM_DELETED, {"teamId": team.id, "teamName": team.name})


async def change_member(
    ctx: Context, team_id: str, user_id: str | None, application_id: str | None, *, add: bool
) -> None:
    """Add or remove one member (a user or an application)."""
    if (user_id is None) == (application_id is None):
        raise validation_error(
            [{"message": "Name exactly one of userId and applicationId", "path": []}]
        )
    session = ctx.session
    team = await get_team(session, team_id)
    link: TeamUser | TeamApplication
    if user_id is not None:
        await get_user(session, user_id)
        existing = await session.get(TeamUser, (user_id, team_id))
        link = existing or TeamUser(user_id=user_id, team_id=team_id)
    else:
        assert application_id is not None
        await get_application(session, application_id)
        existing_app = await session.get(TeamApplication, (application_id, team_id))
        existing = existing_app  # type: ignore[assignment]
        link = existing_app or TeamApplication(application_id=application_id, team_id=team_id)
    if add and existing is None:
        session.add(link)
    elif not add and existing is not None:
        await session.delete(existing)
    else:
        return
    await session.flush()
    await team_updated(ctx, team, "members")


async def change_manager(ctx: Context, team_id: str, user_id: str, *, add: bool) -> None:
    session = ctx.session
    team = await get_team(session, team_id)
    await get_user(session, user_id)
    existing = await session.get(TeamManager, (team_id, user_id))
    if add and existing is None:
        session.add(TeamManager(team_id=team_id, user_id=user_id))
    elif not add and existing is not None:
        await session.delete(existing)
    else:
        return
    await session.flush()
    await team_updated(ctx, team, "managers")
