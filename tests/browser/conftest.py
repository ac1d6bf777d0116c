"""Browser tests: a real Chromium (Debian's ``chromium`` package, never a downloaded browser)
driven by Playwright for Python against a real ``checkstack serve`` process.

Skipped only where ``chromium`` is not installed; CI installs it and lists it in
``CHECKSTACK_REQUIRED_TOOLS``, which turns such a skip into a failure. ``CHECKSTACK_CHROMIUM``
names another executable. axe-core comes from this folder's npm package (``npm ci`` runs when
it is missing).

``CHECKSTACK_UI_SCREENSHOTS=1`` makes the tests save screenshots of the main pages into
``docs/screenshots/`` (normal runs leave the docs alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "Admin-pass-123"
ADMIN_EMAIL = "admin@example.com"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = os.environ.get("CHECKSTACK_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip(
            "chromium is not installed (apt-get install chromium): the browser tests need it"
        )
    return path


@pytest.fixture
def playwright_browser(chromium_executable: str, checkstack_server: Any) -> Iterator[Any]:
    """A Chromium for one test. Started after the server (and its async database fixture):
    Playwright's sync API runs an event loop of its own in this thread while it lives."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable,
            # Root in a container has no user namespaces for Chromium's sandbox.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_context(playwright_browser: Any, checkstack_server: Any) -> Iterator[Any]:
    context = playwright_browser.new_context(
        base_url=checkstack_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Any:
    return browser_context.new_page()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, from this folder's npm package."""
    installed = HERE / "node_modules" / "axe-core" / "axe.min.js"
    lock = HERE / "package-lock.json"
    marker = HERE / "node_modules" / ".package-lock.json"
    if not marker.is_file() or marker.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed: the accessibility checks need axe-core from it")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return installed.read_text()


@pytest.fixture
def screenshot() -> Callable[[Any, str], None]:
    """``screenshot(page, "name")``: saved into docs/screenshots/ only when asked for."""
    wanted = os.environ.get("CHECKSTACK_UI_SCREENSHOTS") == "1"

    def take(page: Any, name: str) -> None:
        if wanted:
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


def api(
    url: str,
    plugin: str,
    procedure: str,
    input: Any = None,
    token: str | None = None,
    cookie: str | None = None,
) -> httpx.Response:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"checkstack_session={cookie}"
    return httpx.post(
        f"{url}/api/{plugin}/", json={procedure: input or {}}, headers=headers, timeout=10
    )


def eventually(check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(interval)


def onboard_in_browser(page: Any) -> None:
    """Sign in for the first time: the status page's Sign in link leads to onboarding."""
    page.goto("/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url("**/onboarding")
    page.get_by_label("Name").fill("Ada Admin")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create administrator").click()
    page.wait_for_url("**/auth/settings/**")


def run_axe(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the current page (WCAG 2.x A and AA)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol: the pages' CSP (no inline or eval'd
        # scripts) stays in force for everything else.
        page.evaluate(axe_source + "\n;0")
    result = page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}
        })).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                   nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def onboard_by_api(url: str) -> str:
    """The first administrator, created through the API; returns the session cookie."""
    response = api(url, "auth", "completeOnboarding", {"email": ADMIN_EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.cookies["checkstack_session"]


def call_ok(url: str, cookie: str, plugin: str, procedure: str, input: Any = None) -> Any:
    response = api(url, plugin, procedure, input, cookie=cookie)
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def sign_in(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
