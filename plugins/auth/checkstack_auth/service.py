"""Domain logic of the auth plugin: users, sessions, roles, applications, teams and grants.

Every function takes the :class:`~checkstack_core.context.Context` of the call (its transaction and
its principal). Handlers and the CLI share these functions; the CLI acts as the auth plugin itself
(a service principal, which holds every rule), so the same guards apply to everyone else.

Escalation guards: nobody grants what they do not hold. Adding a rule to a role needs the rule;
giving a role to a user or an application needs every rule of that role; only administrators give
or take the ``admin`` role; nobody removes their own admin role, and the last administrator stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context, Principal, PrincipalKind
from checkstack_core.context import Cookie
from checkstack_core.errors import Conflict, Forbidden, NotFound, Unauthorized, validation_error

from . import passwords
from .backend import DatabaseAuthBackend, Facts
from .contract import (
    SESSION_COOKIE,
    TEAMS_MANAGE,
    ApplicationInfo,
    CurrentUser,
    ResourceAccessInfo,
    ResourceGrantInfo,
    RoleInfo,
    RuleInfo,
    SessionInfo,
    TeamDetail,
    TeamGrant,
    TeamInfo,
    TeamManagerInfo,
    TeamMember,
    UserInfo,
)
from .models import (
    ADMIN_ROLE,
    ANONYMOUS_ROLE,
    APPLICATIONS_ROLE,
    IMPLICIT_ROLES,
    USERS_ROLE,
    Application,
    ApplicationRole,
    AuthMeta,
    LoginSession,
    RemovedDefaultRule,
    ResourceGrant,
    ResourceSettings,
    Role,
    RoleRule,
    Team,
    TeamApplication,
    TeamManager,
    TeamUser,
    User,
    UserRole,
    utcnow,
)
from .tokens import API_KEY_PREFIX, SESSION_PREFIX, Digester, format_token, new_id, new_secret

DEFAULT_SESSION_DAYS = 7


# -- helpers ---------------------------------------------------------------------------------------


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


def _missing_rules(principal: Principal, rules: Iterable[str]) -> list[str]:
    return sorted(rule for rule in set(rules) if not principal.holds(rule))


async def _lock(session: AsyncSession) -> None:
    """Serialize with other writers of what must not race (onboarding, rule sync)."""
    await session.exec(
        sa.update(AuthMeta)
        .where(col(AuthMeta.id) == 1)
        .values(lock_counter=AuthMeta.lock_counter + 1)
    )


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# -- roles -----------------------------------------------------------------------------------------


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


async def check_role_grants(
    ctx: Context, role_ids: Iterable[str], *, path: str = "roles"
) -> list[Role]:
    """Resolve roles to assign and make sure the caller may give each of them."""
    roles: list[Role] = []
    issues = []
    for index, ref in enumerate(_dedupe(role_ids)):
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
        roles.append(role)
    if issues:
        raise validation_error(issues)
    return roles


async def assert_may_give(ctx: Context, roles: Sequence[Role]) -> None:
    """FORBIDDEN unless the caller holds every rule of every role in ``roles``."""
    principal = ctx.principal
    if is_superior(principal):
        return
    for role in roles:
        if role.id == ADMIN_ROLE:
            raise Forbidden("Only administrators can grant the admin role")
    held = await role_rules(ctx.session, [r.id for r in roles])
    for role in roles:
        missing = _missing_rules(principal, held[role.id])
        if missing:
            raise Forbidden(
                f"You cannot grant role {role.name}: it holds access rules you do not hold: "
                + ", ".join(missing)
            )


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


async def list_roles(ctx: Context) -> list[RoleInfo]:
    roles = list(await ctx.session.exec(select(Role).order_by(col(Role.system).desc(), Role.name)))
    rules = await role_rules(ctx.session, [r.id for r in roles])
    return [await role_info(ctx, role, rules[role.id]) for role in roles]


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
    return _dedupe(rules)


async def _name_free(session: AsyncSession, model: Any, name: str, own_id: str | None) -> None:
    found = await session.exec(select(model).where(sa.func.lower(model.name) == name.lower()))
    other = found.first()
    if other is not None and other.id != own_id:
        kind = "role" if model is Role else "team"
        raise Conflict(f"A {kind} named {name} already exists")


async def create_role(ctx: Context, name: str, description: str, rules: Sequence[str]) -> RoleInfo:
    wanted = _check_rule_ids(ctx, rules)
    missing = _missing_rules(ctx.principal, wanted)
    if missing:
        raise Forbidden("You cannot grant access rules you do not hold: " + ", ".join(missing))
    await _name_free(ctx.session, Role, name, None)
    role = Role(id=new_id(), name=name, description=description)
    ctx.session.add(role)
    await ctx.session.flush()
    for rule in wanted:
        ctx.session.add(RoleRule(role_id=role.id, rule_id=rule))
    await ctx.session.flush()
    return await role_info(ctx, role, set(wanted))


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
    if name is not None and name != role.name:
        await _name_free(session, Role, name, role.id)
        role.name = name
    if description is not None:
        role.description = description
    session.add(role)
    current = (await role_rules(session, [role.id]))[role.id]
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
        missing = _missing_rules(ctx.principal, added)
        if missing:
            raise Forbidden("You cannot grant access rules you do not hold: " + ", ".join(missing))
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
    return await role_info(ctx, role, current)


async def delete_role(ctx: Context, role_id: str) -> None:
    role = await ctx.session.get(Role, role_id)
    if role is None:
        raise NotFound(f"Role not found: {role_id}")
    if role.system:
        raise Forbidden("Cannot delete system role")
    await ctx.session.delete(role)
    await ctx.session.flush()


async def sync_rules(ctx: Context) -> None:
    """Startup: put ``default`` rules into ``users`` and ``public`` ones into ``anonymous`` (unless
    an administrator removed them), and drop rules of uninstalled plugins from every role.

    Rules of plugins that are installed but disabled or failing are kept, so a plugin that fails
    once does not lose its place in custom roles.
    """
    session = ctx.session
    await _lock(session)
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


# -- users and sessions ----------------------------------------------------------------------------


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


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User not found: {user_id}")
    return user


async def list_users(ctx: Context) -> list[UserInfo]:
    users = list(await ctx.session.exec(select(User).order_by(User.email)))
    roles = await user_roles(ctx.session, [u.id for u in users])
    return [_user_info(u, roles[u.id]) for u in users]


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
    check_grants: bool = True,
) -> User:
    """A new user with a policy-checked password; CONFLICT when the email is taken."""
    address = passwords.normalize_email(email)
    passwords.check_password(password, email=address)
    wanted = await check_role_grants(ctx, roles)
    if check_grants:
        await assert_may_give(ctx, wanted)
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
    return user


async def complete_onboarding(ctx: Context, email: str, password: str, name: str) -> User:
    """Create the first administrator; FORBIDDEN once any user exists."""
    await _lock(ctx.session)
    if await count_users(ctx.session) > 0:
        raise Forbidden("Onboarding has already been completed")
    return await create_user(
        ctx, email, password, name=name, roles=[ADMIN_ROLE], check_grants=False
    )


async def set_user_roles(ctx: Context, user_id: str, roles: Sequence[str]) -> User:
    session = ctx.session
    principal = ctx.principal
    user = await get_user(session, user_id)
    wanted = await check_role_grants(ctx, roles)
    wanted_ids = {r.id for r in wanted}
    current = set((await user_roles(session, [user.id]))[user.id])
    added = [r for r in wanted if r.id not in current]
    removed = current - wanted_ids
    await assert_may_give(ctx, added)
    if ADMIN_ROLE in removed:
        if principal.kind is PrincipalKind.USER and principal.id == user.id:
            raise Forbidden("You cannot remove your own admin role")
        if not is_superior(principal):
            raise Forbidden("Only administrators can remove the admin role")
        if await count_admins(session) <= 1:
            raise Forbidden("Cannot remove the admin role from the last administrator")
    if removed:
        await session.exec(
            sa.delete(UserRole).where(
                col(UserRole.user_id) == user.id, col(UserRole.role_id).in_(removed)
            )
        )
    for role in added:
        session.add(UserRole(user_id=user.id, role_id=role.id))
    await session.flush()
    return user


async def end_sessions(session: AsyncSession, user_id: str, *, keep: str | None = None) -> None:
    statement = sa.delete(LoginSession).where(col(LoginSession.user_id) == user_id)
    if keep is not None:
        statement = statement.where(col(LoginSession.id) != keep)
    await session.exec(statement)


async def set_user_password(ctx: Context, user_id: str, password: str) -> None:
    user = await get_user(ctx.session, user_id)
    roles = (await user_roles(ctx.session, [user.id]))[user.id]
    if ADMIN_ROLE in roles and not is_superior(ctx.principal):
        raise Forbidden("Only administrators can set an administrator's password")
    passwords.check_password(password, email=user.email)
    user.password_hash = await passwords.hash_password(password)
    user.updated_at = utcnow()
    ctx.session.add(user)
    await end_sessions(ctx.session, user.id)
    await ctx.session.flush()


async def revoke_user_sessions(ctx: Context, user_id: str) -> None:
    user = await get_user(ctx.session, user_id)
    roles = (await user_roles(ctx.session, [user.id]))[user.id]
    if ADMIN_ROLE in roles and not is_superior(ctx.principal):
        raise Forbidden("Only administrators can end an administrator's sessions")
    await end_sessions(ctx.session, user.id)


async def delete_user(ctx: Context, user_id: str) -> None:
    session = ctx.session
    principal = ctx.principal
    user = await get_user(session, user_id)
    if principal.kind is PrincipalKind.USER and principal.id == user.id:
        raise Forbidden("You cannot delete yourself")
    roles = (await user_roles(session, [user.id]))[user.id]
    if ADMIN_ROLE in roles:
        if not is_superior(principal):
            raise Forbidden("Only administrators can delete administrators")
        if await count_admins(session) <= 1:
            raise Forbidden("Cannot delete the last administrator")
    await session.delete(user)
    await session.flush()


def session_days(ctx: Context) -> float:
    return float(ctx.host.settings.plugin("auth").get("session_days", DEFAULT_SESSION_DAYS))


def _secure(ctx: Context) -> bool:
    base_url = ctx.host.settings.base_url or ""
    return bool(ctx.request and ctx.request.secure) or base_url.lower().startswith("https://")


async def open_session(ctx: Context, user: User) -> None:
    """Start a session for ``user`` and ask for the cookie carrying its token."""
    lifetime = timedelta(days=session_days(ctx))
    secret = new_secret()
    row = LoginSession(
        id=new_id(),
        user_id=user.id,
        secret_digest=digester(ctx).digest(secret),
        user_agent=(ctx.request.headers.get("user-agent", "") if ctx.request else "")[:256],
        expires_at=utcnow() + lifetime,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    ctx.response.cookies.append(
        Cookie(
            name=SESSION_COOKIE,
            value=format_token(SESSION_PREFIX, row.id, secret),
            max_age=int(lifetime.total_seconds()),
            http_only=True,
            same_site="lax",
            secure=_secure(ctx),
        )
    )


def clear_session_cookie(ctx: Context) -> None:
    ctx.response.cookies.append(
        Cookie(name=SESSION_COOKIE, value="", max_age=0, secure=_secure(ctx))
    )


def current_session_id(ctx: Context) -> str | None:
    """The id of the session the current request came with (if it came with one)."""
    from .tokens import parse_token

    if ctx.request is None or ctx.principal.kind is not PrincipalKind.USER:
        return None
    if ctx.request.authorization:
        return None
    parsed = parse_token(ctx.request.cookies.get(SESSION_COOKIE, ""), SESSION_PREFIX)
    return parsed.id if parsed else None


async def login(ctx: Context, email: str, password: str) -> User:
    address = email.strip().lower()
    found = await ctx.session.exec(select(User).where(User.email == address))
    user = found.first()
    valid, new_hash = await passwords.verify_password(
        password, user.password_hash if user else None
    )
    if user is None or not valid:
        raise Unauthorized("Invalid email or password")
    if new_hash is not None:
        user.password_hash = new_hash
        ctx.session.add(user)
    await open_session(ctx, user)
    return user


async def logout(ctx: Context) -> None:
    session_id = current_session_id(ctx)
    if session_id is not None:
        await ctx.session.exec(sa.delete(LoginSession).where(col(LoginSession.id) == session_id))
    clear_session_cookie(ctx)


async def current_user(ctx: Context, user_id: str) -> CurrentUser:
    resolved = await DatabaseAuthBackend.user_principal(ctx.session, user_id)
    if resolved is None:
        raise NotFound(f"User not found: {user_id}")
    principal, facts = resolved
    user = await get_user(ctx.session, user_id)
    return _current_user(ctx, user, principal, facts)


def _current_user(ctx: Context, user: User, principal: Principal, facts: Facts) -> CurrentUser:
    rules = sorted(known_rules(ctx)) if principal.is_admin else sorted(principal.rules)
    return CurrentUser(
        id=user.id,
        email=user.email,
        name=user.name,
        roles=sorted(facts.roles | {USERS_ROLE}),
        rules=rules,
        is_admin=principal.is_admin,
        teams=sorted(facts.teams),
    )


async def change_password(ctx: Context, current: str, new: str) -> None:
    user = await get_user(ctx.session, ctx.principal.id or "")
    valid, _ = await passwords.verify_password(current, user.password_hash)
    if not valid:
        raise Forbidden("The current password is wrong")
    passwords.check_password(new, email=user.email, field="newPassword")
    user.password_hash = await passwords.hash_password(new)
    user.updated_at = utcnow()
    ctx.session.add(user)
    await end_sessions(ctx.session, user.id, keep=current_session_id(ctx))
    await ctx.session.flush()


async def list_sessions(ctx: Context) -> list[SessionInfo]:
    now = datetime.now(UTC)
    current = current_session_id(ctx)
    rows = await ctx.session.exec(
        select(LoginSession)
        .where(LoginSession.user_id == ctx.principal.id)
        .order_by(col(LoginSession.created_at).desc())
    )
    return [
        SessionInfo(
            id=row.id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            user_agent=row.user_agent,
            current=row.id == current,
        )
        for row in rows
        if row.expires_at > now
    ]


async def revoke_session(ctx: Context, session_id: str) -> None:
    row = await ctx.session.get(LoginSession, session_id)
    if row is None or row.user_id != ctx.principal.id:
        raise NotFound(f"Session not found: {session_id}")
    await ctx.session.delete(row)
    if session_id == current_session_id(ctx):
        clear_session_cookie(ctx)
    await ctx.session.flush()


# -- applications ----------------------------------------------------------------------------------


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


async def list_applications(ctx: Context) -> list[ApplicationInfo]:
    apps = list(
        await ctx.session.exec(select(Application).order_by(Application.name, Application.id))
    )
    roles, teams = await _application_links(ctx.session, [a.id for a in apps])
    return [_application_info(a, roles[a.id], teams[a.id]) for a in apps]


async def application_info(ctx: Context, app: Application) -> ApplicationInfo:
    roles, teams = await _application_links(ctx.session, [app.id])
    return _application_info(app, roles[app.id], teams[app.id])


async def get_application(session: AsyncSession, app_id: str) -> Application:
    app = await session.get(Application, app_id)
    if app is None:
        raise NotFound(f"Application not found: {app_id}")
    return app


def _check_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise validation_error(
            [{"message": "expiresAt needs a time zone (e.g. a trailing Z)", "path": ["expiresAt"]}]
        )
    return expires_at.astimezone(UTC)


async def _resolve_teams(ctx: Context, team_ids: Sequence[str]) -> list[Team]:
    teams = []
    issues = []
    for index, team_id in enumerate(_dedupe(team_ids)):
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


async def _assert_membership_rights(ctx: Context, team_ids: Iterable[str]) -> None:
    for team_id in team_ids:
        if not await may_manage_membership(ctx, team_id):
            raise Forbidden(f"You cannot change the membership of team {team_id}")


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
    wanted = await check_role_grants(ctx, [APPLICATIONS_ROLE, *roles])
    await assert_may_give(ctx, wanted)
    joined = await _resolve_teams(ctx, teams)
    await _assert_membership_rights(ctx, [t.id for t in joined])
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
    return await application_info(ctx, app), format_token(API_KEY_PREFIX, app.id, secret)


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
    if name is not None:
        app.name = name
    if description is not None:
        app.description = description
    if change_expiry:
        app.expires_at = _check_expiry(expires_at)
    if roles is not None:
        wanted = await check_role_grants(ctx, roles)
        wanted_ids = {r.id for r in wanted}
        removed = set(current_roles[app.id]) - wanted_ids
        await assert_may_give(ctx, [r for r in wanted if r.id not in current_roles[app.id]])
        if ADMIN_ROLE in removed and not is_superior(ctx.principal):
            raise Forbidden("Only administrators can remove the admin role")
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
    if teams is not None:
        joined = {t.id for t in await _resolve_teams(ctx, teams)}
        had = set(current_teams[app.id])
        await _assert_membership_rights(ctx, sorted(joined ^ had))
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
    return await application_info(ctx, app)


async def regenerate_secret(ctx: Context, app_id: str) -> str:
    app = await get_application(ctx.session, app_id)
    secret = new_secret()
    app.secret_digest = digester(ctx).digest(secret)
    app.updated_at = utcnow()
    ctx.session.add(app)
    await ctx.session.flush()
    return format_token(API_KEY_PREFIX, app.id, secret)


async def delete_application(ctx: Context, app_id: str) -> None:
    app = await get_application(ctx.session, app_id)
    await ctx.session.delete(app)
    await ctx.session.flush()


# -- teams -----------------------------------------------------------------------------------------


async def get_team(session: AsyncSession, team_id: str) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound(f"Team not found: {team_id}")
    return team


async def _managed_by(ctx: Context) -> set[str]:
    principal = ctx.principal
    if principal.kind is not PrincipalKind.USER:
        return set()
    rows = await ctx.session.exec(
        select(TeamManager.team_id).where(TeamManager.user_id == principal.id)
    )
    return set(rows)


async def list_teams(ctx: Context) -> list[TeamInfo]:
    session = ctx.session
    teams = list(await session.exec(select(Team).order_by(Team.name)))
    counts: dict[str, int] = {}
    for team_column in (col(TeamUser.team_id), col(TeamApplication.team_id)):
        statement = select(team_column, sa.func.count()).group_by(team_column)
        for team_id, count in (await session.exec(statement)).all():
            counts[team_id] = counts.get(team_id, 0) + int(count)
    managed = await _managed_by(ctx)
    return [
        TeamInfo(
            id=t.id,
            name=t.name,
            description=t.description,
            member_count=counts.get(t.id, 0),
            is_manager=t.id in managed,
        )
        for t in teams
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
    await _name_free(ctx.session, Team, name, None)
    team = Team(id=new_id(), name=name, description=description)
    ctx.session.add(team)
    await ctx.session.flush()
    return team


async def update_team(
    ctx: Context, team_id: str, *, name: str | None = None, description: str | None = None
) -> Team:
    team = await get_team(ctx.session, team_id)
    if name is not None and name != team.name:
        await _name_free(ctx.session, Team, name, team.id)
        team.name = name
    if description is not None:
        team.description = description
    team.updated_at = utcnow()
    ctx.session.add(team)
    await ctx.session.flush()
    return team


async def delete_team(ctx: Context, team_id: str) -> None:
    team = await get_team(ctx.session, team_id)
    await ctx.session.delete(team)
    await ctx.session.flush()


async def change_member(
    ctx: Context, team_id: str, user_id: str | None, application_id: str | None, *, add: bool
) -> None:
    """Add or remove one member (a user or an application)."""
    if (user_id is None) == (application_id is None):
        raise validation_error(
            [{"message": "Name exactly one of userId and applicationId", "path": []}]
        )
    session = ctx.session
    await get_team(session, team_id)
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
    await session.flush()


async def change_manager(ctx: Context, team_id: str, user_id: str, *, add: bool) -> None:
    session = ctx.session
    await get_team(session, team_id)
    await get_user(session, user_id)
    existing = await session.get(TeamManager, (team_id, user_id))
    if add and existing is None:
        session.add(TeamManager(team_id=team_id, user_id=user_id))
    elif not add and existing is not None:
        await session.delete(existing)
    await session.flush()


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


async def grant(
    ctx: Context, team_id: str, resource_type: str, resource_id: str, level: str
) -> ResourceAccessInfo:
    _check_resource_type(ctx, resource_type)
    await get_team(ctx.session, team_id)
    row = await ctx.session.get(ResourceGrant, (resource_type, resource_id, team_id))
    if row is None:
        row = ResourceGrant(
            resource_type=resource_type, resource_id=resource_id, team_id=team_id, level=level
        )
    row.level = level
    ctx.session.add(row)
    await ctx.session.flush()
    return await resource_access(ctx, resource_type, resource_id)


async def revoke(
    ctx: Context, team_id: str, resource_type: str, resource_id: str
) -> ResourceAccessInfo:
    await ctx.session.exec(
        sa.delete(ResourceGrant).where(
            col(ResourceGrant.resource_type) == resource_type,
            col(ResourceGrant.resource_id) == resource_id,
            col(ResourceGrant.team_id) == team_id,
        )
    )
    return await resource_access(ctx, resource_type, resource_id)


async def set_team_only(
    ctx: Context, resource_type: str, resource_id: str, team_only: bool
) -> ResourceAccessInfo:
    _check_resource_type(ctx, resource_type)
    row = await ctx.session.get(ResourceSettings, (resource_type, resource_id))
    if row is None:
        row = ResourceSettings(resource_type=resource_type, resource_id=resource_id)
    row.team_only = team_only
    ctx.session.add(row)
    await ctx.session.flush()
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
