"""Hostile input is a 400 on every decoding path, before authentication, and never a 500.

Each case runs on the documented body, the oRPC body, the oRPC batch (body, item body and item
``GET ?data=``), the oRPC ``GET ?data=`` and the oRPC ``meta``: JSON nested too deep, invalid
UTF-8, datetimes out of range, malformed meta, ambiguous credentials and hostile batch items.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

import pytest

from checkstack_core import Context, Contract, Handlers, Plugin, Schema, mutation, query
from checkstack_core.context import Cookie
from checkstack_core.limits import MAX_JSON_DEPTH, json_too_deep

BATCH = "/api/hostile/echo/__batch__"
BUFFERED = {"x-orpc-batch": "buffered", "content-type": "application/json"}


class Times(Schema):
    at: dt.datetime
    also: list[dt.datetime] = []


class DayAfter(Schema):
    day_after: dt.datetime


class Anything(Schema):
    value: Any = None


class Greeting(Schema):
    message: str


contract = Contract(
    "hostile",
    procedures=[
        query("dayAfter", input=Times, output=DayAfter, caller="anonymous"),
        mutation("echo", input=Anything, output=Anything, caller="anonymous"),
        mutation("signIn", output=Greeting, caller="anonymous", sets_cookies=True),
    ],
)
handlers = Handlers(contract)


@handlers.implement("dayAfter")
async def day_after(ctx: Context, input: Times) -> DayAfter:
    # Converting to UTC and adding a day is what real handlers do; both overflow at the edges.
    return DayAfter(day_after=input.at.astimezone(dt.UTC) + dt.timedelta(days=1))


@handlers.implement("echo")
async def echo(ctx: Context, input: Anything) -> Anything:
    return input


@handlers.implement("signIn")
async def sign_in(ctx: Context, input: None) -> Greeting:
    ctx.response.cookies.append(Cookie("checkstack_session", "cs_secret", max_age=60))
    return Greeting(message="signed in")


plugin = Plugin(id="hostile", name="Hostile input fixture", contract=contract, handlers=handlers)


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_hello import plugin as hello

    return [hello, plugin]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def documented_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


def orpc_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"json", "meta"}
    error = body["json"]
    assert error["code"] == code and error["status"] == status and error["message"], error
    return error


def item_error(result: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    assert result["status"] == status, result
    error = result["body"]["json"]
    assert error["code"] == code and error["message"], error
    return error


def data_query(document: Any) -> str:
    return "data=" + quote(json.dumps(document))


# -- the depth check itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "too_deep"),
    [
        (nested(MAX_JSON_DEPTH), False),
        (nested(MAX_JSON_DEPTH + 1), True),
        (b"[{" * 32 + b"}]" * 32, False),
        (b"[{" * 33 + b"}]" * 33, True),
        # brackets inside strings (escaped quotes and backslashes included) do not count
        (b'["' + b"[" * 200 + b'"]', False),
        (b'["\\"' + b"[" * 200 + b'"]', False),
        (b'["\\\\", ' + b"[" * 70 + b"1" + b"]" * 70 + b"]", True),
        # a string holding closing brackets cannot hide real nesting
        (b'["' + b"]" * 100 + b'", ' + nested(100) + b"]", True),
        (b"[" * 100, False),  # unbalanced: malformed, left to the decoder
    ],
)
def test_json_depth(text: bytes, too_deep: bool) -> None:
    assert json_too_deep(text) is too_deep


# -- nesting and UTF-8 on every decoding path ----------------------------------------------------


HOSTILE_BODIES = {
    "deep": nested(1000),
    "just too deep": b'{"echo": {"value": ' + nested(MAX_JSON_DEPTH - 1) + b"}}",
    "invalid UTF-8 in a string": b'{"echo": {"value": "\xff\xfe"}}',
    "invalid UTF-8 in a key": b'{"echo": {"\xc3": 1}}',
    "overlong UTF-8": b'{"echo": {"value": "\xc0\xaf"}}',
    "UTF-8 surrogate": b'{"echo": {"value": "\xed\xa0\x80"}}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
async def test_documented_body(checkstack_http, body: bytes) -> None:
    response = await checkstack_http.post(
        "/api/hostile/", content=body, headers={"content-type": "application/json"}
    )
    documented_error(response, 400, "BAD_REQUEST")


async def test_documented_depth_limit_is_inclusive(checkstack_http) -> None:
    # echo's value sits at depth 2 (the body and the input object): 62 more levels fit.
    body = b'{"echo": {"value": ' + nested(MAX_JSON_DEPTH - 2) + b"}}"
    response = await checkstack_http.post("/api/hostile/", content=body)
    assert response.status_code == 200, response.text


ORPC_BODIES = {
    "deep": b'{"json": {"value": ' + nested(1000) + b"}}",
    "invalid UTF-8": b'{"json": {"value": "\xff"}}',
    "invalid UTF-8 in a key": b'{"json": {"\xff": 1}}',
}


@pytest.mark.parametrize("body", ORPC_BODIES.values(), ids=ORPC_BODIES.keys())
async def test_orpc_body(checkstack_http, body: bytes) -> None:
    response = await checkstack_http.post(
        "/api/hostile/echo", content=body, headers={"content-type": "application/json"}
    )
    orpc_error(response, 400, "BAD_REQUEST")


GET_QUERIES = {
    "deep": "data=" + quote(nested(1000)),
    "invalid UTF-8": "data=%7B%22json%22%3A%7B%22at%22%3A%22%FF%22%7D%7D",
    "raw invalid UTF-8": "data=%FF",
}


@pytest.mark.parametrize("query_string", GET_QUERIES.values(), ids=GET_QUERIES.keys())
async def test_orpc_get_data(checkstack_http, query_string: str) -> None:
    response = await checkstack_http.get(f"/api/hostile/dayAfter?{query_string}")
    orpc_error(response, 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
async def test_orpc_batch_body(checkstack_http, body: bytes) -> None:
    response = await checkstack_http.post(BATCH, content=body, headers=BUFFERED)
    orpc_error(response, 400, "BAD_REQUEST")


async def test_orpc_batch_get(checkstack_http) -> None:
    response = await checkstack_http.get(
        f"{BATCH}?batch={quote(nested(1000))}", headers={"x-orpc-batch": "buffered"}
    )
    orpc_error(response, 400, "BAD_REQUEST")


async def test_orpc_batch_item_get_data(checkstack_http) -> None:
    items = [
        {"url": f"http://testserver/api/hostile/dayAfter?{query}", "method": "GET"}
        for query in GET_QUERIES.values()
    ]
    response = await checkstack_http.post(BATCH, json=items, headers=BUFFERED)
    assert response.status_code == 207
    for result in response.json():
        item_error(result, 400, "BAD_REQUEST")


# -- datetimes out of range: refused by validation, for every plugin -----------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+05:00",  # overflows when converted to UTC
    "9999-12-31T23:00:00-05:00",  # likewise, the other way
    "9999-12-31T00:00:00Z",  # a day after it is out of range
    "0001-01-01T00:00:00",  # naive, read as UTC: a day before it is out of range
]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_out_of_range_times_documented(checkstack_http, value: str) -> None:
    response = await checkstack_http.post(
        "/api/hostile/", json={"dayAfter": {"at": "2026-01-01T00:00:00Z", "also": [value]}}
    )
    body = documented_error(response, 400, "BAD_REQUEST")
    assert body["data"]["issues"][0]["path"] == ["also", 0]
    assert "out of range" in body["data"]["issues"][0]["message"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_out_of_range_times_orpc(checkstack_http, value: str) -> None:
    envelope = {"json": {"at": value}, "meta": [[1, "at"]]}
    post = await checkstack_http.post("/api/hostile/dayAfter", json=envelope)
    error = orpc_error(post, 400, "BAD_REQUEST")
    assert error["data"]["issues"][0]["path"] == ["at"]
    get = await checkstack_http.get(f"/api/hostile/dayAfter?{data_query(envelope)}")
    orpc_error(get, 400, "BAD_REQUEST")
    items = [
        {"url": "http://testserver/api/hostile/dayAfter", "body": envelope},
        {"url": f"http://testserver/api/hostile/dayAfter?{data_query(envelope)}", "method": "GET"},
    ]
    batch = await checkstack_http.post(BATCH, json=items, headers=BUFFERED)
    for result in batch.json():
        item_error(result, 400, "BAD_REQUEST")


async def test_times_near_the_edges_are_fine(checkstack_http) -> None:
    response = await checkstack_http.post(
        "/api/hostile/",
        json={"dayAfter": {"at": "9999-12-29T12:00:00+01:00", "also": ["0001-01-02T00:00:00Z"]}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["dayAfter"]["dayAfter"] == "9999-12-30T11:00:00Z"


async def test_year_one_text_in_free_form_input_is_not_a_time(checkstack_http) -> None:
    response = await checkstack_http.post(
        "/api/hostile/", json={"echo": {"value": {"note": "0001-01-01T00:00:00+05:00"}}}
    )
    assert response.status_code == 200, response.text


# -- oRPC meta -------------------------------------------------------------------------------------

BAD_META = {
    "Map with a null key": ({"value": [[None, 1]]}, [[7, "value"]]),
    "Map with a number key": ({"value": [[1, 1]]}, [[7, "value"]]),
    "Map with a nested key": ({"value": [[["a"], 1]]}, [[7, "value"]]),
    "path through a string": ({"value": "text"}, [[1, "value", "x"]]),
    "negative index": ({"value": [1]}, [[0, "value", -1]]),
    "boolean index": ({"value": ["1"]}, [[0, "value", True]]),
    "unknown type": ({"value": 1}, [[99, "value"]]),
    "not a list": ({"value": 1}, [["value"]]),
    "meta not a list": ({"value": 1}, {"0": 1}),
}


@pytest.mark.parametrize(("value", "meta"), BAD_META.values(), ids=BAD_META.keys())
async def test_bad_meta(checkstack_http, value: Any, meta: Any) -> None:
    envelope = {"json": value, "meta": meta}
    orpc_error(await checkstack_http.post("/api/hostile/echo", json=envelope), 400, "BAD_REQUEST")
    batch = await checkstack_http.post(
        BATCH,
        json=[{"url": "http://testserver/api/hostile/echo", "body": envelope}],
        headers=BUFFERED,
    )
    item_error(batch.json()[0], 400, "BAD_REQUEST")


async def test_map_with_string_keys_still_works(checkstack_http) -> None:
    envelope = {"json": {"value": [["a", 1], ["b", 2]]}, "meta": [[7, "value"]]}
    response = await checkstack_http.post("/api/hostile/echo", json=envelope)
    assert response.status_code == 200, response.text
    assert response.json()["json"] == {"value": {"a": 1, "b": 2}}


# -- batches: cookie setters, hostile item headers, GET batches ----------------------------------


async def test_cookie_setters_are_refused_in_batches(checkstack_http) -> None:
    items = [
        {"url": "http://testserver/api/hostile/echo", "body": {"json": {"value": 1}}},
        {"url": "http://testserver/api/hostile/signIn", "body": {}},
    ]
    for mode in ("buffered", "streaming"):
        response = await checkstack_http.post(
            BATCH, json=items, headers={**BUFFERED, "x-orpc-batch": mode}
        )
        error = orpc_error(response, 400, "BAD_REQUEST")
        assert "hostile.signIn" in error["message"] and "sets cookies" in error["message"]
        assert "cs_secret" not in response.text
    # On its own, the cookie is a real Set-Cookie header.
    alone = await checkstack_http.post("/api/hostile/signIn", json={})
    assert alone.status_code == 200
    assert alone.cookies["checkstack_session"] == "cs_secret"
    assert "cs_secret" not in alone.text


def test_the_auth_plugin_declares_its_cookie_setters() -> None:
    from checkstack_auth.contract import contract as auth_contract

    setters = {p.name for p in auth_contract.procedures if p.sets_cookies}
    assert setters == {"login", "logout", "completeOnboarding"}


BAD_ITEM_HEADERS: dict[str, dict[str, Any]] = {
    "NUL in user agent": {"user-agent": "evil\u0000agent"},
    "line feed": {"x-note": "a\nforged: line"},
    "control in name": {"x-\u0001": "a"},
    "two authorizations": {"authorization": ["Bearer ck_a_b", "Bearer ck_c_d"]},
    "number value": {"x-count": 3},
    "object value": {"x-thing": {"a": 1}},
    "session cookie twice": {"cookie": "checkstack_session=cs_a; checkstack_session=cs_b"},
}


@pytest.mark.parametrize("headers", BAD_ITEM_HEADERS.values(), ids=BAD_ITEM_HEADERS.keys())
async def test_hostile_item_headers(checkstack_http, headers: dict[str, Any]) -> None:
    items = [{"url": "http://testserver/api/hostile/echo", "body": {}, "headers": headers}]
    response = await checkstack_http.post(BATCH, json=items, headers=BUFFERED)
    orpc_error(response, 400, "BAD_REQUEST")


async def test_harmless_item_headers_pass(checkstack_http) -> None:
    headers = {"user-agent": "agent\t1.0", "cookie": ["a=1", "a=2"], "x-list": ["a", "b"]}
    items = [{"url": "http://testserver/api/hostile/echo", "body": {}, "headers": headers}]
    response = await checkstack_http.post(BATCH, json=items, headers=BUFFERED)
    assert response.status_code == 207
    assert response.json()[0]["status"] == 200


async def test_a_get_batch_cannot_carry_other_methods(checkstack_http) -> None:
    items = [{"url": "http://testserver/api/hostile/echo", "method": "POST", "body": {}}]
    response = await checkstack_http.get(
        f"{BATCH}?batch={quote(json.dumps(items))}", headers={"x-orpc-batch": "buffered"}
    )
    orpc_error(response, 400, "BAD_REQUEST")
    # Without a method, GET items stay GET: a mutation is refused, nothing runs.
    items = [{"url": "http://testserver/api/hostile/echo"}]
    response = await checkstack_http.get(
        f"{BATCH}?batch={quote(json.dumps(items))}", headers={"x-orpc-batch": "buffered"}
    )
    item_error(response.json()[0], 405, "METHOD_NOT_SUPPORTED")


# -- ambiguous credentials -------------------------------------------------------------------------

TWO_AUTHORIZATIONS = [("authorization", "Bearer ck_a_b"), ("authorization", "Bearer ck_c_d")]
TWO_SESSIONS = [("cookie", "checkstack_session=cs_a_b"), ("cookie", "checkstack_session=cs_c_d")]


@pytest.mark.parametrize("headers", [TWO_AUTHORIZATIONS, TWO_SESSIONS], ids=["auth", "cookie"])
async def test_ambiguous_credentials(checkstack_http, headers: list[tuple[str, str]]) -> None:
    json_headers = [*headers, ("content-type", "application/json")]
    documented = await checkstack_http.post(
        "/api/hello/", json={"getGreeting": {}}, headers=json_headers
    )
    body = documented_error(documented, 400, "BAD_REQUEST")
    assert "more than once" in body["message"] or "More than one" in body["message"]
    orpc_error(
        await checkstack_http.post("/api/hello/getGreeting", json={}, headers=json_headers),
        400,
        "BAD_REQUEST",
    )
    orpc_error(
        await checkstack_http.get("/api/hello/getGreeting", headers=headers), 400, "BAD_REQUEST"
    )
    orpc_error(
        await checkstack_http.post(
            "/api/hello/getGreeting/__batch__",
            json=[{"url": "http://testserver/api/hello/getGreeting"}],
            headers=[*json_headers, ("x-orpc-batch", "buffered")],
        ),
        400,
        "BAD_REQUEST",
    )


async def test_repeated_unrelated_cookies_are_fine(checkstack_http) -> None:
    # Browsers send a parent domain's cookie and the host's under the same name: not ours.
    headers = [("cookie", "_ga=1; _ga=2"), ("cookie", "checkstack_session=cs_same")]
    headers.append(("cookie", "checkstack_session=cs_same"))
    response = await checkstack_http.post(
        "/api/hostile/", json={"echo": {}}, headers=[*headers, ("origin", "http://testserver")]
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["evil\x00agent", "a\x01b", "a\x7fb"])
async def test_control_characters_in_request_headers(checkstack_http, value: str) -> None:
    headers = {"user-agent": value, "content-type": "application/json"}
    documented_error(
        await checkstack_http.post("/api/hostile/", json={"echo": {}}, headers=headers),
        400,
        "BAD_REQUEST",
    )
    orpc_error(
        await checkstack_http.post("/api/hostile/echo", json={}, headers=headers),
        400,
        "BAD_REQUEST",
    )


async def test_the_plugin_report_refuses_two_authorizations(checkstack_http) -> None:
    response = await checkstack_http.get("/api/plugins", headers=TWO_AUTHORIZATIONS)
    documented_error(response, 400, "BAD_REQUEST")
