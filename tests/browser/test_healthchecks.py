"""Health checks in a real browser: an HTTP check created through the form its strategy's JSON
schema generates (the API's refusal shown beside the field, the secret header masked and
never sent back to the page), assigned to a system and run now, its result in the history with
the latency chart; the visitor's status page with the system's 90-day uptime bars; axe-core on
every new page."""

from __future__ import annotations

import importlib.util
import re

import pytest

from .conftest import call_ok, onboard_by_api, run_axe, sign_in

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("checkstack_healthcheck_http") is None,
    reason="the healthcheck plugin and its HTTP strategy are not installed",
)
SECRET = "Bearer s3cr3t-t0ken"


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": "browser-tests-not-for-production",
    }


def test_a_check_from_the_strategy_form_to_the_status_page(
    page, checkstack_server, axe_source, screenshot
):
    url = checkstack_server.url
    cookie = onboard_by_api(url)
    system = call_ok(url, cookie, "catalog", "createSystem", {"name": "Storefront"})
    violations: dict[str, object] = {}

    def check(name: str) -> None:
        found = run_axe(page, axe_source)
        if found:
            violations[name] = found
        screenshot(page, name)

    sign_in(page)
    page.get_by_role("link", name="Health checks").click()
    page.get_by_role("link", name="Create Health Check").click()
    page.get_by_role("link", name="Create HTTP check").click()

    # The generated form: the check's own fields, then the strategy's config.
    page.get_by_label("Name", exact=True).fill("Storefront answers")
    page.get_by_label("Url").fill(f"{url}/readyz")
    page.get_by_label("Expected status codes").fill("200\n700")
    page.get_by_label("Name 1").fill("Authorization")
    page.get_by_label("Secret value 1").fill(SECRET)
    assert page.get_by_label("Secret value 1").get_attribute("type") == "password"
    page.get_by_role("button", name="Create", exact=True).click()

    # Refused by the API: its message beside the field, what was typed kept, never the secret.
    error = page.locator("#sf-config-expectedStatusCodes-error")
    assert "599" in error.inner_text()
    assert page.get_by_label("Expected status codes").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Url").input_value() == f"{url}/readyz"
    assert SECRET not in page.content()
    check("healthcheck-form")

    page.get_by_label("Expected status codes").fill("200")
    page.get_by_label("Name 1").fill("Authorization")
    page.get_by_label("Secret value 1").fill(SECRET)
    page.get_by_role("button", name="Create", exact=True).click()
    page.wait_for_url(re.compile(r"/healthchecks/[0-9a-f-]{36}$"))

    # Stored: the secret reads as the mask in the edit form, in a password input.
    page.get_by_text("Edit Storefront answers").click()
    secret = page.get_by_label("Secret value 1")
    assert secret.get_attribute("type") == "password" and secret.input_value() == "********"
    assert SECRET not in page.content()

    page.get_by_label("Assign to", exact=True).select_option(label="Storefront")
    page.get_by_role("button", name="Assign", exact=True).click()
    page.get_by_label("Run now for", exact=True).select_option(label="Storefront")
    page.get_by_role("button", name="Run now").click()
    runs = page.get_by_role("table", name="Recent runs of Storefront answers")
    # (The scheduler may have run it too, once it was assigned.)
    ran = runs.get_by_role("row").filter(has_text="(just now)")
    assert "Operational" in ran.inner_text()
    check("healthcheck")

    # The system's history: the run, its latency on the chart, availability.
    page.get_by_role("table", name="Systems Storefront answers runs for").get_by_role(
        "link",
        name="Storefront",
        exact=True,  # not "Unassign Storefront"
    ).click()
    page.wait_for_url(f"**/systems/{system['id']}/health")
    assert page.get_by_role("img", name=re.compile(r"^Latency of \d+ runs")).is_visible()
    assert "Operational" in page.get_by_role("table", name="Runs of Storefront").inner_text()
    assert "100 %" in page.get_by_role("list", name="Availability").inner_text()
    check("healthcheck-history")

    # A visitor's status page: the system with its 90-day bars, today's bar with its tooltip.
    visitor = page.context.browser.new_context(base_url=url)
    try:
        public = visitor.new_page()
        public.goto("/")
        entry = public.get_by_role("listitem").filter(
            has=public.get_by_role("link", name="Storefront")
        )
        bars = entry.get_by_role("img", name="100 % up over the last 90 days")
        assert bars.is_visible()
        today = bars.locator("rect").last
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d: 100 % up, worst operational",
            today.locator("title").text_content() or "",
        )
        assert "100 % uptime" in entry.inner_text()
        screenshot(public, "status-page-uptime")
        public.goto(f"/systems/{system['id']}")
        panel = public.get_by_role("region", name="Health")
        assert "Storefront answers" in panel.inner_text()
        found = run_axe(public, axe_source)
        if found:
            violations["system-page-health"] = found
        public.goto("/")
        found = run_axe(public, axe_source)
        if found:
            violations["status-page-uptime"] = found
    finally:
        visitor.close()

    page.goto("/healthchecks")
    check("healthchecks")
    assert not violations, violations
