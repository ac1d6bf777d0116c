"""The documented protocol (SPEC §4.1): ``POST /api/{pluginId}/`` with ``{"proc": input, ...}``.

This is what the Checkstack documentation shows API clients (curl, fetch, requests) using.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.params import FromPath

from ..dispatch import Dispatcher
from ..errors import BadRequest, InternalServerError, RpcError
from ..observability import current_request_id
from .common import apply_extras, log_unexpected, read_body, request_info, require_json

_decoder = msgspec.json.Decoder()
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
    try:
        document = _decoder.decode(body)
    except msgspec.DecodeError:
        raise BadRequest("Malformed JSON body") from None
    if not isinstance(document, dict):
        raise BadRequest(
            "The body must be a JSON object mapping procedure names to inputs, "
            'e.g. {"getSystems": {}}'
        )
    return list(document.items())


async def serve(
    request: Request[Any, Any, Any], dispatcher: Dispatcher, plugin_id: str, limit: int
) -> Response[bytes]:
    """Answer one documented-protocol request; never raises."""
    try:
        dispatcher.plugin(plugin_id)
        body = await read_body(request, limit)
        require_json(request)
        calls = _parse(body)
    except RpcError as error:
        return error_response(error)
    return await serve_calls(request, dispatcher, plugin_id, calls)


async def serve_calls(
    request: Request[Any, Any, Any],
    dispatcher: Dispatcher,
    plugin_id: str,
    calls: list[tuple[str, Any]],
) -> Response[bytes]:
    """Dispatch already parsed ``calls`` and answer in the documented shape; never raises."""
    try:
        result = await dispatcher.dispatch(
            plugin_id, calls, request_info(request), request_id=current_request_id()
        )
    except RpcError as error:
        return error_response(error)
    except Exception as exc:
        log_unexpected(exc)
        return error_response(InternalServerError())
    response = Response(
        content=_encoder.encode(result.outputs), status_code=200, media_type="application/json"
    )
    return apply_extras(response, result.response)


def route_handlers(dispatcher: Dispatcher, limit: int) -> list[Any]:
    """The Litestar handlers of the documented protocol."""

    @post(["/api/{plugin_id:str}", "/api/{plugin_id:str}/"], status_code=200, name="documented")
    async def documented(
        request: Request[Any, Any, Any], plugin_id: FromPath[str]
    ) -> Response[bytes]:
        return await serve(request, dispatcher, plugin_id, limit)

    return [documented]
