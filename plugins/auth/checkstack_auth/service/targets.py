"""Target-relative authorization: nobody acts on what holds more than they do.

The dispatcher decides whether a caller may call a procedure at all (its rules). This module
decides whether the caller may do it *to what the input names*, for every mutation of the auth
plugin, in one place: :data:`TARGETS` says what each mutation's input names, and
:func:`authorize` (run by every handler before it does anything, see :mod:`..handlers`) refuses
with ``403 FORBIDDEN`` unless the caller

- holds every access rule the named user or application holds (through its explicit roles and the
  implicit ``users``/``anonymous`` roles), and every resource grant of every team it is a member
  of: whoever could act on it (set its password, regenerate its key, change its roles...) could
  otherwise become it;
- holds every rule of every named role, whether the role is given to someone or changed or deleted;
- holds every grant of every named team (joining it or managing it hands its grants around), and
  the grant being given in ``grantTeamAccess``;
- holds every access rule it puts into a role.

Administrators (and the plugin itself, e.g. the CLI) pass; the ``admin`` role, and users and
applications holding it, are acted on by administrators only. Names that resolve to nothing are
left to the handler (404/400), and messages never name an id the caller did not send.

Why a single pre-handler step instead of checks inside each operation: the rule is the same for
every procedure, so it can be stated, documented and tested once (the generated authorization
matrix replays it for every mutation naming a principal, role or team).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Level
from checkstack_core.errors import Forbidden, NotFound

from ..models import (
    ADMIN_ROLE,
    ANONYMOUS_ROLE,
    USERS_ROLE,
    Application,
    ApplicationRole,
    ResourceGrant,
    Team,
    TeamApplication,
    TeamUser,
    User,
    UserRole,
)
from .common import is_superior, known_rules, missing_rules
from .roles import resolve_role, role_rules

#: A resource grant: (resource type, resource id, level).
Grant = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Named:
    """What one procedure input names, by kind (ids as sent; roles by id or name)."""

    users: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    #: Roles given to a user or an application.
    given_roles: tuple[str, ...] = ()
    #: Roles changed or deleted.
    roles: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    #: Access rules put into a role.
    rules: tuple[str, ...] = ()
    #: Resource grants given to a team.
    grants: tuple[Grant, ...] = ()


def _listed(value: Any) -> tuple[str, ...]:
    """A list field of the input, or nothing when it was left out (msgspec ``UNSET``)."""
    return () if value is UNSET or value is None else tuple(value)


def _one(value: Any) -> tuple[str, ...]:
    return () if value is UNSET or value is None else (value,)


def _member(i: Any) -> Named:
    return Named(teams=(i.id,), users=_one(i.user_id), applications=_one(i.application_id))


#: What each mutation's input names. Every mutation of the auth contract is here or in
#: :data:`UNTARGETED` (a test checks it), so a new procedure cannot forget the rule.
TARGETS: dict[str, Callable[[Any], Named]] = {
    "createUser": lambda i: Named(given_roles=_listed(i.roles)),
    "setUserRoles": lambda i: Named(users=(i.id,), given_roles=_listed(i.roles)),
    "setUserPassword": lambda i: Named(users=(i.id,)),
    "revokeUserSessions": lambda i: Named(users=(i.id,)),
    "deleteUser": lambda i: Named(users=(i.id,)),
    "createRole": lambda i: Named(rules=_listed(i.rules)),
    "updateRole": lambda i: Named(roles=(i.id,), rules=_listed(i.rules)),
    "deleteRole": lambda i: Named(roles=(i.id,)),
    "createApplication": lambda i: Named(given_roles=_listed(i.roles), teams=_listed(i.teams)),
    "updateApplication": lambda i: Named(
        applications=(i.id,), given_roles=_listed(i.roles), teams=_listed(i.teams)
    ),
    "regenerateApplicationSecret": lambda i: Named(applications=(i.id,)),
    "deleteApplication": lambda i: Named(applications=(i.id,)),
    "updateTeam": lambda i: Named(teams=(i.id,)),
    "deleteTeam": lambda i: Named(teams=(i.id,)),
    "addTeamMember": _member,
    "removeTeamMember": _member,
    "addTeamManager": lambda i: Named(teams=(i.id,), users=(i.user_id,)),
    "removeTeamManager": lambda i: Named(teams=(i.id,), users=(i.user_id,)),
    "grantTeamAccess": lambda i: Named(
        teams=(i.team_id,), grants=((i.resource_type, i.resource_id, i.level),)
    ),
    "revokeTeamAccess": lambda i: Named(teams=(i.team_id,)),
}

#: Mutations that name nobody else: one's own session or password, a new empty team, and a
#: resource's team-only flag (which names a resource, not a team).
UNTARGETED = frozenset(
    {
        "completeOnboarding",
        "login",
        "logout",
        "changePassword",
        "revokeSession",
        "createTeam",
        "setTeamOnly",
    }
)


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a user or an application holds: its rules, whether it is an administrator, and the
    grants of its teams."""

    is_admin: bool
    rules: frozenset[str]
    grants: frozenset[Grant]


