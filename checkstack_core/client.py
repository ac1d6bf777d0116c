"""Python client (sync and async) over the documented Checkstack protocol (SPEC §4.1, §4.4).

A request is ``POST {base_url}/api/{pluginId}/`` with a JSON object mapping procedure names to
inputs and, when a token is given, ``Authorization: Bearer <token>``. A success is a ``2xx`` JSON
object mapping each procedure name to its output; an error is the HTTP status of its code with the
body ``{"code", "message", "procedure"?, "data"?}``, raised here as the matching ``RpcError``
subclass (``NotFound``, ``Forbidden``...) with ``.status`` the HTTP status of the response.

Answers not in that shape still raise an ``RpcError``, never a ``KeyError`` or a JSON error:

* an error status whose body is not a Checkstack error (a proxy's HTML page, an empty body, other
  JSON): the code of the HTTP status (``502`` -> ``BAD_GATEWAY``; an unknown ``4xx`` ->
  ``BAD_REQUEST``, an unknown ``5xx`` -> ``INTERNAL_SERVER_ERROR``), ``.status`` the HTTP status,
  a message saying what was wrong, ``.data`` = ``{"http_status", "content_type", "body"}`` (the
  first 200 characters of the body);
* a ``2xx`` answer that is not JSON or lacks a requested procedure, or a ``1xx``/``3xx`` answer
  (redirects are not followed; ``.data["location"]`` says where to): ``BAD_GATEWAY`` (502), same
  ``.data``;
* no answer at all: ``GATEWAY_TIMEOUT`` (504) for a timeout, ``SERVICE_UNAVAILABLE`` (503) for any
  other network failure (connection refused, DNS, TLS, dropped connection); ``.data`` =
  ``{"exception": "<httpx class name>"}`` and the httpx exception is the ``__cause__``.

The token never appears in a client's ``repr`` nor in an error's message or data (it is redacted
from anything the server echoes back).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar, overload
from urllib.parse import quote

import httpx
import msgspec

from checkstack_core.errors import STATUS_BY_CODE, RpcError

__all__ = ["AsyncCheckstackClient", "CheckstackClient"]

T = TypeVar("T")

#: Error code of an HTTP status (the inverse of ``STATUS_BY_CODE``).
_CODE_BY_STATUS: dict[int, str] = {status: code for code, status in STATUS_BY_CODE.items()}
#: How much of an unexpected body is kept in an error's ``data["body"]``.
_BODY_EXCERPT_CHARS = 200
_REDACTED = "[redacted]"


def _check_name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")
    return value


def _code_for_status(status: int) -> str:
    if status in _CODE_BY_STATUS:
        return _CODE_BY_STATUS[status]
    if 400 <= status < 500:
        return "BAD_REQUEST"
    if status >= 500:
        return "INTERNAL_SERVER_ERROR"
    return "BAD_GATEWAY"


class _Protocol:
    """Request building and response parsing shared by the sync and async clients (no I/O)."""

    def __init__(self, base_url: str, token: str | None, headers: Mapping[str, str] | None) -> None:
        if not isinstance(base_url, str) or not base_url:
            raise ValueError(
                "base_url must be a non-empty string such as 'https://status.example.com'"
            )
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"base_url is not a valid URL: {base_url!r}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
        if token is not None and not isinstance(token, str):
            raise TypeError("token must be a string or None")
        if token and not all("!" <= char <= "~" for char in token):
            # Refused here (without echoing it): httpx would fail later, quoting the header value.
            raise ValueError("token must be printable ASCII without spaces")
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        merged = httpx.Headers({"Accept": "application/json"})
        merged.update(headers or {})
        merged["Content-Type"] = "application/json"
        if self.token is not None:
            merged["Authorization"] = f"Bearer {self.token}"
        self.headers = merged

    def describe(self, client_class: str) -> str:
        return f"{client_class}(base_url={self.base_url!r}, token_set={self.token is not None})"

    # -- request ---------------------------------------------------------------------------

    def url(self, plugin_id: str) -> str:
        _check_name("plugin_id", plugin_id)
        return f"{self.base_url}/api/{quote(plugin_id, safe='')}/"

    def body(self, calls: Mapping[str, Any]) -> bytes:
        if not calls:
            raise ValueError("a batch needs at least one procedure call")
        payload: dict[str, Any] = {}
        for name, value in calls.items():
            _check_name("procedure", name)
            payload[name] = {} if value is None else value
        return msgspec.json.encode(payload)

    def build(
        self, http: httpx.Client | httpx.AsyncClient, plugin_id: str, calls: Mapping[str, Any]
    ) -> httpx.Request:
        return http.build_request(
            "POST", self.url(plugin_id), content=self.body(calls), headers=self.headers
        )

    # -- response --------------------------------------------------------------------------

    def parse(self, response: httpx.Response, names: list[str]) -> dict[str, Any]:
        """The outputs of ``names`` in request order, or raise the error the response stands for."""
        status = response.status_code
        try:
            body: Any = msgspec.json.decode(response.content)
            is_json = True
        except msgspec.DecodeError:
            body, is_json = None, False

        if response.is_success and is_json and isinstance(body, dict):
            missing = [name for name in names if name not in body]
            if not missing:
                return {name: body[name] for name in names}
            if not self._is_error_body(body):
                raise self._unexpected(
                    response, f"Response is missing the result of procedure {missing[0]!r}"
                )
        if is_json and self._is_error_body(body):
            data = body.get("data")
            if data is not None and not isinstance(data, dict):
                data = {"value": data}
            procedure = body.get("procedure")
            raise RpcError.from_code(
                body["code"],
                self._redact(body["message"]),
                data=self._redact(data),
                procedure=procedure if isinstance(procedure, str) else None,
                status=status if status >= 400 else None,
            )
        if not is_json:
            reason = "is empty" if not response.content else "is not JSON"
        else:
            kind = "response" if response.is_success else "error"
            reason = f"is not a Checkstack {kind}"
        raise self._unexpected(response, f"HTTP {status} response body {reason}")

    @staticmethod
    def _is_error_body(body: Any) -> bool:
        return (
            isinstance(body, dict)
            and isinstance(body.get("code"), str)
            and bool(body["code"])
            and isinstance(body.get("message"), str)
        )

    def _unexpected(self, response: httpx.Response, message: str) -> RpcError:
        status = response.status_code
        data: dict[str, Any] = {
            "http_status": status,
            "content_type": response.headers.get("content-type"),
            "body": self._redact(response.text[:_BODY_EXCERPT_CHARS]),
        }
        if response.is_redirect:
            location = response.headers.get("location")
            data["location"] = location
            message = f"{message} (redirect to {location}; redirects are not followed)"
        code = "BAD_GATEWAY" if status < 400 else _code_for_status(status)
        return RpcError.from_code(
            code, self._redact(message), data=data, status=status if status >= 400 else None
        )

    def transport_error(self, exc: httpx.RequestError) -> RpcError:
        """The ``RpcError`` of a request that got no (usable) answer."""
        if isinstance(exc, httpx.TimeoutException):
            code = "GATEWAY_TIMEOUT"
        elif isinstance(exc, httpx.DecodingError):
            code = "BAD_GATEWAY"
        else:
            code = "SERVICE_UNAVAILABLE"
        detail = str(exc) or "no details"
        message = f"Request to {self.base_url} failed: {type(exc).__name__}: {detail}"
        return RpcError.from_code(
            code, self._redact(message), data={"exception": type(exc).__name__}
        )

    def _redact(self, value: Any) -> Any:
        """``value`` with every occurrence of the token replaced (a server may echo what it got)."""
        token = self.token
        if token is None:
            return value
        if isinstance(value, str):
            return value.replace(token, _REDACTED)
        if isinstance(value, dict):
            return {self._redact(key): self._redact(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._redact(item) for item in value]
        return value


def _convert(output: Any, result_type: Any) -> Any:
    return output if result_type is None else msgspec.convert(output, result_type)


class CheckstackClient:
    """Synchronous client of the documented protocol.

    ``call("catalog", "getSystems")`` returns that procedure's output;
    ``batch("catalog", {"getSystems": {}, "getGroups": {}})`` returns
    ``{"getSystems": ..., "getGroups": ...}`` in request order. Inputs are dicts, msgspec Structs or
    anything else msgspec encodes; ``None`` is sent as ``{}``. ``call(..., type=T)`` converts the
    output with ``msgspec.convert`` (a mismatch raises ``msgspec.ValidationError``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        cookies: Any = None,
    ) -> None:
        self._protocol = _Protocol(base_url, token, headers)
        self._http = httpx.Client(timeout=timeout, transport=transport, cookies=cookies)

    @property
    def base_url(self) -> str:
        return self._protocol.base_url

    def __repr__(self) -> str:
        return self._protocol.describe(type(self).__name__)

    @overload
    def call(self, plugin_id: str, procedure: str, input: Any = None) -> Any: ...
    @overload
    def call(
        self, plugin_id: str, procedure: str, input: Any = None, *, type: builtins.type[T]
    ) -> T: ...
    def call(self, plugin_id: str, procedure: str, input: Any = None, *, type: Any = None) -> Any:
        """Call one procedure and return its output (converted to ``type`` when given)."""
        _check_name("procedure", procedure)
        return _convert(self.batch(plugin_id, {procedure: input})[procedure], type)

    def batch(self, plugin_id: str, calls: Mapping[str, Any]) -> dict[str, Any]:
        """Call procedures of one plugin in one atomic request; outputs in request order."""
        request = self._protocol.build(self._http, plugin_id, calls)
        try:
            response = self._http.send(request)
        except httpx.RequestError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.parse(response, list(calls))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCheckstackClient:
    """Asynchronous client of the documented protocol: ``CheckstackClient``'s API, awaited."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cookies: Any = None,
    ) -> None:
        self._protocol = _Protocol(base_url, token, headers)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, cookies=cookies)

    @property
    def base_url(self) -> str:
        return self._protocol.base_url

    def __repr__(self) -> str:
        return self._protocol.describe(type(self).__name__)

    @overload
    async def call(self, plugin_id: str, procedure: str, input: Any = None) -> Any: ...
    @overload
    async def call(
        self, plugin_id: str, procedure: str, input: Any = None, *, type: builtins.type[T]
    ) -> T: ...
    async def call(
        self, plugin_id: str, procedure: str, input: Any = None, *, type: Any = None
    ) -> Any:
        """Call one procedure and return its output (converted to ``type`` when given)."""
        _check_name("procedure", procedure)
        return _convert((await self.batch(plugin_id, {procedure: input}))[procedure], type)

    async def batch(self, plugin_id: str, calls: Mapping[str, Any]) -> dict[str, Any]:
        """Call procedures of one plugin in one atomic request; outputs in request order."""
        request = self._protocol.build(self._http, plugin_id, calls)
        try:
            response = await self._http.send(request)
        except httpx.RequestError as exc:
            raise self._protocol.transport_error(exc) from exc
        return self._protocol.parse(response, list(calls))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
