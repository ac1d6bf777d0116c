"""The public status page in a real browser, as an anonymous visitor: an open incident and a
maintenance in progress with their timelines, a team-only system that stays invisible, the
refresh that brings news without reloading the page, and a phone's width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import call_ok, eventually, onboard_by_api


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {"CHECKSTACK_STRICT_PLUGINS": "1", "CHECKSTACK_STATUS_REFRESH_SECONDS": "1"}


def seed(url: str, cookie: str) -> dict[str, Any]:
    """Systems in a group, an open incident with an update, maintenance under way, and a
    team-only system."""

    def call(plugin: str, procedure: str, input: Any = None) -> Any:
        return call_ok(url, cookie, plugin, procedure, input)

    api_system = call("catalog", "createSystem", {"name": "Public API"})
    web = call("catalog", "createSystem", {"name": "Website"})
    db = call("catalog", "createSystem", {"name": "Primary database"})
    secret = call("catalog", "createSystem", {"name": "Payroll exporter"})
    group = call("catalog", "createGroup", {"name": "Customer facing"})
    for system in (api_system, web):
        call("catalog", "addSystemToGroup", {"groupId": group["id"], "systemId": system["id"]})
    incident = call(
        "incident",
        "createIncident",
        {
            "title": "Elevated error rates on the API",
            "severity": "major",
            "systemIds": [api_system["id"]],
            "message": "We are investigating reports of failed requests.",
        },
    )
    call(
        "incident",
        "addUpdate",
        {
            "id": incident["id"],
            "message": "A faulty deploy was rolled back.",
            "status": "monitoring",
        },
    )
    now = datetime.now(UTC)
    window = call(
        "maintenance",
        "scheduleWindow",
        {
            "title": "Database failover test",
            "startAt": (now + timedelta(seconds=1)).isoformat(),
            "endAt": (now + timedelta(hours=1)).isoformat(),
            "systemIds": [db["id"]],
        },
    )
    team = call("auth", "createTeam", {"name": "payroll"})
    call(
        "auth",
        "grantTeamAccess",
        {
            "teamId": team["id"],
            "resourceType": "catalog.system",
            "resourceId": secret["id"],
            "level": "read",
        },
    )
    call(
        "auth",
        "setTeamOnly",
        {"resourceType": "catalog.system", "resourceId": secret["id"], "teamOnly": True},
    )
    # The window starts by itself (the scheduler, within seconds).
    eventually(
        lambda: call("maintenance", "getWindow", {"id": window["id"]})["status"] == "in_progress"
    )
    return {"incident": incident, "window": window, "secret": secret, "web": web}


def test_status_page_as_an_anonymous_visitor(page, checkstack_server, screenshot):
    url = checkstack_server.url
    cookie = onboard_by_api(url)
    seeded = seed(url, cookie)

    page.goto("/")
    assert page.title() == "Status · Checkstack"
    incident = page.get_by_role("article", name="Elevated error rates on the API")
    assert "Major" in incident.inner_text() and "Monitoring" in incident.inner_text()
    updates = incident.get_by_role("list", name="Updates on Elevated error rates on the API")
    items = updates.get_by_role("listitem").all_inner_texts()
    assert "rolled back" in items[0] and "investigating reports" in items[1]  # newest first
    assert "Public API" in incident.inner_text()  # affected systems by name
    maintenance = page.get_by_role("region", name="Maintenance")
    assert "In progress" in maintenance.inner_text()
    window = maintenance.get_by_role("article", name="Database failover test")
    assert "Primary database" in window.inner_text()
    assert window.get_by_role("list", name="Updates on Database failover test").count() == 1
    systems = page.get_by_role("region", name="Systems")
    assert systems.get_by_role("heading", name="Customer facing").is_visible()
    assert systems.get_by_role("link", name="Website").is_visible()
    # The team-only system is nowhere for a visitor.
    assert "Payroll exporter" not in page.content()
    screenshot(page, "status-page")

    # News arrives without a reload: a marker set on this page load survives.
    page.evaluate("window.__sameLoad = true")
    call_ok(
        url,
        cookie,
        "incident",
        "createIncident",
        {"title": "Login emails delayed", "severity": "minor", "systemIds": [seeded["web"]["id"]]},
    )
    page.get_by_role("article", name="Login emails delayed").wait_for(timeout=20_000)
    assert page.evaluate("window.__sameLoad") is True

    # The feed is linked and served.
    feed = page.request.get("/feed.atom")
    assert feed.ok and "Login emails delayed" in feed.text()


def test_status_page_reads_without_javascript(playwright_browser, checkstack_server):
    url = checkstack_server.url
    cookie = onboard_by_api(url)
    seed(url, cookie)
    context = playwright_browser.new_context(base_url=url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/")
        assert page.get_by_role("article", name="Elevated error rates on the API").is_visible()
        page.get_by_role("link", name="Public API").click()
        page.wait_for_url("**/systems/**")
        assert page.get_by_role("heading", name="Public API", level=1).is_visible()
        assert "Elevated error rates on the API" in page.content()
    finally:
        context.close()


def test_status_page_fits_a_phone(playwright_browser, checkstack_server, screenshot):
    url = checkstack_server.url
    cookie = onboard_by_api(url)
    seed(url, cookie)
    context = playwright_browser.new_context(
        base_url=url, viewport={"width": 360, "height": 740}, color_scheme="dark"
    )
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_role("article", name="Elevated error rates on the API").wait_for()
        # Nothing wider than the screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # The dark theme is in force.
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(13, 17, 23)"
        screenshot(page, "status-page-phone-dark")
    finally:
        context.close()
