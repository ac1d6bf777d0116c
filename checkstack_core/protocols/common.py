"""What every wire protocol adapter shares: reading a bounded body, request info, cookies."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie as LitestarCookie

from ..auth import RequestInfo
from ..context import Cookie, ResponseExtras
from ..errors import PayloadTooLarge, UnsupportedMediaType
from ..observability import current_request_id

logger = logging.getLogger("checkstack.protocols")

_JSON_TYPES = ("application/json", "text/json")


def request_info(request: Request[Any, Any, Any]) -> RequestInfo:
    """The parts of ``request`` an auth backend may read."""
    headers = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]
    }
    cookies: dict[str, str] = {}
    if "cookie" in headers:
        cookies = dict(request.cookies)
    client = request.scope.get("client")
    return RequestInfo(
        headers=headers,
        cookies=cookies,
        client_host=client[0] if client else None,
        # uvicorn rewrites the scheme from X-Forwarded-Proto only for trusted proxies
        # (--forwarded-allow-ips); reading the header here would let any client claim https.
        secure=request.scope.get("scheme") == "https",
    )


def require_json(request: Request[Any, Any, Any]) -> None:
    """415 unless the body is declared JSON (a missing content type is taken as JSON)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Unsupported content type {media_type!r}: send application/json"
        )


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The request body, or PAYLOAD_TOO_LARGE when it is over ``limit`` bytes.

    A declared length is checked before reading; a chunked body is cut off by Litestar's own
    ``request_max_body_size`` (set to the same limit by the app) while it streams in.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
    return body


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
