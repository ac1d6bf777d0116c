"""What every wire protocol adapter shares: reading and decoding a bounded body, request info,
cookies, and the checks every API request passes before its body is read (hostile headers,
ambiguous credentials, cross-site requests).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie as LitestarCookie
from litestar.types import Receive, ReceiveMessage, Scope

from ..auth import RequestInfo
from ..context import Cookie, ResponseExtras
from ..errors import BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType
from ..limits import MAX_JSON_DEPTH, json_too_deep
from ..observability import current_request_id

logger = logging.getLogger("checkstack.protocols")

_JSON_TYPES = ("application/json", "text/json")
_decoder = msgspec.json.Decoder()
#: Cookies whose name starts with this belong to Checkstack (the session cookie): one that
#: appears twice with different values is refused, since which one counts would be a guess.
PLATFORM_COOKIE_PREFIX = "checkstack"
# Control characters a header value must not hold (HTAB is allowed by RFC 9110). Values can be
# stored (a session's user agent) and logged; NUL cannot even be stored by PostgreSQL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


class Departure:
    """Notices that a request's client hung up, once the request's body has been read.

    The server's ``receive`` then answers only when the connection closes (``http.disconnect``);
    :meth:`watch` starts waiting for that in a task, which :meth:`close` ends. The database
    watches only calls that have to queue for a turn, so an uncontended call pays nothing.
    """

    __slots__ = ("_receive", "_task")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._task: asyncio.Future[ReceiveMessage] | None = None

    def watch(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._receive())

    @property
    def gone(self) -> bool:
        task = self._task
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return False
        return task.result()["type"] == "http.disconnect"

    def close(self) -> None:
        task = self._task
        if task is None:
            return
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved: a failed receive is not worth a warning
        else:
            task.cancel()


def decode_json(data: bytes) -> Any:
    """Decode a JSON text from a request, refusing hostile text with BAD_REQUEST.

    Every decoder of every protocol goes through here, before anything else looks at the input:
    nesting deeper than :data:`~checkstack_core.limits.MAX_JSON_DEPTH`, invalid UTF-8 and
    malformed JSON are a 400, never a 500 or a traceback in the log.
    """
    if json_too_deep(data):
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return _decoder.decode(data)
    except UnicodeDecodeError:
        raise BadRequest("Malformed JSON body: text is not valid UTF-8") from None
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest("Malformed JSON body") from None


def query_value(query: bytes | str, name: str) -> bytes:
    """The last value of ``name`` in a query string, percent-decoded to bytes (as oRPC reads
    ``data`` and ``batch``); ``b""`` when absent. The bytes go to :func:`decode_json`, which
    checks their UTF-8 (``urllib``'s decoding would silently replace invalid sequences)."""
    raw = query.encode() if isinstance(query, str) else query
    wanted = name.encode()
    found = b""
    for part in raw.split(b"&"):
        key, _sep, value = part.partition(b"=")
        if unquote_to_bytes(key.replace(b"+", b" ")) == wanted:
            found = unquote_to_bytes(value.replace(b"+", b" "))
    return found


_INFO_KEY = "checkstack.request_info"


def parse_cookies(header: str) -> dict[str, str]:
    """``a=1; b="2"`` → ``{"a": "1", "b": "2"}`` (the first of a repeated name wins)."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name and name not in cookies:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies[name] = unquote(value)
    return cookies


def scope_info(scope: Any) -> RequestInfo:
    """The parts of an HTTP request an auth backend may read, built once per request."""
    cached: RequestInfo | None = scope.get(_INFO_KEY)
    if cached is not None:
        return cached
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    # HTTP/2 may split cookies over several headers: read them all, not only the last one.
    cookie_values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"]
    cookie_header = "; ".join(cookie_values) if len(cookie_values) > 1 else headers.get("cookie")
    client = scope.get("client")
    info = scope[_INFO_KEY] = RequestInfo(
        headers=headers,
        cookies=parse_cookies(cookie_header) if cookie_header else {},
        client_host=client[0] if client else None,
        # uvicorn rewrites the scheme from X-Forwarded-Proto only for trusted proxies
        # (--forwarded-allow-ips); reading the header here would let any client claim https.
        secure=scope.get("scheme") == "https",
    )
    return info


def request_info(request: Request[Any, Any, Any]) -> RequestInfo:
    """:func:`scope_info` of a Litestar request."""
    return scope_info(request.scope)


def check_json(info: RequestInfo) -> None:
    """415 unless the body is declared JSON.

    A missing content type is taken as JSON, except on a cookie-authenticated request: browsers
    send a body without one cross-site and without a preflight (``sendBeacon``, a ``no-cors``
    ``fetch`` of a Blob), so it is refused there (see :func:`check_request`).
    """
    content_type = info.headers.get("content-type")
    if content_type is None:
        if cookie_authenticated(info):
            raise UnsupportedMediaType(
                "A request authenticated by a cookie must declare its body: "
                "send Content-Type: application/json"
            )
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Unsupported content type {media_type!r}: send application/json"
        )


def require_json(request: Request[Any, Any, Any]) -> None:
    """:func:`check_json` of a Litestar request."""
    check_json(request_info(request))


def cookie_authenticated(info: RequestInfo) -> bool:
    """Whether a browser could have added this request's credentials on its own: it carries
    cookies and no ``Authorization`` header (which only a script of the caller can set).

    The core does not know the auth plugin's cookie, so any cookie counts: a request with
    unrelated cookies only has to pass the same checks a session's does.
    """
    return bool(info.cookies) and not info.headers.get("authorization")


def check_request(scope: Scope, info: RequestInfo, base_url: str | None, *, writes: bool) -> None:
    """The checks every API request passes before its body is read.

    - BAD_REQUEST for a header value with control characters, more than one ``Authorization``
      header, or a Checkstack cookie given twice with different values: which credential
      counts would be a guess (servers and proxies disagree on first or last).
    - For a request that may change state (``writes``, i.e. every POST): UNSUPPORTED_MEDIA_TYPE
      unless the body is JSON (:func:`check_json`: a cookie-authenticated one must say so), and
      when it is :func:`cookie_authenticated`, FORBIDDEN if the browser says it comes from
      another site (:func:`check_origin`).
    """
    headers = scope["headers"]  # ASGI lower-cases the names
    # One C pass over all values deleting control bytes (a regex search is ~3x slower and one
    # pass per header more still, on every request).
    values = b"".join([value for _name, value in headers])
    if len(values.translate(None, _CONTROL_BYTES)) != len(values):
        raise BadRequest("A header value holds control characters")
    names = [name for name, _value in headers]
    if names.count(b"authorization") > 1:
        raise BadRequest("More than one Authorization header: send exactly one")
    if b"cookie" in names:
        check_cookies(v.decode("latin-1") for k, v in headers if k == b"cookie")
    if writes:
        check_json(info)
        if cookie_authenticated(info):
            check_origin(info, base_url)


def check_cookies(headers: Iterable[str]) -> None:
    """BAD_REQUEST when a Checkstack cookie appears twice with different values."""
    seen: dict[str, str] = {}
    for header in headers:
        for part in header.split(";"):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name.startswith(PLATFORM_COOKIE_PREFIX):
                continue
            value = value.strip()
            if seen.setdefault(name, value) != value:
                raise BadRequest(f"The cookie {name} is sent more than once: send it once")


def check_header_values(headers: Mapping[str, str]) -> None:
    """BAD_REQUEST when a header name or value (e.g. of a batch item) holds control characters."""
    for name, value in headers.items():
        if _CONTROL.search(name) is not None or _CONTROL.search(value) is not None:
            raise BadRequest("A header value holds control characters")


def _origin(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


def own_origins(info: RequestInfo, base_url: str | None) -> set[str]:
    """The origins this server answers as: its Host with its scheme, and the base URL's."""
    origins: set[str] = set()
    host = info.headers.get("host")
    if host:
        origins.add(_origin("https" if info.secure else "http", host))
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme and parts.netloc:
            origins.add(_origin(parts.scheme.lower(), parts.netloc))
    return origins


def check_origin(info: RequestInfo, base_url: str | None) -> None:
    """FORBIDDEN when the browser says the request comes from another site: an ``Origin`` that
    is not one of :func:`own_origins` (``null`` included), or ``Sec-Fetch-Site: cross-site``."""
    origin = info.headers.get("origin")
    cross_site = info.headers.get("sec-fetch-site", "").strip().lower() == "cross-site"
    if cross_site or (
        origin is not None and _normalized(origin) not in own_origins(info, base_url)
    ):
        raise Forbidden(
            "Cross-site request refused: its Origin is not this server's (behind a proxy that "
            "changes the Host, set CHECKSTACK_BASE_URL to the public URL)"
        )


def _normalized(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.netloc:
        return origin  # "null" or garbage: matches nothing
    return _origin(parts.scheme.lower(), parts.netloc)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")


def _check_declared_length(info: RequestInfo, limit: int) -> None:
    declared = info.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The body of a Litestar request, or PAYLOAD_TOO_LARGE when it is over ``limit`` bytes.

    A declared length is checked before reading; a chunked body is cut off by Litestar's own
    ``request_max_body_size`` (set to the same limit by the app) while it streams in.
    """
    _check_declared_length(request_info(request), limit)
    body = await request.body()
    if len(body) > limit:
        raise _too_large(limit)
    return body


async def receive_body(receive: Receive, info: RequestInfo, limit: int) -> bytes:
    """The body from a raw ASGI ``receive``, stopping as soon as it passes ``limit`` bytes."""
    _check_declared_length(info, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def extras_headers(extras: ResponseExtras) -> list[tuple[bytes, bytes]]:
    """A handler's cookies and headers as raw ASGI response headers."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extras.headers.items()]
    raw.extend(
        (b"set-cookie", litestar_cookie(c).to_header(header="").encode("latin-1"))
        for c in extras.cookies
    )
    return raw


def litestar_cookie(cookie: Cookie) -> LitestarCookie:
    """A handler's cookie as Litestar's, for a response or a ``set-cookie`` header value."""
    return LitestarCookie(
        key=cookie.name,
        value=cookie.value,
        max_age=cookie.max_age,
        httponly=cookie.http_only,
        samesite=cookie.same_site,
        secure=cookie.secure,
        path=cookie.path,
    )


def apply_extras(response: Response[Any], extras: ResponseExtras) -> Response[Any]:
    """Add the cookies and headers handlers asked for to ``response``."""
    for cookie in extras.cookies:
        response.set_cookie(litestar_cookie(cookie))
    for name, value in extras.headers.items():
        response.headers[name] = value
    return response


def log_unexpected(exc: BaseException) -> None:
    logger.error(
        "Unexpected error while serving a procedure call (request %s)",
        current_request_id(),
        exc_info=exc,
    )
