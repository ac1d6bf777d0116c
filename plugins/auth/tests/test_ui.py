"""The auth plugin's pages, in process: onboarding, sign-in, the Applications tab and its
documented actions, refusals shown with the API's message, and the cross-site check of forms.

Browser tests of the same flow (a real Chromium) are in ``tests/browser/``."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from .conftest import PASSWORD

ORIGIN = {"Origin": "http://testserver"}
TOKEN = re.compile(r'id="secret-value"[^>]*value="(ck_[^"]+)"')


async def onboard(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/onboarding",
        data={"email": "root@example.com", "password": PASSWORD, "name": "Root"},
        headers=ORIGIN,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/auth/settings"
    assert "checkstack_session" in http.cookies


async def create_app(http: httpx.AsyncClient, name: str, description: str = "") -> str:
    response = await http.post(
        "/auth/settings/applications",
        data={"name": name, "description": description},
        headers=ORIGIN,
    )
    assert response.status_code == 200, response.text
    assert "it will not be shown again" in response.text
    match = TOKEN.search(response.text)
    assert match, response.text
    return match.group(1)


async def test_onboarding_first_then_login(checkstack_http: httpx.AsyncClient):
    login = await checkstack_http.get("/login")
    assert login.status_code == 303 and login.headers["location"] == "/onboarding"
    page = await checkstack_http.get("/onboarding")
    assert page.status_code == 200
    assert "Create the first administrator" in page.text
    await onboard(checkstack_http)
    # Onboarding is over: its page sends people to sign in.
    assert (await checkstack_http.get("/onboarding")).headers["location"] == "/login"
    await checkstack_http.post("/logout", headers=ORIGIN)
    assert "checkstack_session" not in checkstack_http.cookies
    wrong = await checkstack_http.post(
        "/login", data={"email": "root@example.com", "password": "nope"}, headers=ORIGIN
    )
    assert wrong.status_code == 401
    assert "Invalid email or password" in unescape(wrong.text) or "alert-error" in wrong.text
    ok = await checkstack_http.post(
        "/login",
        data={"email": "root@example.com", "password": PASSWORD, "next": "/auth/settings/roles"},
        headers=ORIGIN,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/auth/settings/roles"


async def test_login_never_redirects_off_site(checkstack_http: httpx.AsyncClient):
    await onboard(checkstack_http)
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
    ):
        response = await checkstack_http.post(
            "/login",
            data={"email": "root@example.com", "password": PASSWORD, "next": target},
            headers=ORIGIN,
        )
        assert response.headers["location"] == "/"


async def test_applications_tab_documented_actions(checkstack_http: httpx.AsyncClient):
    await onboard(checkstack_http)
    token = await create_app(checkstack_http, "ci", "pipeline")
    api = {"Authorization": f"Bearer {token}"}
    # The token works at once, through the documented protocol.
    hello = await checkstack_http.post("/api/hello/", json={"getGreeting": {}}, headers=api)
    assert hello.status_code in (200, 403), hello.text
    page = await checkstack_http.get("/auth/settings/applications")
    assert page.status_code == 200
    assert token not in page.text  # shown once only
    for column in ("Name", "Description", "Roles", "Last Used", "Created"):
        assert f">{column}</th>" in page.text
    app_id = token.split("_", 2)[1]
    # New applications hold the applications role: its checkbox is checked.
    assert re.search(r'name="role" value="applications" checked', page.text)
    # Roles: the checkbox form (htmx posts it on every change) replaces the row's roles.
    saved = await checkstack_http.post(
        f"/auth/settings/applications/{app_id}/roles",
        data={"role": ["applications", "admin"]},
        headers={**ORIGIN, "HX-Request": "true"},
    )
    assert saved.status_code == 200, saved.text
    assert "Roles saved." in saved.text
    assert re.search(r'value="admin" checked', saved.text)
    # Regenerate: a confirmation first, then the new secret once; the old token fails.
    confirm = await checkstack_http.get(f"/auth/settings/applications/{app_id}/regenerate")
    assert "stops working immediately" in confirm.text
    rotated = await checkstack_http.post(
        f"/auth/settings/applications/{app_id}/regenerate", headers=ORIGIN
    )
    new_token = TOKEN.search(rotated.text).group(1)  # type: ignore[union-attr]
    assert new_token != token and "it will not be shown again" in rotated.text
    old = await checkstack_http.post("/api/auth/", json={"getRoles": {}}, headers=api)
    assert old.status_code == 401
    # Delete: confirmation, then the token fails.
    confirm = await checkstack_http.get(f"/auth/settings/applications/{app_id}/delete")
    assert "cannot be undone" in confirm.text
    deleted = await checkstack_http.post(
        f"/auth/settings/applications/{app_id}/delete", headers=ORIGIN
    )
    assert deleted.status_code == 303
    gone = await checkstack_http.post(
        "/api/auth/", json={"getRoles": {}}, headers={"Authorization": f"Bearer {new_token}"}
    )
    assert gone.status_code == 401
    listing = await checkstack_http.get(deleted.headers["location"])
    assert "No applications yet." in listing.text


async def test_create_application_shows_the_api_message_next_to_the_field(
    checkstack_http: httpx.AsyncClient,
):
    await onboard(checkstack_http)
    response = await checkstack_http.post(
        "/auth/settings/applications", data={"name": "", "description": ""}, headers=ORIGIN
    )
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
    assert 'id="f-name-error"' in response.text


async def test_pages_need_sign_in_and_the_right_rule(checkstack_http, principals):
    anonymous = await checkstack_http.get("/auth/settings/applications")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/auth/settings/applications"
    # A user without auth.applications.manage gets the API's refusal, not the table.
    user = await principals.user("auth.users.read")
    refused = await checkstack_http.get("/auth/settings/applications", headers=user.headers)
    assert refused.status_code == 403
    assert "Missing access: auth.applications.manage" in refused.text
    assert "Create Application" not in refused.text
    # ... and no link to the Applications tab.
    users = await checkstack_http.get("/auth/settings/users", headers=user.headers)
    assert users.status_code == 200
    assert 'href="/auth/settings/applications"' not in users.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
)
async def test_form_posts_from_elsewhere_are_refused(checkstack_http, headers):
    await onboard(checkstack_http)
    response = await checkstack_http.post(
        "/auth/settings/applications", data={"name": "sneaky"}, headers=headers
    )
    assert response.status_code == 403
    assert "Cross-site request refused" in response.text
    listing = await checkstack_http.get("/auth/settings/applications")
    assert "sneaky" not in listing.text


async def test_login_form_is_checked_too(checkstack_http):
    await onboard(checkstack_http)
    checkstack_http.cookies.clear()
    response = await checkstack_http.post(
        "/login",
        data={"email": "root@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "checkstack_session" not in response.headers.get("set-cookie", "")


async def test_stale_session_cookie_is_cleared(checkstack_http):
    checkstack_http.cookies.set("checkstack_session", "cs_nope_nope")
    response = await checkstack_http.get("/")
    assert response.status_code == 303
    assert "checkstack_session=;" in response.headers["set-cookie"]


async def test_profile_changes_the_password_and_lists_sessions(checkstack_http):
    await onboard(checkstack_http)
    page = await checkstack_http.get("/auth/profile")
    assert page.status_code == 200
    assert "root@example.com" in page.text and "This session" in page.text
    weak = await checkstack_http.post(
        "/auth/profile",
        data={"action": "password", "currentPassword": PASSWORD, "newPassword": "short"},
        headers=ORIGIN,
    )
    assert weak.status_code == 400 and 'class="alert alert-error"' in weak.text
    changed = await checkstack_http.post(
        "/auth/profile",
        data={"action": "password", "currentPassword": PASSWORD, "newPassword": "New-pass-456"},
        headers=ORIGIN,
    )
    assert changed.status_code == 200 and "Password changed" in changed.text
    await checkstack_http.post("/logout", headers=ORIGIN)
    relogin = await checkstack_http.post(
        "/login",
        data={"email": "root@example.com", "password": "New-pass-456"},
        headers=ORIGIN,
    )
    assert relogin.status_code == 303


async def test_team_page_members_managers_and_grants(checkstack_http):
    await onboard(checkstack_http)
    created = await checkstack_http.post(
        "/auth/settings/teams", data={"name": "payroll"}, headers=ORIGIN
    )
    assert "Team “payroll” created." in created.text
    team_id = re.search(r'href="/auth/settings/teams/([^"]+)"', created.text).group(1)  # type: ignore[union-attr]
    token = await create_app(checkstack_http, "exporter")
    app_id = token.split("_", 2)[1]
    path = f"/auth/settings/teams/{team_id}"
    page = await checkstack_http.get(path)
    assert f'value="application:{app_id}"' in page.text
    added = await checkstack_http.post(
        path, data={"action": "addTeamMember", "member": f"application:{app_id}"}, headers=ORIGIN
    )
    assert added.status_code == 303
    granted = await checkstack_http.post(
        path,
        data={
            "action": "grantTeamAccess",
            "resourceType": "auth.team",
            "resourceId": team_id,
            "level": "read",
        },
        headers=ORIGIN,
    )
    assert granted.status_code == 303, granted.text[granted.text.find('role="alert"') :][:300]
    page = await checkstack_http.get(path)
    assert "exporter" in page.text and "<code>auth.team</code>" in page.text
    detail = await checkstack_http.post("/api/auth/", json={"getTeam": {"id": team_id}})
    assert detail.json()["getTeam"]["members"][0]["id"] == app_id


async def test_role_checkboxes_without_javascript_and_refusals_in_place(
    checkstack_http, principals
):
    await onboard(checkstack_http)
    token = await create_app(checkstack_http, "ci")
    app_id = token.split("_", 2)[1]
    # Without JavaScript the row's Save button posts the form: back to the table.
    saved = await checkstack_http.post(
        f"/auth/settings/applications/{app_id}/roles",
        data={"role": ["applications"]},
        headers=ORIGIN,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/auth/settings/applications"
    # A key manager who is not an administrator cannot hand out the admin role: the API's
    # refusal replaces the checkboxes (htmx), which show what is really stored.
    manager = await principals.user("auth.applications.manage", "auth.roles.read")
    checkstack_http.cookies.clear()
    refused = await checkstack_http.post(
        f"/auth/settings/applications/{app_id}/roles",
        data={"role": ["applications", "admin"]},
        headers={**ORIGIN, **manager.headers, "HX-Request": "true"},
    )
    assert refused.status_code == 200
    assert 'class="save-status error"' in refused.text
    assert "admin" in refused.text.split('class="save-status error"')[1]
    assert 'value="admin" checked' not in refused.text


async def test_the_applications_table_paginates(checkstack_http):
    await onboard(checkstack_http)
    for i in range(52):
        response = await checkstack_http.post(
            "/api/auth/", json={"createApplication": {"name": f"key-{i:02d}"}}
        )
        assert response.status_code == 200
    first = await checkstack_http.get("/auth/settings/applications")
    assert "1\u201350 of 52" in first.text
    second = await checkstack_http.get("/auth/settings/applications", params={"offset": "50"})
    assert "51\u201352 of 52" in second.text
    rows = re.findall(r'<th scope="row" data-label="Name">([^<]+)</th>', second.text)
    assert len(rows) == 2


async def test_the_roles_and_teams_tabs_paginate(checkstack_http):
    await onboard(checkstack_http)
    for i in range(51):
        response = await checkstack_http.post(
            "/api/auth/",
            json={
                "createTeam": {"name": f"team-{i:02d}"},
                "createRole": {"name": f"role-{i:02d}", "rules": []},
            },
        )
        assert response.status_code == 200, response.text
    for tab, total in (("teams", 51), ("roles", None)):
        first = await checkstack_http.get(f"/auth/settings/{tab}")
        found = re.search(r"1\u201350 of (\d+)", first.text)
        assert found, first.text
        count = int(found.group(1))
        assert total is None or count == total
        last = await checkstack_http.get(f"/auth/settings/{tab}", params={"offset": "50"})
        assert f"51\u2013{count} of {count}" in last.text
        assert 'href="/auth/settings/' + tab + '?offset=0">' in last.text


async def test_users_tab_creates_and_deletes_users(checkstack_http):
    await onboard(checkstack_http)
    created = await checkstack_http.post(
        "/auth/settings/users",
        data={"email": "ops@example.com", "name": "Ops", "password": "Ops-pass-789"},
        headers=ORIGIN,
    )
    assert "User ops@example.com created." in created.text
    user_id = re.search(
        r'href="/auth/settings/users/([^"/]+)/delete"[^>]*>Delete<span'
        r' class="visually-hidden"> ops@example.com',
        created.text,
    ).group(1)  # type: ignore[union-attr]
    confirm = await checkstack_http.get(f"/auth/settings/users/{user_id}/delete")
    assert "Delete the user ops@example.com?" in confirm.text
    deleted = await checkstack_http.post(f"/auth/settings/users/{user_id}/delete", headers=ORIGIN)
    assert deleted.status_code == 303
    assert "ops@example.com" not in (await checkstack_http.get("/auth/settings/users")).text
    # The last administrator stays: the API's refusal is the page.
    me = (await checkstack_http.post("/api/auth/", json={"getCurrentUser": {}})).json()
    refused = await checkstack_http.post(
        f"/auth/settings/users/{me['getCurrentUser']['id']}/delete", headers=ORIGIN
    )
    assert refused.status_code in (403, 409)
    assert 'class="alert alert-error"' in refused.text


async def test_a_teams_members_and_grants_paginate(checkstack_http):
    await onboard(checkstack_http)
    team = (await checkstack_http.post("/api/auth/", json={"createTeam": {"name": "big"}})).json()
    team_id = team["createTeam"]["id"]
    for i in range(51):
        created = await checkstack_http.post(
            "/api/auth/", json={"createApplication": {"name": f"member-{i:02d}"}}
        )
        app_id = created.json()["createApplication"]["application"]["id"]
        batch = {
            "addTeamMember": {"id": team_id, "applicationId": app_id},
            "grantTeamAccess": {
                "teamId": team_id,
                "resourceType": "auth.team",
                "resourceId": f"resource-{i:02d}",
                "level": "read",
            },
        }
        response = await checkstack_http.post("/api/auth/", json=batch)
        assert response.status_code == 200, response.text
    path = f"/auth/settings/teams/{team_id}"
    first = await checkstack_http.get(path)
    assert first.text.count("1\u201350 of 51") == 2  # members, and grants
    listed = 'name="member" value="application:'  # each listed member's Remove form
    assert first.text.count(listed) == 50 and first.text.count("<code>resource-") == 50
    members = await checkstack_http.get(path, params={"offset": "50"})
    assert "51\u201351 of 51" in members.text and members.text.count(listed) == 1
    grants = await checkstack_http.get(path, params={"grants": "50"})
    assert grants.text.count("<code>resource-") == 1
    assert f'href="{path}?grants=0">' in grants.text
