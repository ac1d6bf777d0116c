"""axe-core (from npm, injected into the page) finds no serious or critical WCAG 2.1 A/AA
violation on the main pages, in the light and the dark theme."""

from __future__ import annotations

import pytest

from .conftest import api, call_ok, onboard_by_api, run_axe, sign_in


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_main_pages_have_no_serious_violations(
    playwright_browser, checkstack_server, axe_source, screenshot, scheme
):
    url = checkstack_server.url
    context = playwright_browser.new_context(base_url=url, color_scheme=scheme)
    page = context.new_page()
    found: dict[str, list[dict[str, object]]] = {}

    def check(name: str) -> None:
        violations = run_axe(page, axe_source)
        if violations:
            found[name] = violations
        if scheme == "light":
            screenshot(page, name)

    try:
        page.goto("/onboarding")
        check("onboarding")
        cookie = onboard_by_api(url)
        system = call_ok(url, cookie, "catalog", "createSystem", {"name": "Public API"})
        call_ok(
            url,
            cookie,
            "incident",
            "createIncident",
            {"title": "Slow responses", "severity": "minor", "systemIds": [system["id"]]},
        )
        call_ok(url, cookie, "auth", "createRole", {"name": "readers", "rules": []})
        page.goto("/")
        check("status-page")
        page.goto(f"/systems/{system['id']}")
        check("system-page")
        page.goto("/login")
        check("login")
        sign_in(page)
        page.goto("/auth/settings/applications")
        page.get_by_text("Create Application").click()
        page.get_by_label("Name").fill("ci")
        page.get_by_role("button", name="Create", exact=True).click()
        page.get_by_text("Copy the secret now").wait_for()
        check("applications")
        for tab in ("roles", "users", "teams"):
            page.goto(f"/auth/settings/{tab}")
            check(tab)
        team = call_ok(url, cookie, "auth", "createTeam", {"name": "ops"})
        for name, path in (
            ("team", f"/auth/settings/teams/{team['id']}"),
            ("profile", "/auth/profile"),
            ("catalog-admin", "/catalog/manage"),
            ("incidents-admin", "/incidents/manage"),
            ("maintenance-admin", "/maintenance/manage"),
        ):
            page.goto(path)
            for summary in page.locator("details > summary").all():
                summary.click()  # check the create forms too
            check(name)
        page.goto("/hello")
        check("hello")
        assert api(url, "catalog", "getSystems").status_code == 200
    finally:
        context.close()
    assert not found, found
