"""The documented Applications flow in a real browser, end to end against a real server:
onboarding → a role → Applications tab → Create Application → the secret copied from the page
calls ``POST /api/catalog/ {"getSystems": {}}`` → a role checkbox gives and takes access at once →
Regenerate Secret (the old token is refused) → Delete. And the same tab by keyboard alone."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import api, eventually, onboard_in_browser

ROLE = "system editors"


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "browser-tests-not-for-production",
    }


def create_role_in_browser(page: Any, name: str, rule: str) -> None:
    page.get_by_role("link", name="Roles", exact=True).click()
    page.wait_for_url("**/auth/settings/roles")
    page.get_by_text("Create Role").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label(rule).check()
    page.get_by_role("button", name="Create", exact=True).click()
    page.get_by_text(f"Role “{name}” created.").wait_for()


def row(page: Any, name: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def _roles_saved(response: Any) -> bool:
    """The answer to saving an application's role checkboxes."""
    return response.request.method == "POST" and response.url.endswith("/roles")


def test_documented_applications_flow(page, browser_context, checkstack_server, screenshot):
    url = checkstack_server.url
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    onboard_in_browser(page)
    create_role_in_browser(page, ROLE, "catalog.catalog.manage")

    # 1. Navigate to Authentication Settings → Applications tab
    page.get_by_role("link", name="Authentication Settings").click()
    page.get_by_role("link", name="Applications", exact=True).click()
    page.wait_for_url("**/auth/settings/applications")
    # 2. Click Create Application; 3. enter a name and optional description
    page.get_by_text("Create Application").click()
    page.get_by_label("Name", exact=True).fill("ci-pipeline")
    page.get_by_label("Description").fill("Deploys from CI")
    page.get_by_role("button", name="Create", exact=True).click()
    # 4. Copy the secret immediately - it will never be shown again
    warning = page.get_by_text("Copy the secret now: it will not be shown again.")
    warning.wait_for()
    page.get_by_role("button", name="Copy").click()
    page.get_by_text("Copied to the clipboard.").wait_for()
    token = page.evaluate("navigator.clipboard.readText()")
    assert token == page.get_by_role("textbox", name="Secret").input_value()
    assert token.startswith("ck_")
    screenshot(page, "applications-created")

    # The copied token calls the documented endpoint.
    systems = api(url, "catalog", "getSystems", token=token)
    assert systems.status_code == 200, systems.text
    assert "systems" in systems.json()["getSystems"]
    # The table row: name, description, roles (applications ticked), Last Used, Created.
    app_row = row(page, "ci-pipeline")
    assert "Deploys from CI" in app_row.inner_text()
    assert app_row.get_by_label("applications").is_checked()
    assert not app_row.get_by_label(ROLE).is_checked()

    def last_used() -> str:
        # Keep using the key, as a client would: a lastUsedAt write that failed is retried on
        # the next use a minute later (docs/security.md: it may lag real use by a minute).
        assert api(url, "catalog", "getSystems", token=token).status_code == 200
        response = page.goto("/auth/settings/applications")
        assert response is not None and response.ok, (
            f"{response and response.status}: {page.content()[-3000:]}\n"
            f"{checkstack_server.logs()[-3000:]}"
        )
        assert page.get_by_role("textbox", name="Secret").count() == 0  # never shown again
        cell = row(page, "ci-pipeline").locator('td[data-label="Last Used"]')
        assert cell.count() == 1, page.content()[-3000:]
        text = cell.inner_text()
        return "" if "Never" in text else text

    # The call above shows in Last Used (written off the request, so poll).
    assert "UTC" in eventually(last_used, timeout=90, interval=0.5)

    # Roles through the inline checkboxes: access follows at once.
    create = {"name": "billing-api"}
    refused = api(url, "catalog", "createSystem", create, token=token)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Missing access: catalog.catalog.manage"
    # Wait for each save's own answer: the previous save's "Roles saved." is still on the page.
    with page.expect_response(_roles_saved):
        row(page, "ci-pipeline").get_by_label(ROLE).check()
    row(page, "ci-pipeline").get_by_text("Roles saved.").wait_for()
    allowed = api(url, "catalog", "createSystem", create, token=token)
    assert allowed.status_code == 200, allowed.text
    with page.expect_response(_roles_saved):
        row(page, "ci-pipeline").get_by_label(ROLE).uncheck()
    row(page, "ci-pipeline").get_by_text("Roles saved.").wait_for()
    assert api(url, "catalog", "createSystem", {"name": "x"}, token=token).status_code == 403
    page.goto("/auth/settings/applications")
    assert not row(page, "ci-pipeline").get_by_label(ROLE).is_checked()  # it was stored

    # Regenerate Secret: confirm, the new secret once, the old token refused.
    row(page, "ci-pipeline").get_by_role("link", name="Regenerate Secret").click()
    page.get_by_text("Its current token stops working immediately").wait_for()
    page.get_by_role("button", name="Regenerate Secret").click()
    page.get_by_text("Copy the secret now: it will not be shown again.").wait_for()
    new_token = page.get_by_role("textbox", name="Secret").input_value()
    assert new_token != token
    old = api(url, "catalog", "getSystems", token=token)
    assert old.status_code == 401
    assert old.json() == {"code": "UNAUTHORIZED", "message": "Invalid API key"}
    assert api(url, "catalog", "getSystems", token=new_token).status_code == 200

    # Delete: confirm, then the token fails.
    row(page, "ci-pipeline").get_by_role("link", name="Delete").click()
    page.get_by_text("This cannot be undone.").wait_for()
    page.get_by_role("button", name="Delete").click()
    page.get_by_text("The application was deleted").wait_for()
    assert row(page, "ci-pipeline").count() == 0
    assert api(url, "catalog", "getSystems", token=new_token).status_code == 401


