"""Serving the UI: the Jinja2 environment, the page routes with their cross-site check and error
pages, the static files, and the core's own pages (the public status page, its live fragment and
the Atom feed)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, PrefixLoader
from litestar import Request, Response, route
from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from markupsafe import Markup

from ..auth import Principal, PrincipalKind
from ..errors import Forbidden, RpcError
from ..observability import current_request_id
from ..protocols.common import check_origin, check_request, litestar_cookie
from . import FeedEntry, Page, UiRegistrar
from .charts import chart_defs
from .view import View

if TYPE_CHECKING:
    from ..host import Host

logger = logging.getLogger("checkstack.ui")

HERE = Path(__file__).parent
#: The vendored htmx (see ``static/VENDORED.md``).
HTMX_VERSION = "2.0.11"
#: Seconds between refreshes of the status page (``CHECKSTACK_STATUS_REFRESH_SECONDS``).
DEFAULT_REFRESH_SECONDS = 30

#: Every UI answer: never cached (pages show per-user data and, once, secrets), never framed,
#: and no script or style but the server's own files.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
}


def check_form_post(info: Any, base_url: str | None) -> None:
    """The cross-site defence of UI form posts (docs/security.md): a browser sends ``Origin``
    (or at least ``Sec-Fetch-Site``) with every POST; one from another site, or one that names
    no origin at all, is refused before the page runs, whether or not it carries a cookie
    (login forms included)."""
    headers = info.headers
    if "origin" not in headers and "sec-fetch-site" not in headers:
        raise Forbidden("Cross-site request refused: a form post must carry its Origin")
    check_origin(info, base_url)


_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Not found · Checkstack</title><link rel="stylesheet" href="/static/core/app.css"></head>
<body><main id="main"><h1>Not found</h1>
<p class="alert alert-error" role="alert">There is no page at this address.</p>
<p><a href="/">Go to the status page</a></p></main></body></html>
"""


