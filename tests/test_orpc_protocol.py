"""The oRPC v1 RPC protocol (SPEC §4.2) over HTTP, in process: envelopes, dates, every error
code of SPEC §4.3 in oRPC's shape, the batch plugin in both modes, the contract documents and
the routes it shares with the documented protocol."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import pytest

from checkstack_core.protocols import orpc
from checkstack_core.settings import Settings

_FIXTURE_PATH = Path(__file__).parent / "orpc-client" / "fixture_server.py"


def _load_fixture() -> Any:
    name = "checkstack_orpc_fixture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _FIXTURE_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fixture = _load_fixture()

ERROR_KEYS = {"defined", "code", "status", "message", "data"}
BATCH = "/api/hello/getGreeting/__batch__"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_hello import plugin as hello

    return [hello, fixture.plugin, fixture.broken]


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    # Not strict: the broken plugin must fail alone so SERVICE_UNAVAILABLE can be observed.
    return Settings(database_url=checkstack_database_url, strict_plugins=False)


def assert_error(response: Any, code: str, status: int, message: str | None = None) -> dict:
    """The response is an oRPC error with exactly the keys the client accepts."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"json", "meta"}
    assert body["meta"] == []
    error = body["json"]
    assert set(error) == ERROR_KEYS
    assert error["defined"] is False
    assert error["code"] == code
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["data"], dict)
    if message is not None:
        assert error["message"] == message
    return error


def envelope(value: Any = None, meta: list | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if value is not None:
        body["json"] = value
    if meta is not None:
        body["meta"] = meta
    return body


def get_url(path: str, body: dict[str, Any]) -> str:
    from urllib.parse import quote

    return f"{path}?data={quote(json.dumps(body))}"


def bearer(caller: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.token}"}


# -- calls ------------------------------------------------------------------------------------


async def test_query_with_and_without_input_matches_the_documented_protocol(checkstack_http):
    documented = await checkstack_http.post("/api/hello/", json={"getGreeting": {"name": "Ann"}})
    response = await checkstack_http.post("/api/hello/getGreeting", json=envelope({"name": "Ann"}))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"json": documented.json()["getGreeting"], "meta": []}

    for request in (
        checkstack_http.post("/api/hello/getGreeting", json={}),
        checkstack_http.post("/api/hello/getGreeting", content=b""),
        checkstack_http.post("/api/hello/getGreeting", json={"json": None}),
        checkstack_http.get("/api/hello/getGreeting"),
        checkstack_http.get(get_url("/api/hello/getGreeting", {})),
    ):
        answer = await request
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"json": {"message": "Hello, world!"}, "meta": []}

    by_get = await checkstack_http.get(get_url("/api/hello/getGreeting", envelope({"name": "Bo"})))
    assert by_get.json() == {"json": {"message": "Hello, Bo!"}, "meta": []}
    # Trailing slash, as some HTTP clients add it.
    slash = await checkstack_http.post("/api/hello/getGreeting/", json=envelope({"name": "Cy"}))
    assert slash.json()["json"] == {"message": "Hello, Cy!"}


async def test_mutation_runs_for_a_caller_holding_the_rule(checkstack_http, checkstack_auth):
    manager = checkstack_auth.application("hello.hello.manage")
    response = await checkstack_http.post(
        "/api/hello/setGreeting",
        json=envelope({"template": "Hey {name}"}),
        headers=bearer(manager),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"json": {"template": "Hey {name}"}, "meta": []}
    after = await checkstack_http.post("/api/hello/getGreeting", json=envelope({"name": "Ann"}))
    assert after.json()["json"] == {"message": "Hey Ann"}


async def test_procedure_without_input_or_output_answers_an_empty_envelope(checkstack_http):
    for request in (
        checkstack_http.post("/api/orpcfixture/touch", json={}),
        checkstack_http.post("/api/orpcfixture/touch", content=b""),
    ):
        response = await request
        assert response.status_code == 200, response.text
        assert response.json() == {}
    with_input = await checkstack_http.post("/api/orpcfixture/touch", json=envelope({"a": 1}))
    error = assert_error(with_input, "BAD_REQUEST", 400, "Input validation failed")
    assert error["data"] == {"issues": [{"message": "This procedure takes no input", "path": []}]}