def test_applications_tab_by_keyboard_alone(page, checkstack_server):
    url = checkstack_server.url
    onboard_in_browser(page)
    create_role_in_browser(page, ROLE, "catalog.catalog.manage")
    page.goto("/auth/settings/applications")

    def tab_to(target: Any, limit: int = 80) -> None:
        """Press Tab until ``target`` (a locator) has the keyboard focus."""
        for _ in range(limit):
            page.keyboard.press("Tab")
            if target.evaluate("element => element === document.activeElement"):
                return
        raise AssertionError(f"{target} is not reachable with Tab")

    tab_to(page.get_by_text("Create Application"))
    page.keyboard.press("Enter")  # opens the form
    tab_to(page.get_by_label("Name", exact=True))
    page.keyboard.type("keyboard-key")
    tab_to(page.get_by_role("button", name="Create", exact=True))
    page.keyboard.press("Enter")
    page.get_by_text("Copy the secret now: it will not be shown again.").wait_for()
    # The new secret's heading has the focus, so a screen reader announces it.
    focused_id = page.evaluate("document.activeElement.id")
    assert focused_id == "secret-heading"
    token = page.get_by_role("textbox", name="Secret").input_value()
    tab_to(row(page, "keyboard-key").get_by_label(ROLE))
    page.keyboard.press("Space")
    row(page, "keyboard-key").get_by_text("Roles saved.").wait_for()
    assert api(url, "catalog", "createSystem", {"name": "kb"}, token=token).status_code == 200
    # The focus stayed on the checkbox through the in-place update.
    assert page.evaluate("document.activeElement.type") == "checkbox"
    tab_to(page.get_by_role("link", name="Regenerate Secret of keyboard-key"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/regenerate")
    tab_to(page.get_by_role("button", name="Regenerate Secret"))
    page.keyboard.press("Enter")
    page.get_by_text("Copy the secret now: it will not be shown again.").wait_for()
    assert api(url, "catalog", "getSystems", token=token).status_code == 401
