"""Login throttling (issue 9 finding 5): failures counted per account and per client address in the
database, per attempt, surviving the failed call's rollback."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from checkstack_auth import passwords
from checkstack_auth.models import LoginThrottle
from checkstack_auth.service import throttle
from sqlmodel import select

from checkstack_core.db import utcnow

from .conftest import PASSWORD

WRONG = "Wrong-pass-123"


@pytest.fixture
def limits(checkstack_host: Any) -> Any:
    """``limits(per_account=..., per_address=...)`` sets ``[plugins.auth]`` for the running host."""

    def configure(**values: Any) -> None:
        checkstack_host.settings.plugin_settings["auth"] = {
            f"login_{name}": value
            for name, value in {
                "max_failures": values.get("per_account", 10),
                "max_failures_per_address": values.get("per_address", 50),
                "window_minutes": values.get("window_minutes", 15),
            }.items()
        }

    return configure


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Passwords that reached the (expensive) verification."""
    seen: list[str] = []
    original = passwords.verify_password

    async def counting(password: str, hashed: str | None) -> tuple[bool, str | None]:
        seen.append(password)
        return await original(password, hashed)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return seen


def login(email: str, password: str) -> dict[str, Any]:
    return {"email": email, "password": password}


async def test_an_account_is_locked_after_its_failures(rpc, principals, limits, verified):
    limits(per_account=3)
    await principals.user(email="ann@example.com")
    for _ in range(3):
        wrong = await rpc("auth", "login", login("ann@example.com", WRONG))
        assert wrong.status_code == 401
    assert len(verified) == 3

    for password in (WRONG, PASSWORD):  # the right password too
        locked = await rpc("auth", "login", login(" ANN@example.com", password))
        assert locked.status_code == 429, locked.text
        body = locked.json()
        assert body["code"] == "TOO_MANY_REQUESTS"
        retry = int(locked.headers["retry-after"])
        assert 0 < retry <= 15 * 60
        assert body["message"] == f"Too many failed logins: try again in {retry} seconds"
        assert "set-cookie" not in locked.headers
    # Throttled attempts never reach argon2.
    assert len(verified) == 3

    # Other accounts from the same address are not affected below the address limit.
    await principals.user(email="bob@example.com")
    assert (await rpc("auth", "login", login("bob@example.com", PASSWORD))).status_code == 200


async def test_the_lock_ends_with_the_window_and_success_clears_it(
    rpc, principals, limits, monkeypatch
):
    limits(per_account=2, window_minutes=15)
    await principals.user(email="cy@example.com")
    for _ in range(2):
        await rpc("auth", "login", login("cy@example.com", WRONG))
    assert (await rpc("auth", "login", login("cy@example.com", PASSWORD))).status_code == 429

    later = utcnow() + timedelta(minutes=15, seconds=1)
    monkeypatch.setattr(throttle, "utcnow", lambda: later)
    assert (await rpc("auth", "login", login("cy@example.com", WRONG))).status_code == 401
    ok = await rpc("auth", "login", login("cy@example.com", PASSWORD))
    assert ok.status_code == 200
    # The success forgot the account's failures: two more are allowed again.
    for expected in (401, 401, 429):
        response = await rpc("auth", "login", login("cy@example.com", WRONG))
        assert response.status_code == expected


async def test_one_address_is_limited_across_accounts(rpc, principals, limits):
    limits(per_account=100, per_address=4)
    await principals.user(email="dee@example.com")
    for n in range(4):
        guess = await rpc("auth", "login", login(f"nobody{n}@example.com", WRONG))
        assert guess.status_code == 401
    blocked = await rpc("auth", "login", login("dee@example.com", PASSWORD))
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


async def test_a_batch_of_logins_makes_no_attempt(checkstack_http, principals, limits, verified):
    limits(per_account=3)
    await principals.user(email="eve@example.com")
    items = [
        {
            "url": "http://testserver/api/auth/login",
            "body": {"json": login("eve@example.com", WRONG)},
        }
        for _ in range(10)
    ]
    response = await checkstack_http.post(
        "/api/hello/getGreeting/__batch__", json=items, headers={"x-orpc-batch": "buffered"}
    )
    # Procedures setting cookies are refused inside batches, whole and before any item runs:
    # a batch cannot multiply guesses, and no guess was even checked.
    assert response.status_code == 400, response.text
    assert "sets cookies and cannot be batched" in response.json()["json"]["message"]
    assert verified == []


