"""What every wire protocol adapter shares: reading a bounded body, request info, cookies."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from litestar import Request, Response
from litestar.datastructures import Cookie as LitestarCookie
from litestar.types import Receive

from ..auth import RequestInfo
from ..context import Cookie, ResponseExtras
from ..errors import PayloadTooLarge, UnsupportedMediaType
from ..observability import current_request_id

logger = logging.getLogger("checkstack.protocols")

_JSON_TYPES = ("application/json", "text/json")


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
    cookie_header = headers.get("cookie")
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
    """415 unless the body is declared JSON (a missing content type is taken as JSON)."""
    content_type = info.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Unsupported content type {media_type!r}: send application/json"
        )


def require_json(request: Request[Any, Any, Any]) -> None:
    """:func:`check_json` of a Litestar request."""
    check_json(request_info(request))


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