async def authorize(ctx: Context, procedure: str, input: Any) -> None:
    """FORBIDDEN unless the caller holds at least what ``procedure``'s ``input`` names."""
    extract = TARGETS.get(procedure)
    if extract is None or is_superior(ctx.principal):
        return
    named = extract(input)
    session = ctx.session
    for ref in dict.fromkeys(named.roles):
        await _check_role(ctx, ref, giving=False)
    _check_rules(ctx, named.rules)
    for ref in dict.fromkeys(named.given_roles):
        await _check_role(ctx, ref, giving=True)
    for kind, ids in (("user", named.users), ("application", named.applications)):
        for target_id in dict.fromkeys(ids):
            held = await principal_holdings(session, kind, target_id)
            if held is not None:
                await _check_principal(ctx, f"{kind} {target_id}", held)
    for team_id in dict.fromkeys(named.teams):
        await check_team(ctx, team_id)
    lacking = await lacking_grants(
        ctx, [g for g in named.grants if g[0] in _guarding_rules(ctx)], named=True
    )
    if lacking:
        raise Forbidden("You cannot grant access you do not hold: " + ", ".join(lacking))


async def check_team(ctx: Context, team_id: str) -> None:
    """FORBIDDEN unless the caller holds every grant of team ``team_id`` (a missing team is left
    to the caller: 404 or 400)."""
    if is_superior(ctx.principal) or await ctx.session.get(Team, team_id) is None:
        return
    lacking = await lacking_grants(ctx, await team_grants(ctx.session, [team_id]))
    if lacking:
        raise Forbidden(
            f"You cannot manage team {team_id}: it grants access you do not hold: "
            + ", ".join(lacking)
        )


def _check_rules(ctx: Context, rules: Iterable[str]) -> None:
    # Unknown rule ids are the handler's to refuse (400 naming each); only real rules are grants.
    known = known_rules(ctx)
    missing = missing_rules(ctx.principal, [r for r in rules if r in known])
    if missing:
        raise Forbidden("You cannot grant access rules you do not hold: " + ", ".join(missing))


async def _check_role(ctx: Context, ref: str, *, giving: bool) -> None:
    try:
        role = await resolve_role(ctx.session, ref)
    except NotFound:
        return  # the handler answers (400 for a role to give, 404 for one to change)
    verb = "grant" if giving else "change"
    if role.id == ADMIN_ROLE:
        raise Forbidden(f"Only administrators can {verb} the admin role")
    held = (await role_rules(ctx.session, [role.id]))[role.id]
    missing = missing_rules(ctx.principal, held)
    if missing:
        raise Forbidden(
            f"You cannot {verb} role {role.name}: it holds access rules you do not hold: "
            + ", ".join(missing)
        )