def not_found_page(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """A page instead of JSON when a browser asks for an address outside ``/api`` that does
    not exist; ``None`` for anything else (API clients keep the documented error shape)."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/"):
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    return Response(
        _NOT_FOUND_PAGE, status_code=404, media_type="text/html", headers=SECURITY_HEADERS
    )


def format_time(value: Any, style: str = "datetime") -> str:
    """A datetime as people read it, in UTC (``2026-12-02 06:40 UTC``)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    value = value.astimezone(UTC)
    if style == "date":
        return value.strftime("%Y-%m-%d")
    if style == "iso":
        return value.isoformat().replace("+00:00", "Z")
    return value.strftime("%Y-%m-%d %H:%M UTC")


class UiServer:
    """The UI of one host: what plugins registered, and how it is served."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.registry = registry = UiRegistrar()
        registry.templates("core", HERE / "templates")
        registry.static("core", HERE / "static")
        registry.page("/", status_page, methods=("GET",))
        registry.page("/status/live", status_live, methods=("GET",))
        registry.page("/feed.atom", status_feed, methods=("GET",))
        host.call_hook("checkstack_register_ui", ui=registry)
        registry.sections.sort(key=lambda s: s.order)
        registry.panels.sort(key=lambda p: p.order)
        registry.nav_entries.sort(key=lambda n: (n.order, n.label))
        self.refresh_seconds = int(
            os.environ.get("CHECKSTACK_STATUS_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS)
        )
        self.environment = self._environment()

    def _environment(self) -> Environment:
        loaders = {
            prefix: FileSystemLoader(directory)
            for prefix, directory in self.registry.template_dirs.items()
        }
        env = Environment(
            loader=PrefixLoader(loaders), autoescape=True, trim_blocks=True, lstrip_blocks=True
        )
        env.filters["when"] = format_time
        env.globals["htmx_version"] = HTMX_VERSION
        env.globals["chart_defs"] = chart_defs()
        env.globals["static"] = lambda prefix, name: f"/static/{prefix}/{name}"
        return env

    def template_config(self) -> TemplateConfig[JinjaTemplateEngine]:
        return TemplateConfig(instance=JinjaTemplateEngine.from_environment(self.environment))

    def render_fragment(self, template: str, **context: Any) -> Markup:
        """Render a template to HTML for a section or panel (no page around it)."""
        return Markup(self.environment.get_template(template).render(**context))

    def nav_for(self, principal: Principal, section: str) -> list[Any]:
        entries = []
        for entry in self.registry.nav_entries:
            if entry.section != section:
                continue
            if entry.rules and not any(
                (rule == "signed-in" and principal.kind is not PrincipalKind.ANONYMOUS)
                or principal.holds(rule)
                for rule in entry.rules
            ):
                continue
            entries.append(entry)
        return entries

    # -- routes --------------------------------------------------------------------------------

    def route_handlers(self) -> list[Any]:
        handlers: list[Any] = [self._route(page) for page in self.registry.pages]
        for prefix, directory in self.registry.static_dirs.items():
            handlers.append(
                create_static_files_router(
                    path=f"/static/{prefix}",
                    directories=[directory],
                    name=f"static-{prefix}",
                    cache_control=CacheControlHeader(max_age=3600, public=True),
                )
            )
        return handlers

    def _route(self, page: Page) -> Any:
        server = self

        async def serve_page(request: Request[Any, Any, Any]) -> Response[Any]:
            return await server.serve(page, request)

        return route(
            page.path,
            http_method=list(page.methods),  # type: ignore[arg-type]
            name=f"ui:{page.path}",
            include_in_schema=False,
        )(serve_page)

    async def serve(self, page: Page, request: Request[Any, Any, Any]) -> Response[Any]:
        view = View(self, request)
        try:
            check_request(request.scope, view.info, self.host.settings.base_url, writes=False)
            if view.is_post:
                check_form_post(view.info, self.host.settings.base_url)
            response = await page.handler(view)
        except RpcError as error:
            response = await self.error_page(view, error)
        except Exception as exc:
            logger.error(
                "Unhandled error serving UI page %s %s (request %s)",
                request.method,
                request.url.path,
                current_request_id(),
                exc_info=exc,
            )
            response = await self.error_page(view, RpcError("Internal server error"))
        for cookie in view.extras.cookies:
            response.set_cookie(litestar_cookie(cookie))
        for name, value in view.extras.headers.items():
            response.headers[name] = value
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def error_page(self, view: View, error: RpcError) -> Response[Any]:
        """The answer to a refused or failed page: sign in, or the API's message."""
        headers = dict(error.headers or {})
        if error.code == "UNAUTHORIZED":
            if "set-cookie" in headers:
                # A stale session cookie: cleared by the answer; the same page again as a guest.
                response = view.redirect(view.request.url.path)
                response.headers.update(headers)
                return response
            login = self.registry.login_path
            if login is not None and view.request.url.path != login:
                return view.login_redirect()
        try:
            await view.principal()
        except RpcError:
            view._principal = Principal.anonymous()
        response = await view.render(
            "core/error.html", status=error.status, error=error, title=_error_title(error)
        )
        response.headers.update(headers)
        return response


def _error_title(error: RpcError) -> str:
    return {
        "UNAUTHORIZED": "Sign-in required",
        "FORBIDDEN": "Access denied",
        "NOT_FOUND": "Not found",
        "SERVICE_UNAVAILABLE": "Temporarily unavailable",
    }.get(error.code, "Something went wrong")


# -- the core's pages: the public status page ------------------------------------------------------


async def _sections(view: View) -> tuple[list[Markup], bool]:
    """Every status section this caller may read, and whether any was refused."""
    rendered: list[Markup] = []
    refused = False
    for section in view.server.registry.sections:
        try:
            html = await section.render(view)
        except RpcError as error:
            if error.code not in ("UNAUTHORIZED", "FORBIDDEN", "SERVICE_UNAVAILABLE"):
                raise
            refused = True
            continue
        if html:
            rendered.append(Markup(html))
    return rendered, refused


async def status_page(view: View) -> Response[Any]:
    sections, refused = await _sections(view)
    return await view.render(
        "core/status.html",
        sections=sections,
        refused=refused,
        refresh_seconds=view.server.refresh_seconds,
        title="Status",
    )


async def status_live(view: View) -> Response[Any]:
    """The sections alone, which the status page fetches every few seconds (htmx)."""
    sections, refused = await _sections(view)
    return await view.render(
        "core/status_sections.html",
        sections=sections,
        refused=refused,
        refresh_seconds=view.server.refresh_seconds,
    )


async def status_feed(view: View) -> Response[Any]:
    entries: list[FeedEntry] = []
    for source in view.server.registry.feeds:
        try:
            entries.extend(await source(view))
        except RpcError as error:
            if error.code not in ("UNAUTHORIZED", "FORBIDDEN", "SERVICE_UNAVAILABLE"):
                raise
    entries.sort(key=lambda e: e.updated, reverse=True)
    entries = entries[:50]
    base = str(view.request.base_url).rstrip("/")
    updated = entries[0].updated if entries else datetime(2000, 1, 1, tzinfo=UTC)
    response = await view.render(
        "core/feed.atom", entries=entries, base=base, updated=updated, title="Status"
    )
    response.media_type = "application/atom+xml"
    return response
