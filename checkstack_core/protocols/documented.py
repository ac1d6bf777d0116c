"""The documented protocol (SPEC §4.1): ``POST /api/{pluginId}/`` with ``{"proc": input, ...}``.

This is what the Checkstack documentation shows API clients (curl, fetch, requests) using. The
app mounts it in front of the Litestar router (see ``checkstack_core.app``).
"""

from __future__ import annotations

import re
from typing import Any, cast

import msgspec
from litestar import Response
from litestar.types import HTTPScope, Receive, Scope, Send

from ..db import ClientGone
from ..dispatch import Dispatcher
from ..errors import BadRequest, InternalServerError, MethodNotSupported, RpcError
from ..loader import RESERVED_IDS
from ..observability import current_request_id
from .common import (
    Departure,
    check_request,
    decode_json,
    extras_headers,
    log_unexpected,
    receive_body,
    scope_info,
)

_encoder = msgspec.json.Encoder()


def error_response(error: RpcError) -> Response[bytes]:
    """The documented error body with the status of its code (and the error's extra headers)."""
    return Response(
        content=_encoder.encode(error.to_dict()),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def _parse(body: bytes) -> list[tuple[str, Any]]:
    if not body.strip():
        raise BadRequest("Empty batch: name at least one procedure")
    document = decode_json(body)
    if not isinstance(document, dict):
        raise BadRequest(
            "The body must be a JSON object mapping procedure names to inputs, "
            'e.g. {"getSystems": {}}'
        )
    return list(document.items())


PATH = re.compile(r"^/api/([a-z][a-z0-9-]*)/?$")


class DocumentedProtocol:
    """Serves ``/api/{pluginId}[/]`` at the ASGI layer.

    This is the hot path of every API client, so it skips the web framework's routing, signature
    model and response objects: it reads the body, dispatches and writes the answer itself.
    """

    def __init__(self, dispatcher: Dispatcher, limit: int) -> None:
        self.dispatcher = dispatcher
        self.limit = limit
        #: The public URL whose origin cross-site checks accept besides the request's Host.
        self.base_url = dispatcher.host.settings.base_url

    def plugin_id(self, scope: Scope) -> str | None:
        """The plugin id when ``scope`` is a request of this protocol, else ``None``."""
        if scope["type"] != "http":
            return None
        match = PATH.match(scope["path"])
        if match is None or match[1] in RESERVED_IDS:
            return None
        return match[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send, plugin_id: str) -> None:
        """Answer one request; never raises."""
        info = scope_info(scope)
        method = cast("HTTPScope", scope)["method"]
        extra: list[tuple[bytes, bytes]] = []
        try:
            if method != "POST":
                extra.append((b"allow", b"POST"))
                raise MethodNotSupported(f"Method {method} is not supported here")
            self.dispatcher.plugin(plugin_id)  # 404/503 before reading a body for nobody
            check_request(scope, info, self.base_url, writes=True)
            body = await receive_body(receive, info, self.limit)
            calls = _parse(body)
            client = Departure(receive)
            try:
                result = await self.dispatcher.dispatch(
                    plugin_id, calls, info, request_id=current_request_id(), client=client
                )
            finally:
                client.close()
        except ClientGone:
            return  # nobody to answer; the server closes the connection
        except RpcError as error:
            if error.headers:
                extra.extend((k.lower().encode(), v.encode()) for k, v in error.headers.items())
            await _send(send, error.status, _encoder.encode(error.to_dict()), extra)
            return
        except Exception as exc:
            log_unexpected(exc)
            await _send(send, 500, _encoder.encode(InternalServerError().to_dict()), extra)
            return
        await _send(send, 200, _encoder.encode(result.outputs), extras_headers(result.response))


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
