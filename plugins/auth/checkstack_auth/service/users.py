"""Users: listing, creating (and onboarding the first administrator), roles, passwords, ending
sessions and deleting, with the guards around the ``admin`` role."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, PrincipalKind
from checkstack_core.db import core_rows
from checkstack_core.errors import Conflict, Forbidden

from .. import passwords
from ..contract import USER_CREATED, USER_DELETED, USER_UPDATED, UserInfo
from ..models import ADMIN_ROLE, LoginSession, User, UserRole, utcnow
from ..tokens import new_id
from .common import get_user, lock
from .roles import resolve_roles_to_give


async def user_roles(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(user_ids)
    roles: dict[str, list[str]] = {user_id: [] for user_id in ids}
    if ids:
        rows = await session.exec(
            select(UserRole).where(col(UserRole.user_id).in_(ids)).order_by(UserRole.role_id)
        )
        for row in rows:
            roles[row.user_id].append(row.role_id)
    return roles


def _user_info(user: User, roles: list[str]) -> UserInfo:
    return UserInfo(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=roles,
        created_at=user.created_at,
    )


#: Every user with its roles, one row per (user, role) pair (a user without roles once, with
#: no role), by email: the whole list in one query, built into structs without ORM instances.
_ALL_USERS = (
    sa.select(
        col(User.id),
        col(User.email),
        col(User.name),
        col(User.created_at),
        col(UserRole.role_id),
    )
    .select_from(User)
    .outerjoin(UserRole, col(UserRole.user_id) == col(User.id))
    .order_by(col(User.email), col(User.id), col(UserRole.role_id))
)


async def list_users(ctx: Context) -> list[UserInfo]:
    users: list[UserInfo] = []
    last: UserInfo | None = None
    for id, email, name, created_at, role_id in await core_rows(ctx.session, _ALL_USERS):
        if last is None or last.id != id:
            last = UserInfo(id=id, email=email, name=name, roles=[], created_at=created_at)
            users.append(last)
        if role_id is not None:
            last.roles.append(role_id)
    return users


async def user_info(ctx: Context, user: User) -> UserInfo:
    return _user_info(user, (await user_roles(ctx.session, [user.id]))[user.id])


async def count_users(session: AsyncSession) -> int:
    return (await session.exec(select(sa.func.count()).select_from(User))).one()


async def count_admins(session: AsyncSession) -> int:
    statement = (
        select(sa.func.count()).select_from(UserRole).where(col(UserRole.role_id) == ADMIN_ROLE)
    )
    return (await session.exec(statement)).one()


async def create_user(
    ctx: Context,
    email: str,
    password: str,
    *,
    name: str = "",
    roles: Sequence[str] = (),
) -> User:
    """A new user with a policy-checked password; CONFLICT when the email is taken."""
    address = passwords.normalize_email(email)
    passwords.check_password(password, email=address)
    wanted = await resolve_roles_to_give(ctx, roles)
    session = ctx.session
    existing = await session.exec(select(User).where(User.email == address))
    if existing.first() is not None:
        raise Conflict("A user with this email already exists")
    user = User(
        id=new_id(),
        email=address,
        name=name.strip() or address.split("@", 1)[0],
        password_hash=await passwords.hash_password(password),
    )
    session.add(user)
    await session.flush()
    for role in wanted:
        session.add(UserRole(user_id=user.id, role_id=role.id))
    await session.flush()
    roles_held = sorted(role.id for role in wanted)
    await ctx.emit(USER_CREATED, {"userId": user.id, "userName": user.name, "roles": roles_held})
    return user


async def complete_onboarding(ctx: Context, email: str, password: str, name: str) -> User:
    """Create the first administrator; FORBIDDEN once any user exists."""
    await lock(ctx.session)
    if await count_users(ctx.session) > 0:
        raise Forbidden("Onboarding has already been completed")
    return await create_user(ctx, email, password, name=name, roles=[ADMIN_ROLE])


async def _keep_an_administrator(session: AsyncSession, message: str) -> None:
    """CONFLICT when the user about to lose the admin role is the last administrator.

    Callers hold the lock row (:func:`.common.lock`) since before they read the user's roles:
    two concurrent demotions or deletions of the last two administrators then run one after the
    other, and the second counts after the first committed (on PostgreSQL too, where a count
    read without the lock would see both administrators in both transactions)."""
    if await count_admins(session) <= 1:
        raise Conflict(message)


async def set_user_roles(ctx: Context, user_id: str, roles: Sequence[str]) -> User:
    session = ctx.session
    principal = ctx.principal
    await lock(session)
    user = await get_user(session, user_id)
    wanted = await resolve_roles_to_give(ctx, roles)
    wanted_ids = {r.id for r in wanted}
    current = set((await user_roles(session, [user.id]))[user.id])
    added = [r for r in wanted if r.id not in current]
    removed = current - wanted_ids
    if ADMIN_ROLE in removed:
        if principal.kind is PrincipalKind.USER and principal.id == user.id:
            raise Forbidden("You cannot remove your own admin role")
        await _keep_an_administrator(
            session, "Cannot remove the admin role from the last administrator"
        )
    if removed:
        await session.exec(
            sa.delete(UserRole).where(
                col(UserRole.user_id) == user.id, col(UserRole.role_id).in_(removed)
            )
        )
    for role in added:
        session.add(UserRole(user_id=user.id, role_id=role.id))
    await session.flush()
    if added or removed:
        await ctx.emit(
            USER_UPDATED, {"userId": user.id, "userName": user.name, "roles": sorted(wanted_ids)}
        )
    return user


async def end_sessions(session: AsyncSession, user_id: str, *, keep: str | None = None) -> None:
    statement = sa.delete(LoginSession).where(col(LoginSession.user_id) == user_id)
    if keep is not None:
        statement = statement.where(col(LoginSession.id) != keep)
    await session.exec(statement)


async def set_user_password(ctx: Context, user_id: str, password: str) -> None:
    user = await get_user(ctx.session, user_id)
    passwords.check_password(password, email=user.email)
    user.password_hash = await passwords.hash_password(password)
    user.updated_at = utcnow()
    ctx.session.add(user)
    await end_sessions(ctx.session, user.id)
    await ctx.session.flush()


async def revoke_user_sessions(ctx: Context, user_id: str) -> None:
    user = await get_user(ctx.session, user_id)
    await end_sessions(ctx.session, user.id)


async def delete_user(ctx: Context, user_id: str) -> None:
    session = ctx.session
    principal = ctx.principal
    await lock(session)
    user = await get_user(session, user_id)
    if principal.kind is PrincipalKind.USER and principal.id == user.id:
        raise Forbidden("You cannot delete yourself")
    roles = (await user_roles(session, [user.id]))[user.id]
    if ADMIN_ROLE in roles:
        await _keep_an_administrator(session, "Cannot delete the last administrator")
    await session.delete(user)
    await session.flush()
    await ctx.emit(USER_DELETED, {"userId": user.id, "userName": user.name})
