"""The admin console in a real browser: an administrator puts a system in the catalog, opens an
incident on it and posts an update; a visitor's status page shows both at once."""

from __future__ import annotations

from .conftest import call_ok, onboard_by_api, sign_in


def test_incident_from_the_console_reaches_the_status_page(
    page, playwright_browser, checkstack_server, screenshot
):
    url = checkstack_server.url
    onboard_by_api(url)
    sign_in(page)

    page.get_by_role("link", name="Catalog").click()
    page.get_by_text("Create System").click()
    create = page.get_by_role("form", name="Create System")
    create.get_by_label("Name", exact=True).fill("Checkout")
    create.get_by_role("button", name="Create", exact=True).click()
    page.get_by_role("rowheader", name="Checkout").wait_for()

    page.get_by_role("link", name="Incidents").click()
    page.get_by_text("Create Incident").click()
    page.get_by_label("Title").fill("Payments failing")
    page.get_by_label("Severity").select_option("critical")
    page.get_by_label("Checkout").check()
    page.get_by_label("First update").fill("Card payments fail for some customers.")
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url("**/incidents/manage/**")
    page.get_by_label("Message").fill("The card processor confirmed an outage.")
    page.get_by_label("New status").select_option("identified")
    page.get_by_role("button", name="Post update").click()
    timeline = page.get_by_role("list", name="Timeline of Payments failing")
    timeline.get_by_text("The card processor confirmed an outage.").wait_for()
    screenshot(page, "incident-admin")

    visitor = playwright_browser.new_context(base_url=url)
    try:
        public = visitor.new_page()
        public.goto("/")
        card = public.get_by_role("article", name="Payments failing")
        text = card.inner_text()
        assert "Critical" in text and "Identified" in text and "Checkout" in text
        assert "The card processor confirmed an outage." in text
        # Visitors get no admin links.
        assert public.get_by_role("link", name="Incidents").count() == 0
    finally:
        visitor.close()
    systems = call_ok(url, checkstack_server_cookie(page), "catalog", "getSystems")
    assert [s["name"] for s in systems["systems"]] == ["Checkout"]


def checkstack_server_cookie(page) -> str:  # type: ignore[no-untyped-def]
    return next(c["value"] for c in page.context.cookies() if c["name"] == "checkstack_session")
