"""Roles and access rules: resolving, listing, creating, changing and deleting roles, and the
startup sync of plugins' default and public rules into the implicit roles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context
from checkstack_core.db import core_rows
from checkstack_core.errors import Forbidden, NotFound, validation_error

from ..contract import ROLE_CREATED, ROLE_DELETED, ROLE_UPDATED, RoleInfo, RuleInfo
from ..models import (
    ADMIN_ROLE,
    ANONYMOUS_ROLE,
    IMPLICIT_ROLES,
    USERS_ROLE,
    RemovedDefaultRule,
    Role,
    RoleRule,
)
from ..tokens import new_id
from .common import dedupe, known_rules, lock, name_free


async def resolve_role(session: AsyncSession, ref: str) -> Role:
    """A role by id, or by name (case-insensitive); NOT_FOUND otherwise."""
    role = await session.get(Role, ref)
    if role is None:
        found = await session.exec(select(Role).where(sa.func.lower(Role.name) == ref.lower()))
        role = found.first()
    if role is None:
        raise NotFound(f"Role not found: {ref}")
    return role


async def role_rules(session: AsyncSession, role_ids: Iterable[str]) -> dict[str, set[str]]:
    ids = list(role_ids)
    rules: dict[str, set[str]] = {role_id: set() for role_id in ids}
    if ids:
        rows = await session.exec(select(RoleRule).where(col(RoleRule.role_id).in_(ids)))
        for row in rows:
            rules[row.role_id].add(row.rule_id)
    return rules


async def resolve_roles_to_give(
    ctx: Context, role_refs: Iterable[str], *, path: str = "roles"
) -> list[Role]:
    """Resolve the roles to give a user or an application (by id or name); a role named twice
    (e.g. by id and by name) counts once. BAD_REQUEST naming each unknown or implicit one.

    Whether the caller may give them is decided before the handler runs (:mod:`.targets`)."""
    roles: dict[str, Role] = {}
    issues = []
    for index, ref in enumerate(role_refs):
        try:
            role = await resolve_role(ctx.session, ref)
        except NotFound:
            issues.append({"message": f"Role not found: {ref}", "path": [path, index]})
            continue
        if role.id in IMPLICIT_ROLES:
            issues.append(
                {
                    "message": f"The {role.id} role cannot be assigned: "
                    + ("every user holds it" if role.id == USERS_ROLE else "everyone holds it"),
                    "path": [path, index],
                }
            )
            continue
        roles.setdefault(role.id, role)
    if issues:
        raise validation_error(issues)
    return list(roles.values())


async def role_info(ctx: Context, role: Role, rules: set[str] | None = None) -> RoleInfo:
    if role.id == ADMIN_ROLE:
        held = sorted(known_rules(ctx))
    else:
        held = sorted(
            rules if rules is not None else (await role_rules(ctx.session, [role.id]))[role.id]
        )
    return RoleInfo(
        id=role.id,
        name=role.name,
        description=role.description,
        system=role.system,
        assignable=role.id not in IMPLICIT_ROLES,
        rules=held,
    )


def _event(info: RoleInfo) -> dict[str, object]:
    return {"roleId": info.id, "roleName": info.name, "rules": list(info.rules)}


#: Every role with its rules, one row per (role, rule) pair (a role without rules once, with
#: no rule), system roles first, then by name: the whole list in one query.
_ALL_ROLES = (
    sa.select(
        col(Role.id),
        col(Role.name),
        col(Role.description),
        col(Role.system),
        col(RoleRule.rule_id),
    )
    .select_from(Role)
    .outerjoin(RoleRule, col(RoleRule.role_id) == col(Role.id))
    .order_by(col(Role.system).desc(), col(Role.name), col(Role.id), col(RoleRule.rule_id))
)


async def list_roles(ctx: Context) -> list[RoleInfo]:
    roles: list[RoleInfo] = []
    last: RoleInfo | None = None
    for id, name, description, system, rule_id in await core_rows(ctx.session, _ALL_ROLES):
        if last is None or last.id != id:
            last = RoleInfo(
                id=id,
                name=name,
                description=description,
                system=system,
                assignable=id not in IMPLICIT_ROLES,
                rules=sorted(known_rules(ctx)) if id == ADMIN_ROLE else [],
            )
            roles.append(last)
        if rule_id is not None and id != ADMIN_ROLE:
            last.rules.append(rule_id)
    for role in roles:
        role.rules.sort()  # in Python's order, as role_info gives it, whatever the collation
    return roles


def list_rules(ctx: Context) -> list[RuleInfo]:
    return [
        RuleInfo(
            id=rule_id,
            plugin_id=plugin_id,
            level=str(rule.level),
            description=rule.description,
            default=rule.default,
            public=rule.public,
        )
        for rule_id, (plugin_id, rule) in sorted(known_rules(ctx).items())
    ]


def _check_rule_ids(ctx: Context, rules: Sequence[str]) -> list[str]:
    known = known_rules(ctx)
    issues = [
        {"message": f"Unknown access rule: {rule}", "path": ["rules", index]}
        for index, rule in enumerate(rules)
        if rule not in known
    ]
    if issues:
        raise validation_error(issues)
    return dedupe(rules)


async def create_role(ctx: Context, name: str, description: str, rules: Sequence[str]) -> RoleInfo:
    wanted = _check_rule_ids(ctx, rules)
    await name_free(ctx.session, Role, name, None)
    role = Role(id=new_id(), name=name, description=description)
    ctx.session.add(role)
    await ctx.session.flush()
    for rule in wanted:
        ctx.session.add(RoleRule(role_id=role.id, rule_id=rule))
    await ctx.session.flush()
    info = await role_info(ctx, role, set(wanted))
    await ctx.emit(ROLE_CREATED, _event(info))
    return info


async def update_role(
    ctx: Context,
    role_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    rules: Sequence[str] | None = None,
) -> RoleInfo:
    session = ctx.session
    role = await session.get(Role, role_id)
    if role is None:
        raise NotFound(f"Role not found: {role_id}")
    before = (role.name, role.description)
    if name is not None and name != role.name:
        if role.system:
            # Built-in roles are referred to by name in docs, scripts and the CLI.
            raise Forbidden(f"The {role.id} role is built in and cannot be renamed")
        await name_free(session, Role, name, role.id)
        role.name = name
    if description is not None:
        role.description = description
    session.add(role)
    current = (await role_rules(session, [role.id]))[role.id]
    held = set(current)
    if rules is not None:
        if role.id == ADMIN_ROLE:
            raise validation_error(
                [
                    {
                        "message": "The admin role holds every rule; its rules cannot be changed",
                        "path": ["rules"],
                    }
                ]
            )
        wanted = set(_check_rule_ids(ctx, rules))
        added, removed = wanted - current, current - wanted
        if removed:
            await session.exec(
                sa.delete(RoleRule).where(
                    col(RoleRule.role_id) == role.id, col(RoleRule.rule_id).in_(removed)
                )
            )
        for rule in sorted(added):
            session.add(RoleRule(role_id=role.id, rule_id=rule))
        if role.id in IMPLICIT_ROLES:
            # Remember an administrator's removals so the startup sync does not undo them.
            if added:
                await session.exec(
                    sa.delete(RemovedDefaultRule).where(
                        col(RemovedDefaultRule.role_id) == role.id,
                        col(RemovedDefaultRule.rule_id).in_(added),
                    )
                )
            for rule in sorted(removed):
                if await session.get(RemovedDefaultRule, (role.id, rule)) is None:
                    session.add(RemovedDefaultRule(role_id=role.id, rule_id=rule))
        current = wanted
    await session.flush()
    info = await role_info(ctx, role, current)
    if before != (role.name, role.description) or held != current:
        await ctx.emit(ROLE_UPDATED, _event(info))
    return info


async def delete_role(ctx: Context, role_id: str) -> None:
    # Locked (PostgreSQL) so that of concurrent deletions one deletes and announces.
    role = await ctx.session.get(Role, role_id, with_for_update=True)
    if role is None:
        raise NotFound(f"Role not found: {role_id}")
    if role.system:
        raise Forbidden("Cannot delete system role")
    await ctx.session.delete(role)
    await ctx.session.flush()
    await ctx.emit(ROLE_DELETED, {"roleId": role.id, "roleName": role.name})


async def sync_rules(ctx: Context) -> None:
    """Startup: put ``default`` rules into ``users`` and ``public`` ones into ``anonymous`` (unless
    an administrator removed them), and drop rules of uninstalled plugins from every role.

    Rules of plugins that are installed but disabled or failing are kept, so a plugin that fails
    once does not lose its place in custom roles.
    """
    session = ctx.session
    await lock(session)
    current = known_rules(ctx)
    discovered = set(ctx.host.plugins)
    active = {record.id for record in ctx.host.active()}

    def stale(rule_id: str) -> bool:
        plugin_id = rule_id.split(".", 1)[0]
        return plugin_id not in discovered or (plugin_id in active and rule_id not in current)

    held = {(r.role_id, r.rule_id) for r in await session.exec(select(RoleRule))}
    removed = {(r.role_id, r.rule_id) for r in await session.exec(select(RemovedDefaultRule))}
    for model, rows in ((RoleRule, held), (RemovedDefaultRule, removed)):
        gone = [(role, rule) for role, rule in rows if stale(rule)]
        for role, rule in gone:
            await session.exec(
                sa.delete(model).where(col(model.role_id) == role, col(model.rule_id) == rule)
            )
        rows.difference_update(gone)
    for rule_id, (_plugin_id, rule) in current.items():
        for flag, role in ((rule.default, USERS_ROLE), (rule.public, ANONYMOUS_ROLE)):
            if flag and (role, rule_id) not in held and (role, rule_id) not in removed:
                session.add(RoleRule(role_id=role, rule_id=rule_id))
    await session.flush()
