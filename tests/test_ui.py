"""The core's UI machinery, in process: the hello example's page, the vendored htmx, the
headers every page gets, the cross-site check of form posts and mutations refused on GET."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

import checkstack_core.ui.server as ui_server

ORIGIN = {"Origin": "http://testserver"}
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_the_vendored_htmx_is_the_published_file():
    path = Path(ui_server.__file__).parent / "static" / f"htmx-{ui_server.HTMX_VERSION}.min.js"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == HTMX_SHA256


async def test_hello_page_reads_as_the_visitor(checkstack_http: httpx.AsyncClient):
    page = await checkstack_http.get("/hello", params={"name": "Ann"})
    assert page.status_code == 200
    assert '<p id="greeting">Hello, Ann!</p>' in page.text
    assert '<a href="/hello" aria-current="page">Greeting</a>' in page.text
    for name, value in ui_server.SECURITY_HEADERS.items():
        assert page.headers[name] == value
    # Every asset the page names is served by this server.
    for asset in ("/static/core/app.css", "/static/core/app.js", "/static/core/htmx-2.0.11.min.js"):
        assert asset in page.text
        served = await checkstack_http.get(asset)
        assert served.status_code == 200, asset
    assert "//" not in page.text.split("<body>")[0].replace("http://www.w3.org", "")


async def test_hello_form_shows_the_api_refusal(checkstack_http: httpx.AsyncClient):
    # A guest lacks hello.hello.manage: the dispatcher refuses, the page says why.
    refused = await checkstack_http.post("/hello", data={"template": "Hi {name}"}, headers=ORIGIN)
    assert refused.status_code == 401
    assert '<p class="field-error" id="template-error" role="alert">Authentication required' in (
        refused.text
    )


async def test_hello_form_saves_for_a_manager(checkstack_http, checkstack_auth):
    manager = checkstack_auth.user("hello.hello.manage")
    saved = await checkstack_http.post(
        "/hello", data={"template": "Good day, {name}."}, headers={**ORIGIN, **manager.headers}
    )
    assert saved.status_code == 303
    page = await checkstack_http.get("/hello")
    assert "Good day, world." in page.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
)
async def test_cross_site_form_posts_are_refused_before_the_page_runs(
    checkstack_http, checkstack_auth, headers
):
    manager = checkstack_auth.user("hello.hello.manage")
    response = await checkstack_http.post(
        "/hello", data={"template": "Pwned {name}"}, headers={**headers, **manager.headers}
    )
    assert response.status_code == 403
    assert "Cross-site request refused" in response.text
    assert "Pwned" not in (await checkstack_http.get("/hello")).text


async def test_a_mutation_on_get_is_a_programming_error(checkstack_host, checkstack_auth):
    from litestar import Litestar

    from checkstack_core.ui.server import UiServer

    async def sneaky(view):
        await view.call("hello", "setGreeting", {"template": "GET {name}"})

    ui = UiServer(checkstack_host)
    ui.registry.page("/sneaky", sneaky, methods=["GET"])
    app = Litestar(route_handlers=ui.route_handlers(), template_config=ui.template_config())
    manager = checkstack_auth.user("hello.hello.manage")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get("/sneaky", headers=manager.headers)
        assert response.status_code == 500
        assert "Internal server error" in response.text
        assert "Hello, world!" in (await http.get("/hello")).text  # nothing was changed


async def test_api_paths_are_untouched(checkstack_http):
    response = await checkstack_http.post("/api/hello/", json={"getGreeting": {}})
    assert response.json() == {"getGreeting": {"message": "Hello, world!"}}
    assert "content-security-policy" not in response.headers
    missing = await checkstack_http.get("/api/nope/x")
    assert missing.headers["content-type"].startswith("application/json")
