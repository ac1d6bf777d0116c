"""Login sessions: login and logout, the session cookie, the current user, one's own sessions and
password."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from checkstack_core import Context, Principal, PrincipalKind
from checkstack_core.context import Cookie
from checkstack_core.errors import Forbidden, NotFound, RpcError, Unauthorized

from .. import passwords
from ..backend import DatabaseAuthBackend, Facts
from ..contract import SESSION_COOKIE, CurrentUser, SessionInfo
from ..models import USERS_ROLE, LoginSession, User, utcnow
from ..tokens import SESSION_PREFIX, format_token, new_id, new_secret, parse_token
from . import throttle
from .common import digester, get_user, known_rules
from .users import end_sessions

DEFAULT_SESSION_DAYS = 7


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
    if ctx.request is None or ctx.principal.kind is not PrincipalKind.USER:
        return None
    if ctx.request.authorization:
        return None
    parsed = parse_token(ctx.request.cookies.get(SESSION_COOKIE, ""), SESSION_PREFIX)
    return parsed.id if parsed else None


async def _guess(
    ctx: Context, email: str, password: str, user: User | None, wrong: RpcError
) -> str | None:
    """One guess at an account's password, counted by the login throttle (:mod:`.throttle`).

    Every way of trying a password (logging in, changing one's password with the current one)
    shares the account's and the address's counters, so switching procedures buys an attacker
    no extra guesses. Raises ``wrong`` (after counting it) unless the guess is right; returns
    the hash to store when the password's hash parameters changed.
    """
    counters = throttle.keys(ctx, email, ctx.request.client_host if ctx.request else None)
    limits = throttle.limits(ctx)
    await throttle.check(ctx, counters, limits)
    valid, new_hash = await passwords.verify_password(
        password, user.password_hash if user else None
    )
    if user is None or not valid:
        # This call (and its batch) fails and rolls back anyway: end its transaction now, then
        # count the failure in a transaction of its own on the same connection (a call never
        # holds a second one), committed so the dispatcher's rollback cannot undo it.
        await ctx.session.rollback()
        await throttle.record_failure(ctx.session, counters, limits.window)
        raise wrong
    await throttle.clear_account(ctx, counters)
    return new_hash


async def login(ctx: Context, email: str, password: str) -> User:
    """Check email and password (throttled: :mod:`.throttle`) and open a session."""
    address = email.strip().lower()
    found = await ctx.session.exec(select(User).where(User.email == address))
    user = found.first()
    new_hash = await _guess(ctx, address, password, user, Unauthorized("Invalid email or password"))
    assert user is not None  # a guess at an unknown account is always wrong
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
    """Replace the caller's password; the current one is a guess like a login's (throttled),
    so a stolen session cannot be used to try passwords without limit."""
    user = await get_user(ctx.session, ctx.principal.id or "")
    await _guess(ctx, user.email, current, user, Forbidden("The current password is wrong"))
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
