"""Cross-site request forgery: a cookie-authenticated POST must declare a JSON body and come from
this server's origin, on both protocols and in oRPC batches; an ``Authorization`` header (which
a cross-site page cannot add) is unaffected, and a GET can never change state.

The core cannot tell a session cookie from another, so any cookie without an ``Authorization``
header counts as cookie authentication: the hello plugin's anonymous-callable procedures are
enough to see every refusal (they come before authentication).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from checkstack_core.settings import Settings

COOKIE = {"cookie": "checkstack_session=cs_victim_session"}
JSON = {"content-type": "application/json"}
EVIL = {"origin": "https://evil.example"}
GREETING = {"template": "Hi {name}"}


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        base_url="https://status.example.com/",
    )


def documented_call(headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return "/api/hello/", {"content": json.dumps({"getGreeting": {}}), "headers": headers}


def orpc_call(headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return "/api/hello/getGreeting", {"content": "{}", "headers": headers}


def batch_call(headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    items = [{"url": "http://testserver/api/hello/getGreeting", "body": {}}]
    return "/api/hello/getGreeting/__batch__", {
        "content": json.dumps(items),
        "headers": {**headers, "x-orpc-batch": "buffered"},
    }


CALLS = {"documented": documented_call, "orpc": orpc_call, "batch": batch_call}


def error_of(response: Any) -> dict[str, Any]:
    """The error of either protocol's shape: ``{code, message}`` or oRPC's ``{json: {...}}``."""
    body = response.json()
    return body["json"] if set(body) == {"json", "meta"} else body


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_a_cookie_post_without_content_type_is_refused(checkstack_http, call) -> None:
    path, options = call({**COOKIE, **EVIL})
    response = await checkstack_http.post(path, **options)
    assert response.status_code == 415, response.text
    error = error_of(response)
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in error["message"]


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize(
    "cross_site",
    [
        EVIL,
        {"origin": "null"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "https://testserver"},  # another scheme is another origin
        {"origin": "http://testserver", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
    ],
    ids=["evil", "null", "suffix", "scheme", "origin-and-fetch-site", "fetch-site"],
)
async def test_a_cross_site_cookie_post_is_forbidden(
    checkstack_http, call, cross_site: dict[str, str]
) -> None:
    path, options = call({**COOKIE, **JSON, **cross_site})
    response = await checkstack_http.post(path, **options)
    assert response.status_code == 403, response.text
    error = error_of(response)
    assert error["code"] == "FORBIDDEN"
    assert error["message"].startswith("Cross-site request refused")


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize(
    "same_site",
    [
        {},  # no Origin (a same-origin GET-less client, curl)
        {"origin": "http://testserver"},
        {"origin": "http://TestServer:80"},
        {"origin": "https://status.example.com"},  # CHECKSTACK_BASE_URL
        {"origin": "https://status.example.com:443", "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "same-site"},
    ],
    ids=["none", "host", "host-default-port", "base-url", "base-url-port", "same-site"],
)
async def test_a_same_origin_cookie_post_passes(
    checkstack_http, call, same_site: dict[str, str]
) -> None:
    path, options = call({**COOKIE, **JSON, **same_site})
    response = await checkstack_http.post(path, **options)
    assert response.status_code in (200, 207), response.text


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_an_authorization_header_is_unaffected(
    checkstack_http, checkstack_auth, call
) -> None:
    caller = checkstack_auth.user("hello.hello.read")
    # No content type, a cross-site Origin, and a cookie: the header says a script sent it.
    path, options = call({**COOKIE, **EVIL, "authorization": f"Bearer {caller.token}"})
    response = await checkstack_http.post(path, **options)
    assert response.status_code in (200, 207), response.text


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_without_cookies_a_missing_content_type_is_still_json(checkstack_http, call) -> None:
    path, options = call(EVIL)
    response = await checkstack_http.post(path, **options)
    assert response.status_code in (200, 207), response.text


async def test_nothing_changed_after_refused_mutations(checkstack_http, checkstack_auth) -> None:
    manager = checkstack_auth.user("hello.hello.manage", "hello.hello.read")
    body = json.dumps({"setGreeting": GREETING})
    attempts = [
        ("/api/hello/", {"content": body, "headers": {**COOKIE, **EVIL}}),
        ("/api/hello/", {"content": body, "headers": {**COOKIE, **JSON, **EVIL}}),
        ("/api/hello/setGreeting", {"json": {"json": GREETING}, "headers": {**COOKIE, **EVIL}}),
        (
            "/api/hello/setGreeting/__batch__",
            {
                "json": [{"url": "http://testserver/api/hello/setGreeting", "body": {}}],
                "headers": {**COOKIE, **EVIL, "x-orpc-batch": "buffered"},
            },
        ),
    ]
    for path, options in attempts:
        response = await checkstack_http.post(path, **options)
        assert response.status_code in (403, 415), response.text
    greeting = await checkstack_http.post(
        "/api/hello/", json={"getGreeting": {}}, headers=manager.headers
    )
    assert "Hi" not in greeting.text
    # The same mutation with the key in a header goes through: the refusals above were CSRF's.
    changed = await checkstack_http.post(
        "/api/hello/", content=body, headers={**EVIL, **manager.headers}
    )
    assert changed.status_code == 200, changed.text


async def test_a_get_never_mutates_even_with_cookies(checkstack_http) -> None:
    data = quote(json.dumps({"json": GREETING}))
    response = await checkstack_http.get(
        f"/api/hello/setGreeting?data={data}", headers={**COOKIE, **EVIL}
    )
    assert response.status_code == 405, response.text
    # Reading a query over GET stays possible (a cross-site page cannot read the answer).
    read = await checkstack_http.get("/api/hello/getGreeting", headers={**COOKIE, **EVIL})
    assert read.status_code == 200, read.text
