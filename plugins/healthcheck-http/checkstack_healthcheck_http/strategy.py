"""The ``http`` strategy: one request, then status code, body, JSONPath, header and latency
checks, in that order; the first failure decides the message."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

from .jsonpath import JsonPathError, compile_path

if TYPE_CHECKING:
    import httpx

#: Bytes of the body read for assertions (and kept, first 4 KiB, in the result).
MAX_BODY = 1024 * 1024
KEPT_BODY = 4096

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Operator = Literal[
    "exists", "notExists", "equals", "notEquals", "contains", "matches", "greaterThan", "lessThan"
]


class _Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    pass


class BodyContains(_Config, tag="bodyContains", tag_field="type"):
    """The body contains ``value`` (plain text)."""

    value: Annotated[str, Meta(min_length=1, max_length=10_000)]


class BodyNotContains(_Config, tag="bodyNotContains", tag_field="type"):
    """The body does not contain ``value``."""

    value: Annotated[str, Meta(min_length=1, max_length=10_000)]


class BodyMatches(_Config, tag="bodyMatches", tag_field="type"):
    """The body matches the regular expression ``pattern`` (Python syntax, searched)."""

    pattern: Annotated[str, Meta(min_length=1, max_length=1_000)]


class JsonPath(_Config, tag="jsonPath", tag_field="type"):
    """The JSON body's values at ``path`` (``$.data.items[0].status``, ``$..id``,
    ``$.items[*].ok``) satisfy ``operator`` (against ``value`` where it takes one): at least
    one value for ``exists``/``equals``/``contains``/``matches``/``greaterThan``/``lessThan``,
    none for ``notExists``/``notEquals``."""

    path: Annotated[str, Meta(min_length=1, max_length=500)]
    operator: Operator = "exists"
    value: Any = None


class Header(_Config, tag="header", tag_field="type"):
    """The response header ``name`` (any case) satisfies ``operator``."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    operator: Literal["exists", "notExists", "equals", "contains", "matches"] = "exists"
    value: Annotated[str, Meta(max_length=10_000)] | None = None


Assertion = BodyContains | BodyNotContains | BodyMatches | JsonPath | Header
StatusCode = Annotated[int, Meta(ge=100, le=599)]


class HttpConfig(_Config):
    """One HTTP request and what its answer must look like."""

    url: Annotated[str, Meta(min_length=1, max_length=2_000)]
    method: Method = "GET"
    headers: Annotated[dict[str, Annotated[str, Meta(max_length=10_000)]], Meta(max_length=50)] = {}
    #: Header values that are secrets (tokens): encrypted at rest, masked in outputs.
    secret_headers: Annotated[dict[str, Secret], Meta(max_length=20)] = {}
    body: Annotated[str, Meta(max_length=100_000)] | None = None
    #: The accepted status codes; empty: any 2xx or 3xx.
    expected_status_codes: Annotated[list[StatusCode], Meta(max_length=50)] = []
    assertions: Annotated[list[Assertion], Meta(max_length=50)] = []
    #: A healthy answer slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None
    verify_tls: bool = True
    follow_redirects: bool = True
    max_redirects: Annotated[int, Meta(ge=0, le=20)] = 5


#: Clients per event loop and TLS/redirect setting, used in turn. httpcore's pool scans every
#: connection it holds for each request, so several small pools cost far less than one big one
#: when hundreds of checks run at once.
SHARDS = 32
_CLIENTS: dict[tuple[int, bool, int, int], httpx.AsyncClient] = {}
_turn = itertools.count()


def _client(verify: bool, max_redirects: int) -> httpx.AsyncClient:
    """A pooled client (connections are reused, as a browser would)."""
    import httpx

    key = (id(asyncio.get_running_loop()), verify, max_redirects, next(_turn) % SHARDS)
    client = _CLIENTS.get(key)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            verify=verify,
            max_redirects=max_redirects,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=16),
            timeout=None,
            trust_env=False,
        )
        _CLIENTS[key] = client
    return client


