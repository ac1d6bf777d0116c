"""Login throttling: failed logins counted per account and per client address, in the database.

Every ``login`` call is one attempt, whether it came alone or as an item of a batch. Before the
password is even looked at (argon2 is the expensive part), :func:`check` reads the two counters;
when either reached its limit within the current window the attempt answers ``429
TOO_MANY_REQUESTS`` with ``Retry-After`` (seconds until the window ends), the right password
included. A failure is added by :func:`record_failure` in its own short transaction, because the
failing call's transaction rolls back; one atomic upsert per counter (``INSERT ... ON CONFLICT DO
UPDATE``) keeps concurrent failures from being lost, in one process or many. A successful login
clears its account's counter (not its address's: an attacker's own account must not reset it).

The window is fixed: it starts with the first failure and lasts ``login_window_minutes``; a failure
after it has passed starts a new one. Concurrent attempts already past :func:`check` when the limit
is reached still finish, so a burst can exceed the limit by at most the number of attempts in
flight at that moment.

Settings (``[plugins.auth]`` in ``checkstack.toml``, each overridden by its environment variable):
``login_max_failures`` (``CHECKSTACK_LOGIN_MAX_FAILURES``, default 10 per account),
``login_max_failures_per_address`` (``CHECKSTACK_LOGIN_MAX_FAILURES_PER_ADDRESS``, default 50)
and ``login_window_minutes`` (``CHECKSTACK_LOGIN_WINDOW_MINUTES``, default 15).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core import Context
from checkstack_core.db import conflict_insert, utcnow
from checkstack_core.errors import TooManyRequests

from ..models import LoginThrottle
from ..tokens import Digester

ACCOUNT = "account"
ADDRESS = "address"
DEFAULT_PER_ACCOUNT = 10
DEFAULT_PER_ADDRESS = 50
DEFAULT_WINDOW_MINUTES = 15

_table: sa.Table = LoginThrottle.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Limits:
    """How many failures an account and an address may have within one window."""

    per_account: int = DEFAULT_PER_ACCOUNT
    per_address: int = DEFAULT_PER_ADDRESS
    window: timedelta = timedelta(minutes=DEFAULT_WINDOW_MINUTES)

    @classmethod
    def read(cls, plugin_settings: Mapping[str, Any], env: Mapping[str, str]) -> Limits:
        """From ``[plugins.auth]``, with ``CHECKSTACK_LOGIN_*`` environment variables on top (the
        core's precedence: environment > file > default). Non-positive values are refused."""

        def number(name: str, default: float) -> float:
            raw = env.get(f"CHECKSTACK_{name.upper()}", plugin_settings.get(name, default))
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"Setting {name} must be a number, not {raw!r}") from None
            if value <= 0:
                raise ValueError(f"Setting {name} must be positive, not {raw!r}")
            return value

        return cls(
            per_account=int(number("login_max_failures", DEFAULT_PER_ACCOUNT)),
            per_address=int(number("login_max_failures_per_address", DEFAULT_PER_ADDRESS)),
            window=timedelta(minutes=number("login_window_minutes", DEFAULT_WINDOW_MINUTES)),
        )

    def limit(self, scope: str) -> int:
        return self.per_account if scope == ACCOUNT else self.per_address


def limits(ctx: Context) -> Limits:
    """The limits in force (read on every attempt, so a changed setting applies at once)."""
    return Limits.read(ctx.host.settings.plugin("auth"), os.environ)


def keys(ctx: Context, email: str, address: str | None) -> list[tuple[str, str]]:
    """(scope, key) of the counters an attempt counts against: digests, so the table stores
    neither the email addresses people typed nor, without the server key, their IPs."""
    digester = Digester(ctx.host.settings.secret_key)
    found = [(ACCOUNT, digester.digest(f"{ACCOUNT}:{email}"))]
    if address:
        found.append((ADDRESS, digester.digest(f"{ADDRESS}:{address}")))
    return found


async def check(ctx: Context, counters: list[tuple[str, str]], rules: Limits) -> None:
    """TOO_MANY_REQUESTS (with ``Retry-After``) while any counter is at its limit."""
    now = utcnow()
    rows = await ctx.session.exec(
        select(_table.c.scope, _table.c.window_start, _table.c.failures).where(
            sa.or_(*((_table.c.scope == s) & (_table.c.key == k) for s, k in counters)),
            _table.c.window_start > now - rules.window,
        )
    )
    wait = 0.0
    for scope, window_start, failures in rows.all():
        if failures >= rules.limit(scope):
            wait = max(wait, (window_start + rules.window - now).total_seconds())
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"Too many failed logins: try again in {seconds} seconds",
            headers={"retry-after": str(seconds)},
        )


async def record_failure(
    session: AsyncSession, counters: list[tuple[str, str]], window: timedelta
) -> None:
    """Count one failure against every counter in a transaction of ``session`` (committed)."""
    now = utcnow()
    cutoff = now - window
    dialect = session.get_bind().dialect.name
    for scope, key in counters:
        statement = conflict_insert(dialect, _table).values(
            scope=scope, key=key, window_start=now, failures=1
        )
        expired = _table.c.window_start <= cutoff
        statement = statement.on_conflict_do_update(
            index_elements=[_table.c.scope, _table.c.key],
            set_={
                "failures": sa.case((expired, 1), else_=_table.c.failures + 1),
                "window_start": sa.case(
                    (expired, statement.excluded.window_start), else_=_table.c.window_start
                ),
            },
        )
        await session.exec(statement)
    # Windows that have passed hold nothing worth keeping (indexed on window_start).
    await session.exec(sa.delete(_table).where(_table.c.window_start <= cutoff))
    await session.commit()


async def clear_account(ctx: Context, counters: list[tuple[str, str]]) -> None:
    """A successful login forgets its account's failures (in the call's transaction)."""
    for scope, key in counters:
        if scope == ACCOUNT:
            await ctx.session.exec(
                sa.delete(_table).where(_table.c.scope == scope, _table.c.key == key)
            )


__all__ = ["Limits", "check", "clear_account", "keys", "limits", "record_failure"]