async def test_handler_cookies_and_headers_reach_the_response(checkstack_http):
    response = await checkstack_http.post(
        "/api/orpcfixture/remember", json=envelope({"message": "hi"})
    )
    assert response.status_code == 200
    assert response.headers["x-remembered"] == "hi"
    assert response.cookies["remembered"] == "hi"


async def test_error_headers_reach_the_response(checkstack_http):
    response = await checkstack_http.post("/api/orpcfixture/expire", json={})
    assert_error(response, "UNAUTHORIZED", 401, "Session expired")
    assert response.headers["set-cookie"] == "session=; Max-Age=0; Path=/"
    batch = await send_batch(checkstack_http, "buffered", [item("/api/orpcfixture/expire", {})])
    assert batch[0]["headers"] == {"set-cookie": "session=; Max-Age=0; Path=/"}


# -- dates and meta -----------------------------------------------------------------------------


async def test_dates_round_trip_with_meta(checkstack_http):
    sent = {
        "at": "2024-02-29T12:30:00.000Z",
        "also": ["2024-03-01T00:00:00.000Z", "2024-03-02T00:00:00.000Z"],
        "maybe": None,
        "byName": {"launch": "2024-04-01T08:00:00.000Z"},
    }
    meta = [[1, "at"], [1, "also", 0], [1, "also", 1], [1, "byName", "launch"]]
    for request in (
        checkstack_http.post("/api/orpcfixture/echoDates", json=envelope(sent, meta)),
        checkstack_http.get(get_url("/api/orpcfixture/echoDates", envelope(sent, meta))),
    ):
        response = await request
        assert response.status_code == 200, response.text
        body = response.json()
        moments = body["json"]["moments"]
        assert moments["at"] == "2024-02-29T12:30:00Z"
        assert moments["byName"] == {"launch": "2024-04-01T08:00:00Z"}
        assert body["json"]["dayAfter"] == "2024-03-01T12:30:00Z"
        own = [[1, "moments", *path[1:]] for path in meta]
        history = [[1, "history", i, *path[1:]] for i in range(2) for path in meta]
        assert sorted(map(tuple, body["meta"]), key=repr) == sorted(
            map(tuple, [*own, [1, "dayAfter"], *history]), key=repr
        )


async def test_meta_codes_are_revived_or_refused(checkstack_http):
    bigint = await checkstack_http.post(
        "/api/orpcfixture/double", json=envelope({"n": "9007199254740993"}, [[0, "n"]])
    )
    assert bigint.json() == {
        "json": {"n": 9007199254740993, "doubled": 18014398509481986},
        "meta": [],
    }

    as_map = await checkstack_http.post(
        "/api/orpcfixture/echoDates",
        json=envelope(
            {"at": "2024-01-01T00:00:00Z", "byName": [["x", "2024-01-02T00:00:00Z"]]},
            [[1, "at"], [1, "byName", 0, 1], [7, "byName"]],
        ),
    )
    assert as_map.status_code == 200, as_map.text
    assert as_map.json()["json"]["moments"]["byName"] == {"x": "2024-01-02T00:00:00Z"}

    as_set = await checkstack_http.post(
        "/api/orpcfixture/echoDates",
        json=envelope(
            {"at": "2024-01-01T00:00:00Z", "also": ["2024-01-02T00:00:00Z"]},
            [[1, "also", 0], [6, "also"]],
        ),
    )
    assert as_set.status_code == 200, as_set.text

    invalid_date = await checkstack_http.post(
        "/api/orpcfixture/echoDates", json=envelope({"at": None}, [[1, "at"]])
    )
    error = assert_error(invalid_date, "BAD_REQUEST", 400, "Input validation failed")
    assert error["data"]["issues"][0]["path"] == ["at"]

    for meta, fragment in (
        ([[42, "n"]], "Unsupported oRPC meta type 42"),
        ([[1, "missing"]], "does not exist"),
        ([[0, "n", 0]], "does not exist"),
        ([["1", "n"]], "Malformed oRPC meta item"),
        ([[2, "n"]], "expects null"),
        ("nope", "Malformed oRPC meta"),
        ([[0, "n"]], "decimal integer"),
    ):
        value = {"n": "12x"} if "decimal" in fragment else {"n": 1}
        response = await checkstack_http.post(
            "/api/orpcfixture/double", json={"json": value, "meta": meta}
        )
        error = assert_error(response, "BAD_REQUEST", 400)
        assert fragment in error["message"], (meta, error)


