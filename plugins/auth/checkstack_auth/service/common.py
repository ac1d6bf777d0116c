"""Helpers every part of the auth service shares: digests, rule and resource-type lookups, the
serializing lock row and name uniqueness."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Principal, PrincipalKind
from checkstack_core.errors import Conflict, NotFound

from ..models import Application, AuthMeta, Role, Team, User
from ..tokens import Digester


def digester(ctx: Context) -> Digester:
    return Digester(ctx.host.settings.secret_key)


def is_superior(principal: Principal) -> bool:
    """Administrators and the plugin itself (the CLI) may do anything."""
    return principal.is_admin or principal.kind is PrincipalKind.SERVICE


def known_rules(ctx: Context) -> dict[str, tuple[str, Any]]:
    """Every access rule of every active plugin: qualified id → (plugin id, rule)."""
    return {
        rule.qualified_id(plugin_id): (plugin_id, rule) for plugin_id, rule in ctx.host.all_rules()
    }


def known_resource_types(ctx: Context) -> set[str]:
    """Resource types some active plugin guards with instance access."""
    types: set[str] = set()
    for record in ctx.host.active():
        contract = record.contract
        if contract is None:
            continue
        for rule in contract.rules:
            if rule.instance is not None:
                types.add(rule.instance.resource_type)
        for proc in contract.procedures:
            for rule in proc.rules:
                instance = proc.instance_access(rule)
                if instance is not None:
                    types.add(instance.resource_type)
    return types


def missing_rules(principal: Principal, rules: Iterable[str]) -> list[str]:
    return sorted(rule for rule in set(rules) if not principal.holds(rule))


async def lock(session: AsyncSession) -> None:
    """Serialize with other writers of what must not race (onboarding, rule sync)."""
    await session.exec(
        sa.update(AuthMeta)
        .where(col(AuthMeta.id) == 1)
        .values(lock_counter=AuthMeta.lock_counter + 1)
    )


def dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


async def name_free(session: AsyncSession, model: Any, name: str, own_id: str | None) -> None:
    found = await session.exec(select(model).where(sa.func.lower(model.name) == name.lower()))
    other = found.first()
    if other is not None and other.id != own_id:
        kind = "role" if model is Role else "team"
        raise Conflict(f"A {kind} named {name} already exists")


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User not found: {user_id}")
    return user


async def get_application(session: AsyncSession, app_id: str, *, lock: bool = False) -> Application:
    """The application, or NOT_FOUND. ``lock``: its row is held until the call ends (``SELECT
    ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already takes turns), so of
    concurrent deletions one deletes and announces, and the others then find nothing."""
    app = await session.get(Application, app_id, with_for_update=lock or None)
    if app is None:
        raise NotFound(f"Application not found: {app_id}")
    return app


async def get_team(session: AsyncSession, team_id: str, *, lock: bool = False) -> Team:
    """The team, or NOT_FOUND; ``lock`` as for :func:`get_application`."""
    team = await session.get(Team, team_id, with_for_update=lock or None)
    if team is None:
        raise NotFound(f"Team not found: {team_id}")
    return team
