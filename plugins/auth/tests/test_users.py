"""Users, onboarding, login sessions and the guards around the admin role (SPEC §5.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from checkstack_auth.passwords import password_problems

from .conftest import PASSWORD


def _cookie(response) -> str:
    header = response.headers["set-cookie"]
    assert header.startswith("checkstack_session=")
    return header


def _session_token(response) -> str:
    return _cookie(response).split(";", 1)[0].split("=", 1)[1]


def _as(token: str) -> dict[str, str]:
    return {"Cookie": f"checkstack_session={token}"}


async def test_password_policy_messages():
    assert password_problems("short") == [
        "Password must be at least 8 characters",
        "Password must contain at least one uppercase letter",
        "Password must contain at least one number",
    ]
    assert password_problems("ALLUPPER123") == [
        "Password must contain at least one lowercase letter"
    ]
    assert password_problems(PASSWORD) == []
    assert "Password must not be the email address" in password_problems(
        "Ann@Example.com1", email="ann@example.com1"
    )


async def test_onboarding_creates_the_first_admin_once(rpc):
    status = await rpc("auth", "getOnboardingStatus")
    assert status.json() == {"getOnboardingStatus": {"needsOnboarding": True}}

    weak = await rpc("auth", "completeOnboarding", {"email": "ann@example.com", "password": "weak"})
    assert weak.status_code == 400
    messages = [issue["message"] for issue in weak.json()["data"]["issues"]]
    assert "Password must be at least 8 characters" in messages
    bad_email = await rpc("auth", "completeOnboarding", {"email": "nope", "password": PASSWORD})
    assert bad_email.status_code == 400

    done = await rpc(
        "auth",
        "completeOnboarding",
        {"email": "Ann@Example.com", "password": PASSWORD, "name": "Ann"},
    )
    assert done.status_code == 200, done.text
    user = done.json()["completeOnboarding"]
    assert user["email"] == "ann@example.com" and user["isAdmin"] is True
    assert "admin" in user["roles"] and "auth.users.manage" in user["rules"]
    cookie = _cookie(done)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie

    me = await rpc("auth", "getCurrentUser", headers=_as(_session_token(done)))
    assert me.json()["getCurrentUser"]["id"] == user["id"]
    assert (await rpc("auth", "getOnboardingStatus")).json()["getOnboardingStatus"] == {
        "needsOnboarding": False
    }
    again = await rpc(
        "auth", "completeOnboarding", {"email": "eve@example.com", "password": PASSWORD}
    )
    assert again.status_code == 403
    assert again.json()["message"] == "Onboarding has already been completed"


async def test_login_logout_and_revoked_cookies(rpc, principals):
    await principals.user(email="bob@example.com")
    wrong = await rpc("auth", "login", {"email": "bob@example.com", "password": "Wrong-pass-1"})
    assert wrong.status_code == 401
    assert wrong.json()["message"] == "Invalid email or password"
    unknown = await rpc("auth", "login", {"email": "who@example.com", "password": PASSWORD})
    assert unknown.json()["message"] == "Invalid email or password"

    ok = await rpc("auth", "login", {"email": "BOB@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    token = _session_token(ok)
    assert token.startswith("cs_")
    me = await rpc("auth", "getCurrentUser", headers=_as(token))
    assert me.json()["getCurrentUser"]["email"] == "bob@example.com"
    assert me.json()["getCurrentUser"]["roles"] == ["users"]

    out = await rpc("auth", "logout", headers=_as(token))
    assert out.status_code == 200
    assert "Max-Age=0" in out.headers["set-cookie"]
    revoked = await rpc("hello", "getGreeting", {}, headers=_as(token))
    assert revoked.status_code == 401
    assert revoked.json()["message"] == "Session expired or revoked: log in again"
    # The 401 clears the stale cookie, so the browser's next request (e.g. login) works.
    assert "checkstack_session=;" in revoked.headers["set-cookie"]
    assert "Max-Age=0" in revoked.headers["set-cookie"]
    garbage = await rpc("hello", "getGreeting", {}, headers=_as("not-a-session"))
    assert garbage.status_code == 401


async def test_secure_cookie_over_https(principals, checkstack_http):
    await principals.user(email="carl@example.com")
    credentials = {"login": {"email": "carl@example.com", "password": PASSWORD}}
    response = await checkstack_http.post("https://testserver/api/auth/", json=credentials)
    assert "Secure" in _cookie(response)
    # A client's own X-Forwarded-Proto is not trusted (uvicorn applies it for trusted proxies).
    spoofed = await checkstack_http.post(
        "/api/auth/", json=credentials, headers={"X-Forwarded-Proto": "https"}
    )
    assert "Secure" not in _cookie(spoofed)


async def test_secure_cookie_when_the_base_url_is_https(
    principals, checkstack_http, checkstack_host
):
    await principals.user(email="dan@example.com")
    checkstack_host.settings.base_url = "https://status.example.com"
    credentials = {"login": {"email": "dan@example.com", "password": PASSWORD}}
    response = await checkstack_http.post("/api/auth/", json=credentials)
    assert "Secure" in _cookie(response)


async def test_sessions_expire_and_can_be_revoked(rpc, principals, checkstack_host):
    user = await principals.user()
    second = await rpc("auth", "login", {"email": "user1@example.com", "password": PASSWORD})
    second_token = _session_token(second)
    listed = await rpc("auth", "getSessions", None, user)
    sessions = listed.json()["getSessions"]["sessions"]
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    other = next(s for s in sessions if not s["current"])
    assert second_token.split("_", 2)[1] == other["id"]
    assert "cs_" not in listed.text

    revoked = await rpc("auth", "revokeSession", {"id": other["id"]}, user)
    assert revoked.status_code == 200
    assert (await rpc("auth", "getCurrentUser", headers=_as(second_token))).status_code == 401
    assert (await rpc("auth", "getCurrentUser", None, user)).status_code == 200

    checkstack_host.auth.now = lambda: datetime.now(UTC) + timedelta(days=8)
    expired = await rpc("auth", "getCurrentUser", None, user)
    assert expired.status_code == 401


async def test_change_password_ends_other_sessions(rpc, principals):
    user = await principals.user(email="dora@example.com")
    other = _session_token(
        await rpc("auth", "login", {"email": "dora@example.com", "password": PASSWORD})
    )
    wrong = await rpc(
        "auth",
        "changePassword",
        {"currentPassword": "Nope-1234", "newPassword": "Brand-new-42"},
        user,
    )
    assert wrong.status_code == 403
    weak = await rpc(
        "auth", "changePassword", {"currentPassword": PASSWORD, "newPassword": "weak"}, user
    )
    assert weak.status_code == 400
    assert weak.json()["data"]["issues"][0]["path"] == ["newPassword"]
    ok = await rpc(
        "auth", "changePassword", {"currentPassword": PASSWORD, "newPassword": "Brand-new-42"}, user
    )
    assert ok.status_code == 200
    assert (await rpc("auth", "getCurrentUser", None, user)).status_code == 200
    assert (await rpc("auth", "getCurrentUser", headers=_as(other))).status_code == 401
    login = await rpc("auth", "login", {"email": "dora@example.com", "password": "Brand-new-42"})
    assert login.status_code == 200


async def test_user_procedures_are_for_people_only(rpc, principals):
    app = await principals.app()
    response = await rpc("auth", "getCurrentUser", None, app)
    assert response.status_code == 403
    assert response.json()["message"] == "This procedure is for users only"
    assert (await rpc("auth", "getCurrentUser")).status_code == 401


async def test_user_management_and_admin_guards(rpc, principals):
    admin = await principals.admin()
    created = await rpc(
        "auth",
        "createUser",
        {"email": "eve@example.com", "password": PASSWORD, "name": "Eve"},
        admin,
    )
    assert created.status_code == 200, created.text
    eve = created.json()["createUser"]
    assert eve["roles"] == [] and "passwordHash" not in eve
    duplicate = await rpc(
        "auth", "createUser", {"email": "EVE@example.com", "password": PASSWORD}, admin
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "A user with this email already exists"
    listed = await rpc("auth", "getUsers", None, admin)
    assert "argon2" not in listed.text
    assert {u["email"] for u in listed.json()["getUsers"]["users"]} >= {"eve@example.com"}

    own = await rpc("auth", "setUserRoles", {"id": admin.id, "roles": []}, admin)
    assert own.status_code == 403
    assert own.json()["message"] == "You cannot remove your own admin role"
    self_delete = await rpc("auth", "deleteUser", {"id": admin.id}, admin)
    assert self_delete.json()["message"] == "You cannot delete yourself"
    anonymous_role = await rpc(
        "auth", "setUserRoles", {"id": eve["id"], "roles": ["anonymous"]}, admin
    )
    assert anonymous_role.status_code == 400

    manager = await principals.user("auth.users.manage", "auth.users.read")
    promote = await rpc("auth", "setUserRoles", {"id": eve["id"], "roles": ["admin"]}, manager)
    assert promote.json()["message"] == "Only administrators can grant the admin role"
    on_admin = f"Only administrators can manage user {admin.id}: it holds the admin role"
    demote = await rpc("auth", "setUserRoles", {"id": admin.id, "roles": []}, manager)
    assert demote.status_code == 403 and demote.json()["message"] == on_admin
    delete_admin = await rpc("auth", "deleteUser", {"id": admin.id}, manager)
    assert delete_admin.json()["message"] == on_admin

    # An application holding the admin role is an administrator, yet the last one stays.
    robot = await principals.app(roles=("admin",))
    last = await rpc("auth", "deleteUser", {"id": admin.id}, robot)
    assert last.status_code == 409
    assert last.json()["message"] == "Cannot delete the last administrator"
    demote_last = await rpc("auth", "setUserRoles", {"id": admin.id, "roles": []}, robot)
    assert demote_last.status_code == 409
    assert (
        demote_last.json()["message"] == "Cannot remove the admin role from the last administrator"
    )

    promoted = await rpc("auth", "setUserRoles", {"id": eve["id"], "roles": ["admin"]}, admin)
    assert promoted.json()["setUserRoles"]["roles"] == ["admin"]
    demoted = await rpc("auth", "setUserRoles", {"id": eve["id"], "roles": []}, admin)
    assert demoted.status_code == 200
    password = await rpc("auth", "setUserPassword", {"id": eve["id"], "password": "weak"}, admin)
    assert password.status_code == 400
    deleted = await rpc("auth", "deleteUser", {"id": eve["id"]}, admin)
    assert deleted.json() == {"deleteUser": {"id": eve["id"]}}
    gone = await rpc("auth", "deleteUser", {"id": eve["id"]}, admin)
    assert gone.status_code == 404


async def test_an_administrator_ends_all_sessions_of_a_user(rpc, principals):
    admin = await principals.admin()
    user = await principals.user(email="lost@example.com")
    other = _session_token(
        await rpc("auth", "login", {"email": "lost@example.com", "password": PASSWORD})
    )
    assert (await rpc("auth", "revokeUserSessions", {"id": user.id}, admin)).status_code == 200
    assert (await rpc("auth", "getCurrentUser", None, user)).status_code == 401
    assert (await rpc("auth", "getCurrentUser", headers=_as(other))).status_code == 401
    manager = await principals.user("auth.users.manage")
    denied = await rpc("auth", "revokeUserSessions", {"id": admin.id}, manager)
    assert denied.status_code == 403
    assert denied.json()["message"] == (
        f"Only administrators can manage user {admin.id}: it holds the admin role"
    )
    assert (await rpc("auth", "getCurrentUser", None, admin)).status_code == 200
