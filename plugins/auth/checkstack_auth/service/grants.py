"""Resource-level access: team grants, the team-only flag and the ``auth.access`` service other
plugins call when one of their resources is deleted."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from checkstack_core import Context, Principal
from checkstack_core.db import conflict_insert
from checkstack_core.errors import validation_error

from ..contract import RESOURCE_TEAM_ONLY_CHANGED, ResourceAccessInfo, ResourceGrantInfo
from ..models import ResourceGrant, ResourceSettings, Team, TeamUser
from .common import get_team, known_resource_types
from .teams import team_updated


async def resource_access(ctx: Context, resource_type: str, resource_id: str) -> ResourceAccessInfo:
    session = ctx.session
    settings = await session.get(ResourceSettings, (resource_type, resource_id))
    rows = await session.exec(
        select(ResourceGrant, Team)
        .join(Team, col(Team.id) == ResourceGrant.team_id)
        .where(
            ResourceGrant.resource_type == resource_type, ResourceGrant.resource_id == resource_id
        )
        .order_by(Team.name)
    )
    return ResourceAccessInfo(
        resource_type=resource_type,
        resource_id=resource_id,
        team_only=bool(settings and settings.team_only),
        grants=[
            ResourceGrantInfo(team_id=team.id, team_name=team.name, level=grant.level)
            for grant, team in rows
        ],
    )


def _check_resource_type(ctx: Context, resource_type: str) -> None:
    known = known_resource_types(ctx)
    if resource_type not in known:
        raise validation_error(
            [
                {
                    "message": f"Unknown resource type {resource_type}; known: "
                    + (", ".join(sorted(known)) or "none"),
                    "path": ["resourceType"],
                }
            ]
        )


def _grant_key(resource_type: str, resource_id: str, team_id: str) -> tuple[Any, ...]:
    """The conditions naming one grant row (its primary key)."""
    return (
        col(ResourceGrant.resource_type) == resource_type,
        col(ResourceGrant.resource_id) == resource_id,
        col(ResourceGrant.team_id) == team_id,
    )


async def grant(
    ctx: Context, team_id: str, resource_type: str, resource_id: str, level: str
) -> ResourceAccessInfo:
    _check_resource_type(ctx, resource_type)
    team = await get_team(ctx.session, team_id)
    # As for setTeamOnly: create if missing, else change only a different level, so concurrent
    # grants all succeed and the one real change is announced once.
    created = await ctx.session.exec(
        conflict_insert(ctx.host.db.dialect, ResourceGrant)
        .values(resource_type=resource_type, resource_id=resource_id, team_id=team_id, level=level)
        .on_conflict_do_nothing()
    )
    changed = created.rowcount == 1
    if not changed:
        written = await ctx.session.exec(
            sa.update(ResourceGrant)
            .where(
                *_grant_key(resource_type, resource_id, team_id), col(ResourceGrant.level) != level
            )
            .values(level=level)
        )
        changed = written.rowcount == 1
    if changed:
        await team_updated(ctx, team, "access")
    return await resource_access(ctx, resource_type, resource_id)


async def revoke(
    ctx: Context, team_id: str, resource_type: str, resource_id: str
) -> ResourceAccessInfo:
    # One DELETE: of concurrent revokes one removes the grant and announces it; the others find
    # nothing to remove (rather than failing on a row already gone).
    removed = await ctx.session.exec(
        sa.delete(ResourceGrant).where(*_grant_key(resource_type, resource_id, team_id))
    )
    if removed.rowcount == 1:
        team = await ctx.session.get(Team, team_id)
        if team is not None:
            await team_updated(ctx, team, "access")
    return await resource_access(ctx, resource_type, resource_id)


async def set_team_only(
    ctx: Context, resource_type: str, resource_id: str, team_only: bool
) -> ResourceAccessInfo:
    _check_resource_type(ctx, resource_type)
    # The row is made if missing (concurrent makers both fine), then changed only if it holds
    # the other value: the database decides, so of concurrent calls setting the same value
    # exactly one changes it and announces it, on PostgreSQL too (the second waits for the
    # first's row lock and then finds nothing to change), and none fails on the key.
    await ctx.session.exec(
        conflict_insert(ctx.host.db.dialect, ResourceSettings)
        .values(resource_type=resource_type, resource_id=resource_id, team_only=False)
        .on_conflict_do_nothing()
    )
    written = await ctx.session.exec(
        sa.update(ResourceSettings)
        .where(
            col(ResourceSettings.resource_type) == resource_type,
            col(ResourceSettings.resource_id) == resource_id,
            col(ResourceSettings.team_only).is_not(team_only),
        )
        .values(team_only=team_only)
    )
    if written.rowcount == 1:
        await ctx.emit(
            RESOURCE_TEAM_ONLY_CHANGED,
            {"resourceType": resource_type, "resourceId": resource_id, "teamOnly": team_only},
        )
    return await resource_access(ctx, resource_type, resource_id)


class AccessServiceImpl:
    """The ``auth.access`` service (see :data:`checkstack_auth.contract.AUTH_ACCESS`)."""

    async def forget_resource(self, ctx: Context, resource_type: str, resource_id: str) -> None:
        for model in (ResourceGrant, ResourceSettings):
            await ctx.session.exec(
                sa.delete(model).where(
                    col(model.resource_type) == resource_type,
                    col(model.resource_id) == resource_id,
                )
            )

    async def user_principal(self, ctx: Context, user_id: str) -> Principal | None:
        from ..backend import DatabaseAuthBackend

        resolved = await DatabaseAuthBackend.user_principal(ctx.session, user_id)
        return None if resolved is None else resolved[0]

    async def team_members(self, ctx: Context, team_id: str) -> list[str]:
        rows = await ctx.session.exec(
            select(col(TeamUser.user_id)).where(col(TeamUser.team_id) == team_id)
        )
        return sorted(rows)

    async def check_team(self, ctx: Context, team_id: str) -> None:
        from .targets import check_team

        await check_team(ctx, team_id)