async def _check_principal(ctx: Context, label: str, held: Holdings) -> None:
    if held.is_admin:
        raise Forbidden(f"Only administrators can manage {label}: it holds the admin role")
    missing = missing_rules(ctx.principal, held.rules)
    if missing:
        raise Forbidden(
            f"You cannot manage {label}: it holds access rules you do not hold: "
            + ", ".join(missing)
        )
    lacking = await lacking_grants(ctx, held.grants)
    if lacking:
        # Its teams are not named: the caller did not send their ids.
        raise Forbidden(
            f"You cannot manage {label}: its teams grant access you do not hold: "
            + ", ".join(lacking)
        )


async def principal_holdings(session: AsyncSession, kind: str, target_id: str) -> Holdings | None:
    """What user or application ``target_id`` holds, read in the call's transaction (``None``
    when it does not exist)."""
    if kind == "user":
        owner: Any = User
        link: Any = UserRole
        team_link: Any = TeamUser
        column = "user_id"
        implicit = [USERS_ROLE, ANONYMOUS_ROLE]
    else:
        owner, link, team_link = Application, ApplicationRole, TeamApplication
        column = "application_id"
        implicit = [ANONYMOUS_ROLE]
    found = await session.exec(select(owner.id).where(owner.id == target_id))
    if found.first() is None:
        return None
    roles = list(await session.exec(select(link.role_id).where(getattr(link, column) == target_id)))
    teams = list(
        await session.exec(select(team_link.team_id).where(getattr(team_link, column) == target_id))
    )
    rules = await role_rules(session, [*roles, *implicit])
    return Holdings(
        is_admin=ADMIN_ROLE in roles,
        rules=frozenset().union(*rules.values()),
        grants=frozenset(await team_grants(session, teams)),
    )


async def team_grants(session: AsyncSession, team_ids: list[str]) -> list[Grant]:
    if not team_ids:
        return []
    rows = await session.exec(
        select(ResourceGrant.resource_type, ResourceGrant.resource_id, ResourceGrant.level).where(
            col(ResourceGrant.team_id).in_(team_ids)
        )
    )
    return [(str(t), str(r), str(level)) for t, r, level in rows]


def _guarding_rules(ctx: Context) -> dict[str, dict[str, list[str]]]:
    """resource type → level → qualified rules that admit to it globally, from every contract."""
    guarding: dict[str, dict[str, list[str]]] = {}
    for record in ctx.host.active():
        contract = record.contract
        if contract is None:
            continue
        pairs = [(rule, rule.instance) for rule in contract.rules]
        pairs += [(rule, p.instance_access(rule)) for p in contract.procedures for rule in p.rules]
        for rule, instance in pairs:
            if instance is None:
                continue
            levels = guarding.setdefault(instance.resource_type, {})
            rules = levels.setdefault(str(rule.level), [])
            qualified = rule.qualified_id(record.id)
            if qualified not in rules:
                rules.append(qualified)
    return guarding


async def lacking_grants(
    ctx: Context, grants: Iterable[Grant], *, named: bool = False
) -> list[str]:
    """The grants among ``grants`` the caller does not hold itself (through a global rule, where
    the resource is not team-only, or a grant of one of its own teams), described without the
    resource id unless ``named`` (the caller sent it)."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for resource_type, resource_id, level in grants:
        wanted.setdefault((resource_type, level), []).append(resource_id)
    if not wanted:
        return []
    guarding = _guarding_rules(ctx)
    lacking: list[str] = []
    for (resource_type, level), ids in sorted(wanted.items()):
        candidates = guarding.get(resource_type, {}).get(level, [])
        held = [rule for rule in candidates if ctx.principal.holds(rule)]
        # With no rule guarding the type (its plugin is gone), only the caller's teams admit.
        rule_id = (held or candidates or [f"{resource_type}.{level}"])[0]
        admitted = await ctx.admitted_ids(resource_type, ids, Level(level), rule_id=rule_id)
        for resource_id in dict.fromkeys(ids):
            if resource_id not in admitted:
                where = f"{resource_type} {resource_id}" if named else resource_type
                lacking.append(f"{where} ({level})")
    return list(dict.fromkeys(lacking))


__all__ = [
    "TARGETS",
    "UNTARGETED",
    "Holdings",
    "Named",
    "authorize",
    "lacking_grants",
    "principal_holdings",
    "team_grants",
]