def test_date_plan_is_skipped_for_outputs_without_dates():
    from checkstack_hello.contract import Greeting

    assert orpc.date_plan(Greeting) is None
    assert orpc.date_plan(None) is None
    assert orpc.date_plan(dict[str, int]) is None
    assert orpc.date_plan(fixture.Echo) is orpc.date_plan(fixture.Echo)  # cached


class Node(msgspec.Struct, rename="camel"):
    label: str
    created_at: dt.datetime | None = None
    children: list[Node] = []
    extra: Any = None


class Tagged(msgspec.Struct, tag=True):
    when: dt.datetime


class Other(msgspec.Struct, tag=True):
    text: str


class Holder(msgspec.Struct):
    item: Tagged | Other
    pairs: tuple[int, dt.datetime] = (0, dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    rows: list[Any] = []


class Pair(NamedTuple):
    label: str
    when: dt.datetime


class Extra(msgspec.Struct, array_like=True):
    pairs: list[Pair]
    by_id: dict[int, dt.datetime]


class Outer(msgspec.Struct):
    extra: Extra
    when: set[dt.datetime] = set()
    unset: dt.datetime | msgspec.UnsetType = msgspec.UNSET


def test_date_plan_walks_named_tuples_array_likes_and_int_keys():
    when = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
    plan = orpc.date_plan(Outer)
    assert plan is not None
    value = Outer(Extra([Pair("a", when), Pair("b", when)], {3: when}), when={when})
    expected = [
        [1, "extra", 0, 0, 1],
        [1, "extra", 0, 1, 1],
        [1, "extra", 1, "3"],
        [1, "when", 0],
    ]
    assert plan.meta(value) == expected
    assert plan.meta(msgspec.to_builtins(value)) == expected
    assert msgspec.json.decode(msgspec.json.encode(value))["extra"][1] == {
        "3": "2024-05-06T00:00:00Z"
    }


def test_date_plan_walks_structs_builtins_recursion_any_and_unions():
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    tree = Node(
        "root",
        children=[Node("a", created_at=when, children=[Node("b", created_at=when)])],
        extra={"k": [when, {"deep": when}], "s": Node("x", created_at=when)},
    )
    plan = orpc.date_plan(Node)
    assert plan is not None
    expected = [
        [1, "children", 0, "createdAt"],
        [1, "children", 0, "children", 0, "createdAt"],
        [1, "extra", "k", 0],
        [1, "extra", "k", 1, "deep"],
        [1, "extra", "s", "createdAt"],
    ]
    assert plan.meta(tree) == expected
    # Filtered outputs reach the serializer as builtins: dates are strings there.
    assert plan.meta(msgspec.to_builtins(Node("r", children=[Node("a", created_at=when)]))) == [
        [1, "children", 0, "createdAt"]
    ]

    holder = orpc.date_plan(Holder)
    assert holder is not None
    assert holder.meta(Holder(Tagged(when))) == [[1, "item", "when"], [1, "pairs", 1]]
    assert holder.meta(Holder(Other("t"), rows=[when])) == [[1, "pairs", 1], [1, "rows", 0]]
    encoded = msgspec.to_builtins(Holder(Tagged(when)))
    assert holder.meta(encoded) == [[1, "item", "when"], [1, "pairs", 1]]


# -- errors: every row of SPEC §4.3 -------------------------------------------------------------


async def test_bad_request(checkstack_http):
    validation = await checkstack_http.post("/api/hello/getGreeting", json=envelope({"name": 42}))
    error = assert_error(validation, "BAD_REQUEST", 400, "Input validation failed")
    assert error["data"] == {"issues": [{"message": "Expected `str`, got `int`", "path": ["name"]}]}

    unknown_field = await checkstack_http.post(
        "/api/hello/getGreeting", json=envelope({"nam": "x"})
    )
    assert assert_error(unknown_field, "BAD_REQUEST", 400)["data"]["issues"]

    malformed = await checkstack_http.post(
        "/api/hello/getGreeting",
        content=b'{"json": ',
        headers={"content-type": "application/json"},
    )
    assert_error(malformed, "BAD_REQUEST", 400, "Malformed JSON body")
    malformed_get = await checkstack_http.get("/api/hello/getGreeting?data=%7B")
    assert_error(malformed_get, "BAD_REQUEST", 400, "Malformed JSON body")

    # The raw input without the envelope must not silently run with no input.
    raw = await checkstack_http.post("/api/hello/getGreeting", json={"name": "Ann"})
    assert "Unexpected key 'name'" in assert_error(raw, "BAD_REQUEST", 400)["message"]
    not_object = await checkstack_http.post("/api/hello/getGreeting", json=[1])
    assert "oRPC envelope" in assert_error(not_object, "BAD_REQUEST", 400)["message"]


async def test_unauthorized(checkstack_http, checkstack_auth):
    anonymous = await checkstack_http.post(
        "/api/hello/setGreeting", json=envelope({"template": "x {name}"})
    )
    assert_error(anonymous, "UNAUTHORIZED", 401, "Authentication required")
    # A bad key never becomes anonymous, even on a public procedure.
    bad_key = await checkstack_http.post(
        "/api/hello/getGreeting", json={}, headers={"Authorization": "Bearer test_999"}
    )
    assert_error(bad_key, "UNAUTHORIZED", 401, "Invalid API key")
    revoked = checkstack_auth.application("hello.hello.read")
    checkstack_auth.revoke(revoked)
    revoked_get = await checkstack_http.get("/api/hello/getGreeting", headers=bearer(revoked))
    assert_error(revoked_get, "UNAUTHORIZED", 401, "Invalid API key")


async def test_forbidden(checkstack_http, checkstack_auth):
    limited = checkstack_auth.application("hello.hello.read")
    missing = await checkstack_http.post(
        "/api/hello/setGreeting", json=envelope({"template": "x {name}"}), headers=bearer(limited)
    )
    assert_error(missing, "FORBIDDEN", 403, "Missing access: hello.hello.manage")
    by_get = await checkstack_http.get("/api/orpcfixture/secret", headers=bearer(limited))
    assert_error(by_get, "FORBIDDEN", 403, "Missing access: orpcfixture.things.manage")
    users_only = await checkstack_http.post(
        "/api/orpcfixture/whoAmI", json={}, headers=bearer(limited)
    )
    assert_error(users_only, "FORBIDDEN", 403, "This procedure is for users only")
    person = checkstack_auth.user(name="Ann")
    allowed = await checkstack_http.get("/api/orpcfixture/whoAmI", headers=bearer(person))
    assert allowed.json() == {"json": {"message": "Ann"}, "meta": []}


async def test_not_found(checkstack_http):
    plugin = await checkstack_http.post("/api/nope/getThing", json={})
    assert_error(plugin, "NOT_FOUND", 404, "Plugin not found: nope")
    procedure = await checkstack_http.post("/api/hello/getNothing", json={})
    assert_error(procedure, "NOT_FOUND", 404, "Procedure not found: hello.getNothing")
    by_get = await checkstack_http.get("/api/hello/getNothing")
    assert_error(by_get, "NOT_FOUND", 404, "Procedure not found: hello.getNothing")
    batch_path = await checkstack_http.post(BATCH, json=[])
    assert_error(batch_path, "NOT_FOUND", 404)


async def test_method_not_supported(checkstack_http, checkstack_auth):
    manager = checkstack_auth.application("hello.hello.manage")
    mutation_by_get = await checkstack_http.get(
        get_url("/api/hello/setGreeting", envelope({"template": "x {name}"})),
        headers=bearer(manager),
    )
    assert_error(
        mutation_by_get,
        "METHOD_NOT_SUPPORTED",
        405,
        "hello.setGreeting is a mutation: call it with POST",
    )
    assert mutation_by_get.headers["allow"] == "POST"
    unchanged = await checkstack_http.post("/api/hello/getGreeting", json={})
    assert unchanged.json()["json"] == {"message": "Hello, world!"}
    for method in ("PUT", "PATCH", "DELETE"):
        response = await checkstack_http.request(method, "/api/hello/getGreeting", json={})
        assert_error(response, "METHOD_NOT_SUPPORTED", 405)
        assert response.headers["allow"] == "GET, POST"
        mutation = await checkstack_http.request(method, "/api/hello/setGreeting", json={})
        assert_error(mutation, "METHOD_NOT_SUPPORTED", 405)
        assert mutation.headers["allow"] == "POST"
        batch = await checkstack_http.request(
            method, BATCH, json=[], headers={"x-orpc-batch": "buffered"}
        )
        assert_error(batch, "METHOD_NOT_SUPPORTED", 405)
        assert batch.headers["allow"] == "GET, POST"


async def test_conflict(checkstack_http):
    response = await checkstack_http.post("/api/orpcfixture/conflict", json={})
    assert_error(response, "CONFLICT", 409, "Thing already exists: one")


async def test_payload_too_large(checkstack_http, checkstack_host):
    limit = checkstack_host.settings.max_body_size
    body = json.dumps(envelope({"name": "x" * limit})).encode()
    declared = await checkstack_http.post(
        "/api/hello/getGreeting", content=body, headers={"content-type": "application/json"}
    )
    assert_error(declared, "PAYLOAD_TOO_LARGE", 413)

    async def chunks():  # no content-length: the limit applies while reading
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = await checkstack_http.post(
        "/api/hello/getGreeting", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, "PAYLOAD_TOO_LARGE", 413)
    batch = await checkstack_http.post(
        BATCH,
        content=body,
        headers={"x-orpc-batch": "buffered", "content-type": "application/json"},
    )
    assert_error(batch, "PAYLOAD_TOO_LARGE", 413)


async def test_unsupported_media_type(checkstack_http):
    text = await checkstack_http.post(
        "/api/hello/getGreeting", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert_error(text, "UNSUPPORTED_MEDIA_TYPE", 415)
    # What RPCLink sends when the input holds a Blob or File.
    form = await checkstack_http.post(
        "/api/hello/getGreeting",
        data={"data": json.dumps({"json": {"name": None}, "maps": [["name"]]})},
        files={"0": ("a.txt", b"abc", "text/plain")},
    )
    assert_error(form, "UNSUPPORTED_MEDIA_TYPE", 415)


async def test_internal_server_error_hides_the_detail(checkstack_http, caplog):
    response = await checkstack_http.post("/api/orpcfixture/crash", json={})
    error = assert_error(response, "INTERNAL_SERVER_ERROR", 500, "Internal server error")
    assert error["data"] == {}
    assert "secret detail" not in response.text
    assert "secret detail" in caplog.text  # logged on the server, with its request id


async def test_service_unavailable(checkstack_http, checkstack_host):
    assert checkstack_host.plugins["orpcbroken"].status == "failed"
    for request in (
        checkstack_http.post("/api/orpcbroken/ping", json={}),
        checkstack_http.get("/api/orpcbroken/ping"),
        checkstack_http.get("/api/orpcbroken/contract.json"),
    ):
        assert_error(await request, "SERVICE_UNAVAILABLE", 503, "Plugin orpcbroken is unavailable")


# -- batch ---------------------------------------------------------------------------------------


def item(path: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"url": f"http://testserver{path}", **extra}
    if body is not None:
        entry["body"] = body
    return entry


def read_sse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The message items of a streaming batch and the sequence of event kinds."""
    assert text.startswith(": \n\n")
    items: list[dict[str, Any]] = []
    kinds: list[str] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        if lines[0].startswith(":"):
            kinds.append("comment")
            continue
        event = lines[0].removeprefix("event: ")
        kinds.append(event)
        data = [line.removeprefix("data: ") for line in lines[1:] if line.startswith("data: ")]
        if event == "message":
            items.append(json.loads("\n".join(data)))
    return items, kinds


async def send_batch(
    client: Any, mode: str, items: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    response = await client.post(
        BATCH, json=items, headers={"x-orpc-batch": mode, **(headers or {})}
    )
    assert response.status_code == 207, response.text
    if mode == "buffered":
        assert response.headers["content-type"].startswith("application/json")
        return response.json()
    assert response.headers["content-type"].startswith("text/event-stream")
    results, kinds = read_sse(response.text)
    assert kinds[0] == "comment" and kinds[-1] == "done"
    assert kinds.count("message") == len(items)
    return results


@pytest.mark.parametrize("mode", ["buffered", "streaming"])
async def test_batches_of_one_and_ten(checkstack_http, mode):
    one = await send_batch(
        checkstack_http, mode, [item("/api/hello/getGreeting", envelope({"name": "A"}))]
    )
    assert one == [
        {"index": 0, "status": 200, "body": {"json": {"message": "Hello, A!"}, "meta": []}}
    ]

    ten = [item("/api/hello/getGreeting", envelope({"name": f"n{i}"})) for i in range(10)]
    results = await send_batch(checkstack_http, mode, ten)
    assert sorted(r["index"] for r in results) == list(range(10))
    for result in results:
        assert result["status"] == 200
        assert result["body"]["json"] == {"message": f"Hello, n{result['index']}!"}


@pytest.mark.parametrize("mode", ["buffered", "streaming"])
async def test_batch_over_the_limit_is_refused(checkstack_http, mode):
    eleven = [item("/api/hello/getGreeting", {}) for _ in range(orpc.BATCH_MAX_SIZE + 1)]
    response = await checkstack_http.post(BATCH, json=eleven, headers={"x-orpc-batch": mode})
    assert_error(response, "PAYLOAD_TOO_LARGE", 413, "Batch of 11 requests exceeds the limit of 10")


@pytest.mark.parametrize("mode", ["buffered", "streaming"])
async def test_batch_items_are_independent_calls(checkstack_http, checkstack_auth, mode):
    manager = checkstack_auth.application("hello.hello.manage")
    limited = checkstack_auth.application("hello.hello.read")
    items = [
        # The item's own Authorization header overrides the batch's.
        item(
            "/api/hello/setGreeting",
            envelope({"template": f"{mode} {{name}}"}),
            headers={"authorization": f"Bearer {manager.token}"},
        ),
        item("/api/hello/setGreeting", envelope({"template": "nope {name}"})),
        item("/api/orpcfixture/conflict", {}),
        item("/api/orpcfixture/echoDates", envelope({"at": "2024-01-01T00:00:00Z"}, [[1, "at"]])),
        item(get_url("/api/hello/getGreeting", envelope({"name": "G"})), method="GET"),
        item(get_url("/api/hello/setGreeting", {}), method="GET"),
        item("/api/hello/getNothing", {}),
        item("/api/elsewhere", {}),
        item("/status/api/orpcfixture/remember", envelope({"message": "m"})),  # proxy prefix
        item("/api/orpcbroken/ping", {}),
    ]
    results = await send_batch(checkstack_http, mode, items, bearer(limited))
    by_index = {r["index"]: r for r in results}
    assert by_index[0]["status"] == 200
    assert by_index[0]["body"] == {"json": {"template": f"{mode} {{name}}"}, "meta": []}
    statuses = {
        i: (r["status"], r["body"].get("json", {}).get("code")) for i, r in by_index.items()
    }
    assert statuses[1] == (403, "FORBIDDEN")
    assert statuses[2] == (409, "CONFLICT")
    assert statuses[3][0] == 200
    assert by_index[3]["body"]["meta"] == [
        [1, "moments", "at"],
        [1, "dayAfter"],
        [1, "history", 0, "at"],
        [1, "history", 1, "at"],
    ]
    assert by_index[4]["body"]["json"] == {"message": f"{mode} G"}
    assert statuses[5] == (405, "METHOD_NOT_SUPPORTED")
    assert statuses[6] == (404, "NOT_FOUND")
    assert statuses[7] == (404, "NOT_FOUND")
    assert by_index[8]["headers"]["x-remembered"] == "m"
    assert by_index[8]["headers"]["set-cookie"][0].startswith("remembered=m")
    assert statuses[9] == (503, "SERVICE_UNAVAILABLE")
    for result in results:
        if result["status"] >= 400:
            assert set(result["body"]) == {"json", "meta"}
            assert set(result["body"]["json"]) == ERROR_KEYS
    # Unlike the documented protocol's atomic batch, the failures did not undo item 0.
    after = await checkstack_http.post("/api/hello/getGreeting", json=envelope({"name": "Z"}))
    assert after.json()["json"] == {"message": f"{mode} Z"}


async def test_streaming_batch_sends_keep_alive_comments_while_an_item_runs(
    checkstack_http, monkeypatch
):
    # An item that takes 0.2 s against a 0.02 s interval: keep-alives between the opening
    # comment and the item's message (a call's own speed must not decide the test).
    run_item = orpc.run_item

    async def slow_item(*args, **kwargs):
        await asyncio.sleep(0.2)
        return await run_item(*args, **kwargs)

    monkeypatch.setattr(orpc, "run_item", slow_item)
    monkeypatch.setattr(orpc, "KEEPALIVE_SECONDS", 0.02)
    response = await checkstack_http.post(
        BATCH,
        json=[item("/api/hello/getGreeting", envelope({"name": "K"}))],
        headers={"x-orpc-batch": "streaming"},
    )
    results, kinds = read_sse(response.text)
    assert kinds[:3] == ["comment", "comment", "comment"] and kinds[-2:] == ["message", "done"]
    assert results[0]["body"]["json"] == {"message": "Hello, K!"}


async def test_batch_by_get_and_on_any_procedure_path(checkstack_http):
    from urllib.parse import quote

    items = [item(get_url("/api/hello/getGreeting", envelope({"name": "Q"})))]
    by_get = await checkstack_http.get(
        f"{BATCH}?batch={quote(json.dumps(items))}", headers={"x-orpc-batch": "buffered"}
    )
    assert by_get.status_code == 207, by_get.text
    assert by_get.json()[0]["body"]["json"] == {"message": "Hello, Q!"}
    # The batch plugin intercepts any procedure path carrying its header.
    elsewhere = await checkstack_http.post(
        "/api/orpcfixture/touch",
        json=[item("/api/hello/getGreeting", {})],
        headers={"x-orpc-batch": "buffered"},
    )
    assert elsewhere.status_code == 207
    assert elsewhere.json()[0]["body"]["json"] == {"message": "Hello, world!"}


async def test_malformed_batches(checkstack_http):
    headers = {"x-orpc-batch": "buffered"}
    for body, fragment in (
        ({"url": "x"}, "expected a JSON array"),
        ([], "Empty batch"),
        ([{"body": {}}], "item 0 needs a url"),
        (["http://x/api/a/b"], "item 0 needs a url"),
        ([{"url": "http://x/api/a/b", "headers": "x"}], "malformed headers"),
        ([{"url": "http://[::1/api/a/b"}], "malformed url"),
        ([{"url": "http://x/api/a/b", "method": 1}], "item 0 needs a url"),
    ):
        response = await checkstack_http.post(BATCH, json=body, headers=headers)
        assert fragment in assert_error(response, "BAD_REQUEST", 400)["message"]
    broken_json = await checkstack_http.post(
        BATCH, content=b"[", headers={**headers, "content-type": "application/json"}
    )
    assert_error(broken_json, "BAD_REQUEST", 400, "Malformed JSON body")
    no_items = await checkstack_http.get(BATCH, headers=headers)
    assert_error(no_items, "BAD_REQUEST", 400)
    not_utf8 = await checkstack_http.get(BATCH + "?batch=%FF%FE", headers=headers)
    assert_error(not_utf8, "BAD_REQUEST", 400)
    not_utf8_call = await checkstack_http.get("/api/hello/getGreeting?data=%FF")
    assert_error(not_utf8_call, "BAD_REQUEST", 400, "Malformed JSON body")


# -- contracts and routing -----------------------------------------------------------------------


async def test_contract_documents(checkstack_http):
    hello = await checkstack_http.get("/api/hello/contract.json")
    assert hello.status_code == 200
    assert hello.json() == {
        "getGreeting": {
            "~orpc": {
                "errorMap": {},
                "meta": {"kind": "query", "caller": "public", "rules": ["hello.hello.read"]},
                "route": {
                    "method": "GET",
                    "description": "Greet someone with the stored template.",
                },
            }
        },
        "setGreeting": {
            "~orpc": {
                "errorMap": {},
                "meta": {
                    "kind": "mutation",
                    "caller": "authenticated",
                    "rules": ["hello.hello.manage"],
                },
                "route": {
                    "method": "POST",
                    "description": "Replace the greeting template; it must contain {name}.",
                },
            }
        },
    }
    everything = (await checkstack_http.get("/api/contract.json")).json()
    assert everything["hello"] == hello.json()
    assert set(everything) == {"core", "hello", "orpcfixture"}  # not the failed plugin
    assert set(everything["orpcfixture"]) == set(fixture.contract.by_name)
    unknown = await checkstack_http.get("/api/nope/contract.json")
    assert_error(unknown, "NOT_FOUND", 404, "Plugin not found: nope")


async def test_routes_shared_with_the_documented_protocol(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin()
    for path in ("/api/hello/", "/api/hello"):
        documented = await checkstack_http.post(path, json={"getGreeting": {"name": "D"}})
        assert documented.json() == {"getGreeting": {"message": "Hello, D!"}}
    documented_error = await checkstack_http.post("/api/hello/", json={"nothing": {}})
    assert documented_error.json() == {
        "code": "NOT_FOUND",
        "message": "Procedure not found: hello.nothing",
        "procedure": "nothing",
    }
    core = await checkstack_http.get("/api/core/getPlugins", headers=bearer(admin))
    assert core.status_code == 200
    assert {p["id"] for p in core.json()["json"]["plugins"]} >= {"hello", "orpcfixture"}