async def test_concurrent_failures_are_all_counted(rpc, principals, limits, checkstack_host):
    limits(per_account=100, per_address=100)
    await principals.user(email="fay@example.com")
    responses = await asyncio.gather(
        *(rpc("auth", "login", login("fay@example.com", WRONG)) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {401}
    async with checkstack_host.db.session() as session:
        rows = list(await session.exec(select(LoginThrottle)))
    # The calls rolled back; their failures stayed: one account row, one address row.
    assert sorted((row.scope, row.failures) for row in rows) == [
        ("account", 12),
        ("address", 12),
    ]
    assert "fay" not in " ".join(row.key for row in rows)


def test_limits_come_from_settings_and_environment():
    assert throttle.Limits.read({}, {}) == throttle.Limits()
    read = throttle.Limits.read(
        {"login_max_failures": 5, "login_window_minutes": 1},
        {"CHECKSTACK_LOGIN_MAX_FAILURES": "7", "CHECKSTACK_LOGIN_MAX_FAILURES_PER_ADDRESS": "9"},
    )
    assert read == throttle.Limits(per_account=7, per_address=9, window=timedelta(minutes=1))
    with pytest.raises(ValueError, match="login_max_failures must be positive"):
        throttle.Limits.read({"login_max_failures": 0}, {})
    with pytest.raises(ValueError, match="must be a number"):
        throttle.Limits.read({}, {"CHECKSTACK_LOGIN_WINDOW_MINUTES": "soon"})


async def test_a_window_ends_to_the_instant_and_passed_windows_are_purged(
    rpc, principals, limits, monkeypatch, checkstack_host
):
    limits(per_account=2, per_address=100, window_minutes=15)
    window = timedelta(minutes=15)
    start = utcnow()
    clock = [start]
    monkeypatch.setattr(throttle, "utcnow", lambda: clock[0])

    async def counted() -> list[tuple[str, int, Any]]:
        async with checkstack_host.db.session() as session:
            rows = await session.exec(select(LoginThrottle).order_by(LoginThrottle.scope))
            return [(row.scope, row.failures, row.window_start) for row in rows]

    await principals.user(email="gil@example.com")
    for _ in range(2):
        assert (await rpc("auth", "login", login("gil@example.com", WRONG))).status_code == 401
    clock[0] = start + window - timedelta(microseconds=1)
    assert (await rpc("auth", "login", login("gil@example.com", WRONG))).status_code == 429
    # The instant the window has passed, the account may try again, and the failure it makes
    # starts a new window instead of adding to the old one.
    clock[0] = start + window
    assert (await rpc("auth", "login", login("gil@example.com", WRONG))).status_code == 401
    assert await counted() == [("account", 1, clock[0]), ("address", 1, clock[0])]
    # Another window later, a failure of another account purges what has passed (gil's row).
    clock[0] = start + 2 * window
    assert (await rpc("auth", "login", login("nobody@example.com", WRONG))).status_code == 401
    assert await counted() == [("account", 1, clock[0]), ("address", 1, clock[0])]


async def test_any_counter_at_its_limit_locks(rpc, principals, limits):
    """The account's own counter is below its limit; the address's is at it."""
    limits(per_account=100, per_address=3)
    await principals.user(email="ida@example.com")
    assert (await rpc("auth", "login", login("ida@example.com", WRONG))).status_code == 401
    for n in range(2):
        guess = await rpc("auth", "login", login(f"nobody{n}@example.com", WRONG))
        assert guess.status_code == 401
    blocked = await rpc("auth", "login", login("ida@example.com", PASSWORD))
    assert blocked.status_code == 429, blocked.text


def change(current: str) -> dict[str, str]:
    return {"currentPassword": current, "newPassword": "Brand-new-42"}


async def test_changing_a_password_guesses_count_like_logins(rpc, principals, limits, verified):
    """A stolen session must not try passwords without limit through ``changePassword``, nor
    add guesses to a login's by switching procedures."""
    limits(per_account=3)
    user = await principals.user(email="fay@example.com")
    assert (await rpc("auth", "login", login("fay@example.com", WRONG))).status_code == 401
    for _ in range(2):
        wrong = await rpc("auth", "changePassword", change(WRONG), user)
        assert wrong.status_code == 403, wrong.text
        assert wrong.json()["message"] == "The current password is wrong"
    for attempt in (
        rpc("auth", "changePassword", change(PASSWORD), user),  # the right one too
        rpc("auth", "login", login("fay@example.com", PASSWORD)),
    ):
        locked = await attempt
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["retry-after"]) > 0
    assert len(verified) == 3  # throttled attempts never reach argon2
    assert (await rpc("auth", "getCurrentUser", None, user)).status_code == 200  # unchanged


async def test_a_password_changed_with_the_right_current_one_clears_the_account(
    rpc, principals, limits
):
    limits(per_account=3)
    user = await principals.user(email="gus@example.com")
    for _ in range(2):
        assert (await rpc("auth", "login", login("gus@example.com", WRONG))).status_code == 401
    assert (await rpc("auth", "changePassword", change(PASSWORD), user)).status_code == 200
    # The account's two failures are forgotten: three more are allowed before the lock.
    for expected in (401, 401, 401, 429):
        response = await rpc("auth", "login", login("gus@example.com", WRONG))
        assert response.status_code == expected


async def test_a_crowd_of_wrong_current_passwords_is_counted_and_locked_out(
    rpc, principals, limits, checkstack_host
):
    """64 concurrent guesses through one stolen session: each is counted, none gets through
    past the limit, and nothing answers worse than 403/429."""
    limits(per_account=20, per_address=1000)
    user = await principals.user(email="hal@example.com")
    responses = await asyncio.gather(
        *(rpc("auth", "changePassword", change(WRONG), user) for _ in range(64))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {403, 429}, statuses
    # Attempts already past the check when the limit was reached still finish (documented).
    assert 20 <= statuses.count(403) < 64 and 429 in statuses
    async with checkstack_host.db.session() as session:
        rows = list(await session.exec(select(LoginThrottle)))
    assert dict((row.scope, row.failures) for row in rows)["account"] == statuses.count(403)
    locked = await rpc("auth", "changePassword", change(PASSWORD), user)
    assert locked.status_code == 429
