"""The Python client over the documented protocol (SPEC §4.1, §4.4), against mock transports."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest

from checkstack_core.client import AsyncCheckstackClient, CheckstackClient
from checkstack_core.errors import (
    STATUS_BY_CODE,
    BadRequest,
    Conflict,
    Forbidden,
    InternalServerError,
    MethodNotSupported,
    NotFound,
    PayloadTooLarge,
    RpcError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)

BASE = "https://status.example.com"
TOKEN = "ck_a1b2c3d4-e5f6-7890-abcd-ef1234567890_f8k2mN9xZpW3qR7vL5tY"


class Recorder:
    """A mock server: records every request and answers with a fixed response (or raises)."""

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        raises: Callable[[httpx.Request], Exception] | None = None,
    ) -> None:
        self.status = status
        self.json = json
        self.content = content
        self.headers = headers
        self.raises = raises
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raises is not None:
            raise self.raises(request)
        if self.content is not None:
            return httpx.Response(self.status, content=self.content, headers=self.headers)
        return httpx.Response(self.status, json=self.json, headers=self.headers)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]


def sync_client(server: Recorder, token: str | None = TOKEN, **kwargs: Any) -> CheckstackClient:
    return CheckstackClient(BASE, token, transport=httpx.MockTransport(server), **kwargs)


def async_client(
    server: Recorder, token: str | None = TOKEN, **kwargs: Any
) -> AsyncCheckstackClient:
    return AsyncCheckstackClient(BASE, token, transport=httpx.MockTransport(server), **kwargs)


class SystemsInput(msgspec.Struct):
    groupId: str
    limit: int = 10


class System(msgspec.Struct):
    id: str
    name: str
    createdAt: datetime


# -- the request ---------------------------------------------------------------------------------


def test_call_sends_the_documented_request_and_returns_the_output() -> None:
    server = Recorder(json={"getSystems": [{"id": "s1", "name": "API"}]})
    with sync_client(server) as client:
        result = client.call("catalog", "getSystems")

    assert result == [{"id": "s1", "name": "API"}]
    request = server.request
    assert request.method == "POST"
    assert str(request.url) == "https://status.example.com/api/catalog/"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.content == b'{"getSystems":{}}'
    assert request.headers["content-length"] == str(len(b'{"getSystems":{}}'))


def test_no_token_sends_no_authorization_header() -> None:
    server = Recorder(json={"getSystems": []})
    with sync_client(server, token=None) as client:
        assert client.call("catalog", "getSystems") == []
    assert "authorization" not in server.request.headers
    # An empty token (say, an unset environment variable) is no token either.
    server = Recorder(json={"getSystems": []})
    with sync_client(server, token="") as client:
        client.call("catalog", "getSystems")
    assert "authorization" not in server.request.headers


def test_base_url_trailing_slash_and_path_prefix() -> None:
    server = Recorder(json={"getWindows": []})
    transport = httpx.MockTransport(server)
    with CheckstackClient("https://example.com/checkstack/", transport=transport) as client:
        client.call("maintenance", "getWindows")
    assert str(server.request.url) == "https://example.com/checkstack/api/maintenance/"
    assert client.base_url == "https://example.com/checkstack"


def test_plugin_id_is_one_path_segment() -> None:
    server = Recorder(json={"x": 1})
    with sync_client(server) as client:
        client.call("a/b", "x")
    assert server.request.url.raw_path == b"/api/a%2Fb/"


def test_none_input_is_sent_as_empty_object_and_dict_input_as_is() -> None:
    server = Recorder(json={"getHistory": []})
    with sync_client(server) as client:
        client.call("healthcheck", "getHistory", None)
        client.call("healthcheck", "getHistory", {"checkId": "c1", "limit": 5})
    assert [r.content for r in server.requests] == [
        b'{"getHistory":{}}',
        b'{"getHistory":{"checkId":"c1","limit":5}}',
    ]


def test_struct_input_is_encoded_with_msgspec() -> None:
    server = Recorder(json={"getSystems": []})
    with sync_client(server) as client:
        client.call("catalog", "getSystems", SystemsInput(groupId="g1"))
    assert server.request.content == b'{"getSystems":{"groupId":"g1","limit":10}}'


def test_extra_headers_and_cookies_are_sent_but_content_type_stays_json() -> None:
    server = Recorder(json={"me": {"id": "u1"}})
    with sync_client(
        server,
        token=None,
        headers={"X-Request-Id": "r-1", "content-type": "text/plain"},
        cookies={"session": "abc"},
    ) as client:
        assert client.call("auth", "me") == {"id": "u1"}
    headers = server.request.headers
    assert headers["x-request-id"] == "r-1"
    assert headers.get_list("content-type") == ["application/json"]
    assert headers["cookie"] == "session=abc"


def test_given_token_wins_over_an_authorization_header() -> None:
    server = Recorder(json={"x": None})
    with sync_client(server, headers={"Authorization": "Bearer other"}) as client:
        assert client.call("p", "x") is None
    assert server.request.headers.get_list("authorization") == [f"Bearer {TOKEN}"]


# -- batch ---------------------------------------------------------------------------------------


def test_batch_sends_all_calls_in_order_and_returns_outputs_in_request_order() -> None:
    # The server answers in another order, with an extra key: the client keeps request order.
    server = Recorder(json={"getGroups": ["g"], "extra": 1, "getSystems": ["s"]})
    with sync_client(server) as client:
        result = client.batch("catalog", {"getSystems": None, "getGroups": {"q": "x"}})
    assert server.request.content == b'{"getSystems":{},"getGroups":{"q":"x"}}'
    assert list(result) == ["getSystems", "getGroups"]
    assert result == {"getSystems": ["s"], "getGroups": ["g"]}


def test_batch_with_struct_inputs() -> None:
    server = Recorder(json={"b": 2, "a": 1})
    with sync_client(server) as client:
        result = client.batch("catalog", {"b": SystemsInput(groupId="g", limit=1), "a": {}})
    assert server.request.content == b'{"b":{"groupId":"g","limit":1},"a":{}}'
    assert list(result.items()) == [("b", 2), ("a", 1)]


# -- typed output --------------------------------------------------------------------------------


def test_typed_output_is_converted_with_msgspec() -> None:
    server = Recorder(
        json={
            "getSystem": {"id": "s1", "name": "API", "createdAt": "2024-05-01T12:00:00Z"},
            "getSystems": [{"id": "s2", "name": "DB", "createdAt": "2024-05-02T00:00:00Z"}],
        }
    )
    with sync_client(server) as client:
        system = client.call("catalog", "getSystem", {"id": "s1"}, type=System)
        systems = client.call("catalog", "getSystems", type=list[System])
    assert system == System(id="s1", name="API", createdAt=datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert systems == [System(id="s2", name="DB", createdAt=datetime(2024, 5, 2, tzinfo=UTC))]


def test_typed_output_mismatch_raises_msgspec_validation_error() -> None:
    server = Recorder(json={"getSystem": {"id": 1}})
    with sync_client(server) as client, pytest.raises(msgspec.ValidationError, match="str"):
        client.call("catalog", "getSystem", type=System)


# -- documented errors ---------------------------------------------------------------------------

SUBCLASS_BY_CODE: dict[str, type[RpcError]] = {
    "BAD_REQUEST": BadRequest,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "NOT_FOUND": NotFound,
    "METHOD_NOT_SUPPORTED": MethodNotSupported,
    "CONFLICT": Conflict,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    "INTERNAL_SERVER_ERROR": InternalServerError,
    "SERVICE_UNAVAILABLE": ServiceUnavailable,
    "TOO_MANY_REQUESTS": TooManyRequests,
}


@pytest.mark.parametrize("code", sorted(STATUS_BY_CODE))
def test_each_error_code_becomes_its_class_with_status_message_procedure_data(code: str) -> None:
    status = STATUS_BY_CODE[code]
    server = Recorder(
        status,
        json={
            "code": code,
            "message": f"went wrong: {code}",
            "procedure": "getSystems",
            "data": {"detail": [1, 2]},
        },
    )
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    error = caught.value
    assert type(error) is SUBCLASS_BY_CODE.get(code, RpcError)
    assert error.code == code
    assert error.status == status
    assert error.message == f"went wrong: {code}"
    assert str(error) == f"went wrong: {code}"
    assert error.procedure == "getSystems"
    assert error.data == {"detail": [1, 2]}


def test_documented_forbidden_example_without_procedure_or_data() -> None:
    server = Recorder(
        403, json={"code": "FORBIDDEN", "message": "Missing access: catalog.catalog.read"}
    )
    with sync_client(server) as client, pytest.raises(Forbidden) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.message == "Missing access: catalog.catalog.read"
    assert caught.value.status == 403
    assert caught.value.procedure is None
    assert caught.value.data is None


def test_validation_error_keeps_issues() -> None:
    issues = [{"message": "Expected `str`, got `int`", "path": ["groupId"]}]
    server = Recorder(
        400,
        json={
            "code": "BAD_REQUEST",
            "message": "Input validation failed",
            "procedure": "getSystems",
            "data": {"issues": issues},
        },
    )
    with sync_client(server) as client, pytest.raises(BadRequest) as caught:
        client.call("catalog", "getSystems", {"groupId": 1})
    assert caught.value.data == {"issues": issues}


def test_unknown_error_code_keeps_code_and_actual_status() -> None:
    server = Recorder(418, json={"code": "I_AM_A_TEAPOT", "message": "short and stout"})
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("kitchen", "brew")
    assert type(caught.value) is RpcError
    assert (caught.value.code, caught.value.status) == ("I_AM_A_TEAPOT", 418)
    assert caught.value.message == "short and stout"


def test_error_body_with_non_object_data_is_wrapped() -> None:
    server = Recorder(409, json={"code": "CONFLICT", "message": "taken", "data": ["a", "b"]})
    with sync_client(server) as client, pytest.raises(Conflict) as caught:
        client.call("catalog", "createSystem")
    assert caught.value.data == {"value": ["a", "b"]}


# -- answers not in the documented shape ---------------------------------------------------------


def test_proxy_html_page_on_502_is_bad_gateway() -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    server = Recorder(502, content=html, headers={"content-type": "text/html"})
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    error = caught.value
    assert error.code == "BAD_GATEWAY"
    assert error.status == 502
    assert error.message == "HTTP 502 response body is not JSON"
    assert error.data == {
        "http_status": 502,
        "content_type": "text/html",
        "body": html.decode(),
    }
    assert error.procedure is None


def test_empty_503_body_is_service_unavailable() -> None:
    server = Recorder(503, content=b"")
    with sync_client(server) as client, pytest.raises(ServiceUnavailable) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.status == 503
    assert caught.value.message == "HTTP 503 response body is empty"


def test_json_error_body_not_in_checkstack_shape_uses_the_status_code() -> None:
    server = Recorder(404, json={"error": "no route"})
    with sync_client(server) as client, pytest.raises(NotFound) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.status == 404
    assert caught.value.message == "HTTP 404 response body is not a Checkstack error"
    assert caught.value.data is not None
    assert caught.value.data["body"] == '{"error":"no route"}'


@pytest.mark.parametrize(
    ("status", "code"),
    [(418, "BAD_REQUEST"), (451, "BAD_REQUEST"), (520, "INTERNAL_SERVER_ERROR"), (500, None)],
)
def test_unknown_statuses_fall_back_by_class(status: int, code: str | None) -> None:
    server = Recorder(status, content=b"nope", headers={"content-type": "text/plain"})
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.code == (code or "INTERNAL_SERVER_ERROR")
    assert caught.value.status == status
    if status == 500:
        assert type(caught.value) is InternalServerError


def test_body_excerpt_is_truncated() -> None:
    server = Recorder(500, content=b"x" * 5000)
    with sync_client(server) as client, pytest.raises(InternalServerError) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.data is not None
    assert caught.value.data["body"] == "x" * 200


def test_success_status_with_non_json_body_is_bad_gateway() -> None:
    server = Recorder(200, content=b"<html>login</html>", headers={"content-type": "text/html"})
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    assert (caught.value.code, caught.value.status) == ("BAD_GATEWAY", 502)
    assert caught.value.message == "HTTP 200 response body is not JSON"
    assert caught.value.data is not None
    assert caught.value.data["http_status"] == 200


def test_success_without_the_requested_procedure_is_bad_gateway() -> None:
    server = Recorder(json={"getSystems": []})
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.batch("catalog", {"getSystems": {}, "getGroups": {}})
    assert (caught.value.code, caught.value.status) == ("BAD_GATEWAY", 502)
    assert caught.value.message == "Response is missing the result of procedure 'getGroups'"


def test_success_status_with_a_json_array_is_bad_gateway() -> None:
    server = Recorder(json=[1, 2])
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    assert caught.value.code == "BAD_GATEWAY"
    assert caught.value.message == "HTTP 200 response body is not a Checkstack response"


def test_success_status_carrying_an_error_body_raises_that_error() -> None:
    server = Recorder(200, json={"code": "NOT_FOUND", "message": "System not found: 9"})
    with sync_client(server) as client, pytest.raises(NotFound) as caught:
        client.call("catalog", "getSystem")
    assert caught.value.status == 404
    assert caught.value.message == "System not found: 9"


def test_redirect_is_not_followed_and_says_where_to() -> None:
    server = Recorder(
        301, content=b"", headers={"location": "https://other.example.com/api/catalog/"}
    )
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    assert len(server.requests) == 1
    assert (caught.value.code, caught.value.status) == ("BAD_GATEWAY", 502)
    assert "redirect to https://other.example.com/api/catalog/" in caught.value.message
    assert caught.value.data is not None
    assert caught.value.data["location"] == "https://other.example.com/api/catalog/"


# -- network failures ----------------------------------------------------------------------------


def test_connection_error_is_service_unavailable_with_cause() -> None:
    server = Recorder(
        raises=lambda request: httpx.ConnectError("[Errno 111] Connection refused", request=request)
    )
    with sync_client(server) as client, pytest.raises(ServiceUnavailable) as caught:
        client.call("catalog", "getSystems")
    error = caught.value
    assert error.status == 503
    assert error.message == (
        "Request to https://status.example.com failed: ConnectError: [Errno 111] Connection refused"
    )
    assert error.data == {"exception": "ConnectError"}
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_timeout_is_gateway_timeout() -> None:
    server = Recorder(raises=lambda request: httpx.ReadTimeout("timed out", request=request))
    with sync_client(server) as client, pytest.raises(RpcError) as caught:
        client.call("catalog", "getSystems")
    assert (caught.value.code, caught.value.status) == ("GATEWAY_TIMEOUT", 504)
    assert caught.value.data == {"exception": "ReadTimeout"}


# -- client-side checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin_id", "calls"),
    [("", {"getSystems": {}}), ("catalog", {"": {}}), ("catalog", {})],
)
def test_empty_names_and_empty_batch_are_refused_before_sending(
    plugin_id: str, calls: dict[str, Any]
) -> None:
    server = Recorder(json={})
    with sync_client(server) as client, pytest.raises(ValueError):
        client.batch(plugin_id, calls)
    assert server.requests == []


def test_empty_procedure_name_in_call_is_refused() -> None:
    server = Recorder(json={})
    with sync_client(server) as client, pytest.raises(ValueError, match="procedure"):
        client.call("catalog", "")
    assert server.requests == []


@pytest.mark.parametrize("base_url", ["", "status.example.com", "ftp://example.com", "http://"])
def test_bad_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        CheckstackClient(base_url)


def test_token_with_newline_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        CheckstackClient(BASE, TOKEN + "\n")
    assert TOKEN not in str(caught.value)


# -- the token stays secret ----------------------------------------------------------------------


def test_repr_shows_base_url_and_whether_a_token_is_set_but_not_the_token() -> None:
    with_token = CheckstackClient(BASE, TOKEN)
    without = AsyncCheckstackClient(BASE + "/")
    assert (
        repr(with_token)
        == "CheckstackClient(base_url='https://status.example.com', token_set=True)"
    )
    assert (
        repr(without)
        == "AsyncCheckstackClient(base_url='https://status.example.com', token_set=False)"
    )
    assert TOKEN not in str(with_token)
    with_token.close()


def test_token_echoed_by_the_server_is_redacted_from_errors() -> None:
    server = Recorder(
        401,
        json={
            "code": "UNAUTHORIZED",
            "message": f"Invalid API key {TOKEN}",
            "data": {"presented": TOKEN, "nested": [f"Bearer {TOKEN}"]},
        },
    )
    with sync_client(server) as client, pytest.raises(Unauthorized) as caught:
        client.call("catalog", "getSystems")
    error = caught.value
    assert error.message == "Invalid API key [redacted]"
    assert error.data == {"presented": "[redacted]", "nested": ["Bearer [redacted]"]}
    for text in (str(error), repr(error), str(error.data), str(error.to_dict())):
        assert TOKEN not in text


def test_token_is_redacted_from_unexpected_bodies_and_network_errors() -> None:
    server = Recorder(500, content=f"<pre>Authorization: Bearer {TOKEN}</pre>".encode())
    with sync_client(server) as client, pytest.raises(InternalServerError) as caught:
        client.call("catalog", "getSystems")
    assert TOKEN not in str(caught.value.data)
    assert caught.value.data is not None
    assert caught.value.data["body"] == "<pre>Authorization: Bearer [redacted]</pre>"

    server = Recorder(raises=lambda request: httpx.ConnectError(f"bad {TOKEN}", request=request))
    with sync_client(server) as client, pytest.raises(ServiceUnavailable) as caught_network:
        client.call("catalog", "getSystems")
    assert TOKEN not in str(caught_network.value)
    assert TOKEN not in repr(caught_network.value)


def test_formatted_traceback_of_a_network_error_does_not_show_the_token() -> None:
    server = Recorder(
        raises=lambda request: httpx.ConnectError("[Errno 111] Connection refused", request=request)
    )
    with sync_client(server) as client, pytest.raises(ServiceUnavailable) as caught:
        client.call("catalog", "getSystems")
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


# -- lifecycle -----------------------------------------------------------------------------------


def test_closed_client_refuses_to_send() -> None:
    server = Recorder(json={"x": 1})
    with sync_client(server) as client:
        assert client.call("p", "x") == 1
    with pytest.raises(RuntimeError):
        client.call("p", "x")
    assert len(server.requests) == 1


# -- async client --------------------------------------------------------------------------------


async def test_async_call_sends_the_documented_request() -> None:
    server = Recorder(json={"getSystems": [{"id": "s1"}]})
    async with async_client(server) as client:
        result = await client.call("catalog", "getSystems")
    assert result == [{"id": "s1"}]
    request = server.request
    assert request.method == "POST"
    assert str(request.url) == "https://status.example.com/api/catalog/"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.content == b'{"getSystems":{}}'


async def test_async_batch_order_struct_input_and_typed_output() -> None:
    server = Recorder(
        json={
            "getGroups": [],
            "getSystem": {"id": "s1", "name": "API", "createdAt": "2024-05-01T12:00:00Z"},
        }
    )
    async with async_client(server, token=None) as client:
        result = await client.batch(
            "catalog", {"getSystem": SystemsInput(groupId="g"), "getGroups": None}
        )
        system = await client.call("catalog", "getSystem", type=System)
    assert list(result) == ["getSystem", "getGroups"]
    assert server.requests[0].content == b'{"getSystem":{"groupId":"g","limit":10},"getGroups":{}}'
    assert "authorization" not in server.requests[0].headers
    assert system == System(id="s1", name="API", createdAt=datetime(2024, 5, 1, 12, tzinfo=UTC))


async def test_async_errors_map_like_the_sync_client() -> None:
    server = Recorder(
        404,
        json={"code": "NOT_FOUND", "message": "Procedure not found: catalog.x", "procedure": "x"},
    )
    async with async_client(server) as client:
        with pytest.raises(NotFound) as caught:
            await client.call("catalog", "x")
    assert (caught.value.status, caught.value.procedure) == (404, "x")
    assert caught.value.message == "Procedure not found: catalog.x"

    server = Recorder(502, content=b"<html>Bad Gateway</html>")
    async with async_client(server) as client:
        with pytest.raises(RpcError) as caught_gateway:
            await client.call("catalog", "x")
    assert (caught_gateway.value.code, caught_gateway.value.status) == ("BAD_GATEWAY", 502)


async def test_async_connection_error_is_service_unavailable() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = AsyncCheckstackClient(BASE, TOKEN, transport=httpx.MockTransport(refuse))
    with pytest.raises(ServiceUnavailable) as caught:
        await client.call("catalog", "getSystems")
    await client.aclose()
    assert caught.value.data == {"exception": "ConnectError"}
    assert TOKEN not in str(caught.value)
    with pytest.raises(RuntimeError):
        await client.call("catalog", "getSystems")