class HttpStrategy(Strategy[HttpConfig]):
    id: ClassVar[str] = "http"
    display_name: ClassVar[str] = "HTTP"
    description: ClassVar[str] = (
        "Send an HTTP request; check the status code, body text, regular expression, JSONPath "
        "values, headers and latency."
    )
    config_type: ClassVar[type[msgspec.Struct]] = HttpConfig

    def validate(self, config: HttpConfig) -> list[tuple[str, list[str | int]]]:
        import httpx

        problems: list[tuple[str, list[str | int]]] = []
        try:
            url = httpx.URL(config.url)
        except (httpx.InvalidURL, ValueError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            problems.append(("url must be an http:// or https:// URL with a host", ["url"]))
        for name in (*config.headers, *config.secret_headers):
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                problems.append((f"Invalid header name: {name[:50]}", ["headers"]))
        for index, assertion in enumerate(config.assertions):
            where: list[str | int] = ["assertions", index]
            if isinstance(assertion, BodyMatches):
                _regex(assertion.pattern, [*where, "pattern"], problems)
            elif isinstance(assertion, JsonPath):
                try:
                    compile_path(assertion.path)
                except JsonPathError as exc:
                    problems.append((str(exc), [*where, "path"]))
                if assertion.operator == "matches":
                    _regex(str(assertion.value), [*where, "value"], problems)
                if assertion.operator not in ("exists", "notExists") and assertion.value is None:
                    problems.append((f"{assertion.operator} needs a value", [*where, "value"]))
            elif isinstance(assertion, Header):
                if assertion.operator not in ("exists", "notExists") and assertion.value is None:
                    problems.append((f"{assertion.operator} needs a value", [*where, "value"]))
                if assertion.operator == "matches" and assertion.value is not None:
                    _regex(assertion.value, [*where, "value"], problems)
        return problems

    async def run(self, config: HttpConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: httpx (with its command line's rich, click and pygments when installed)
        # loads only where HTTP checks run or are validated, not at server start.
        import httpx

        client = _client(config.verify_tls, config.max_redirects)
        headers = {**config.headers, **config.secret_headers}
        started = time.monotonic()
        try:
            async with asyncio.timeout(allotted):
                request = client.build_request(
                    config.method,
                    config.url,
                    headers=headers,
                    content=config.body.encode() if config.body is not None else None,
                )
                response = await client.send(
                    request, follow_redirects=config.follow_redirects, stream=True
                )
                try:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= MAX_BODY:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            return _failed(f"Timed out after {seconds(allotted)} s", started)
        except httpx.TooManyRedirects:
            return _failed(f"Too many redirects (more than {config.max_redirects})", started)
        except httpx.TimeoutException:
            return _failed(f"Timed out after {seconds(allotted)} s", started)
        except (httpx.HTTPError, OSError) as exc:
            return _failed(network_message(exc, allotted), started)
        latency = round((time.monotonic() - started) * 1000, 3)
        text = bytes(body).decode(response.encoding or "utf-8", errors="replace")
        data: dict[str, Any] = {
            "statusCode": response.status_code,
            "reason": response.reason_phrase,
            "httpVersion": response.http_version,
            "headers": {
                k.lower(): v for k, v in response.headers.items() if k.lower() != "set-cookie"
            },
            "bodyLength": len(body),
            "body": text[:KEPT_BODY],
            "redirects": len(response.history),
            "latencyMs": latency,
        }
        expected = config.expected_status_codes
        if (
            (response.status_code not in expected)
            if expected
            else not (200 <= response.status_code < 400)
        ):
            wanted = ", ".join(map(str, expected)) if expected else "2xx or 3xx"
            return CheckResult(
                "unhealthy",
                latency_ms=latency,
                message=f"HTTP {response.status_code} (expected {wanted})",
                data=data,
            )
        failure = _first_failure(config.assertions, text, response.headers)
        if failure is not None:
            data["failedAssertion"] = failure[0]
            return CheckResult(
                "unhealthy",
                latency_ms=latency,
                message=f"Assertion {failure[0] + 1} failed: {failure[1]}",
                data=data,
            )
        if config.degraded_latency_ms is not None and latency > config.degraded_latency_ms:
            return CheckResult(
                "degraded",
                latency_ms=latency,
                message=f"Slow response: {latency:.0f} ms "
                f"(threshold {config.degraded_latency_ms:g} ms)",
                data=data,
            )
        return CheckResult(
            "healthy",
            latency_ms=latency,
            message=f"HTTP {response.status_code} in {latency:.0f} ms",
            data=data,
        )


def _regex(pattern: str, path: list[str | int], problems: list[Any]) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.append((f"Invalid regular expression: {exc}", path))


def _failed(message: str, started: float) -> CheckResult:
    return CheckResult(
        "unhealthy",
        latency_ms=None,
        message=message,
        data={"error": message, "elapsedMs": round((time.monotonic() - started) * 1000, 3)},
    )


_MISSING = object()


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    if operator in ("equals", "notEquals"):
        same = actual == expected or (
            not isinstance(actual, dict | list) and str(actual) == str(expected)
        )
        return same
    if operator == "contains":
        if isinstance(actual, list):
            return expected in actual
        return isinstance(actual, str) and str(expected) in actual
    if operator == "matches":
        return (
            re.search(str(expected), actual if isinstance(actual, str) else str(actual)) is not None
        )
    if operator in ("greaterThan", "lessThan"):
        try:
            a, b = float(actual), float(expected)
        except (TypeError, ValueError):
            return False
        return a > b if operator == "greaterThan" else a < b
    return False


def _first_failure(
    assertions: list[Assertion], text: str, headers: httpx.Headers
) -> tuple[int, str] | None:
    """The index and description of the first assertion that fails."""
    parsed: Any = _MISSING
    for index, assertion in enumerate(assertions):
        if isinstance(assertion, BodyContains):
            if assertion.value not in text:
                return index, "the body does not contain the expected text"
        elif isinstance(assertion, BodyNotContains):
            if assertion.value in text:
                return index, "the body contains the unwanted text"
        elif isinstance(assertion, BodyMatches):
            if re.search(assertion.pattern, text) is None:
                return index, "the body does not match the pattern"
        elif isinstance(assertion, JsonPath):
            if parsed is _MISSING:
                try:
                    parsed = msgspec.json.decode(text)
                except msgspec.DecodeError:
                    parsed = None
                    return index, "the body is not JSON"
            if parsed is None and text.strip() != "null":
                return index, "the body is not JSON"
            values = compile_path(assertion.path).find(parsed)
            op = assertion.operator
            if op == "exists":
                ok = bool(values)
            elif op == "notExists":
                ok = not values
            elif op == "notEquals":
                ok = bool(values) and not any(
                    _compare("equals", v, assertion.value) for v in values
                )
            else:
                ok = any(_compare(op, v, assertion.value) for v in values)
            if not ok:
                return index, f"JSONPath {assertion.path} {_describe(op)}"
        elif isinstance(assertion, Header):
            value = headers.get(assertion.name)
            op = assertion.operator
            if op == "exists":
                ok = value is not None
            elif op == "notExists":
                ok = value is None
            elif value is None:
                ok = False
            elif op == "equals":
                ok = value == assertion.value
            elif op == "contains":
                ok = str(assertion.value) in value
            else:
                ok = re.search(str(assertion.value), value) is not None
            if not ok:
                return index, f"header {assertion.name} {_describe(op)}"
    return None


def _describe(operator: str) -> str:
    return {
        "exists": "does not exist",
        "notExists": "exists",
        "equals": "does not equal the expected value",
        "notEquals": "equals the unwanted value",
        "contains": "does not contain the expected value",
        "matches": "does not match the pattern",
        "greaterThan": "is not greater than the expected value",
        "lessThan": "is not less than the expected value",
    }[operator]
