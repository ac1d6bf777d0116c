"""The Litestar application built from a :class:`~checkstack_core.host.Host`.

Every route is registered before startup (runtime registration breaks Litestar's OpenAPI cache).
Litestar's own errors under ``/api`` (no such route, wrong method) answer in the documented error
shape, never Litestar's ``{"status_code", "detail"}``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from .errors import STATUS_BY_CODE, InternalServerError, RpcError
from .host import Host
from .observability import RequestIdMiddleware, current_request_id
from .protocols import documented, orpc
from .protocols.common import check_request, request_info
from .settings import Settings
from .ui.server import UiServer, not_found_page

logger = logging.getLogger("checkstack.http")
_CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}
#: Seconds after startup before the heap is frozen (see ``create_app``).
_FREEZE_AFTER = 1.0


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
    if status == 404 and (page := not_found_page(request)) is not None:
        return page  # a browser at a mistyped address of the web UI
    if status == 404:
        message = f"No route for {request.method} {request.url.path}"
    elif status == 405:
        message = f"Method {request.method} is not supported here"
    elif status >= 500:
        message = "Internal server error"
    else:
        message = str(exc.detail)
    error = RpcError.from_code(code, message)
    allow = (exc.headers or {}).get("allow")
    if status == 405 and allow:
        error.headers = {"Allow": allow}  # what the route does accept (RFC 9110 §15.5.6)
    return documented.error_response(error)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.error(
        "Unhandled error serving %s %s (request %s)",
        request.method,
        request.url.path,
        current_request_id(),
        exc_info=exc,
    )
    return documented.error_response(InternalServerError())


async def _engines(host: Host) -> dict[str, Any]:
    """Which engine runs events and jobs, with what an engine reports of itself (``status()``,
    e.g. how many workers are alive); an engine that cannot answer says so, the probe stays up."""
    engines: dict[str, Any] = {}
    for kind, engine, name in (
        ("events", host.events, host.settings.events_engine),
        ("jobs", host.jobs, host.settings.jobs_engine),
    ):
        info: dict[str, Any] = {"engine": name}
        status = getattr(engine, "status", None) if host.running else None
        if status is not None:
            try:
                info.update(await status())
            except Exception as exc:
                info["error"] = type(exc).__name__
        engines[kind] = info
    return engines


class CheckstackApp:
    """The ASGI application: request ids around everything, the documented protocol served at
    the ASGI layer (the hot path), and the Litestar app for every other route and the lifespan.
    """

    def __init__(self, host: Host, litestar: Litestar, documented: documented.DocumentedProtocol):
        self.host = host
        self.litestar = litestar
        self.documented = documented
        self._app = RequestIdMiddleware(self._route)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        plugin_id = self.documented.plugin_id(scope)
        if plugin_id is not None:
            await self.documented(scope, receive, send, plugin_id)
        else:
            await self.litestar(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def create_app(
    host: Host | None = None, *, settings: Settings | None = None, freeze_heap: bool = False
) -> CheckstackApp:
    """Build the app. The host starts in the app's lifespan and stops with it.

    ``freeze_heap`` (a server process, never a test run that builds many apps) moves everything
    alive once the host has started out of the garbage collector's generations.
    """
    host = host or Host(settings)
    limit = host.settings.max_body_size

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        if not host.running:
            await host.start()
            if freeze_heap:
                # Everything loaded so far (modules, contracts, mappers) lives as long as the
                # process: keep it out of the collector's way, so collections stay short. The
                # full collection first takes ~0.1 s: done just after the server is ready
                # rather than before it may answer.
                asyncio.get_running_loop().call_later(_FREEZE_AFTER, _freeze_heap)
        try:
            yield
        finally:
            await host.stop()

    @get("/healthz", sync_to_thread=False, include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        database = await host.db.ping()
        failed = sorted(r.id for r in host.plugins.values() if r.status == "failed")
        ready = database and host.running
        body = {
            "status": "ready" if ready else "unavailable",
            "database": "ok" if database else "unreachable",
            "plugins": {
                "active": sorted(r.id for r in host.active()),
                "failed": failed,
            },
            "engines": await _engines(host),
            # Calls holding a database turn, and calls queued for one: a process that stays
            # busy with no traffic coming in has calls stuck inside.
            "calls": {"running": host.db.calls_running, "waiting": host.db.calls_waiting},
        }
        return Response(body, status_code=200 if ready else 503)

    @get("/api/plugins", include_in_schema=False)
    async def list_plugins(request: Request[Any, Any, Any]) -> Response[Any]:
        """The plugin report; the same procedure as ``POST /api/core/ {"getPlugins": {}}``."""
        info = request_info(request)
        try:
            check_request(request.scope, info, host.settings.base_url, writes=False)
            result = await host.dispatcher.dispatch(
                "core", [("getPlugins", None)], info, request_id=current_request_id()
            )
        except RpcError as error:
            return documented.error_response(error)
        return Response(msgspec.to_builtins(result.outputs["getPlugins"]), status_code=200)

    routes: list[Any] = [healthz, readyz, list_plugins]
    routes.extend(orpc.route_handlers(host.dispatcher, limit))
    from .openapi import route_handlers as openapi_routes

    routes.extend(openapi_routes(host))
    host.call_hook("checkstack_register_routes", register=routes.append)
    ui = UiServer(host)
    routes.extend(ui.route_handlers())

    litestar = Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
        openapi_config=None,
        request_max_body_size=limit,
        debug=False,
        logging_config=None,
        template_config=ui.template_config(),
    )
    litestar.state.host = host
    return CheckstackApp(host, litestar, documented.DocumentedProtocol(host.dispatcher, limit))


def _factory() -> CheckstackApp:
    """Entry for ``uvicorn --factory checkstack_core.app:_factory`` (workers, reload)."""
    from .observability import configure_logging

    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings=settings, freeze_heap=True)
