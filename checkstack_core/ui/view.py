"""What a page handler works with: the request, procedure calls as the signed-in user, rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response
from litestar.response import Redirect, Template
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..auth import Principal
from ..context import ResponseExtras, UnitOfWork
from ..dispatch import database_busy
from ..observability import current_request_id
from ..protocols.common import request_info

if TYPE_CHECKING:
    from .server import UiServer


class Form:
    """A submitted form: ``form["name"]`` (last value, ``""`` when absent), ``form.all(name)``."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> str:
        values = self._values.get(name)
        return values[-1] if values else ""

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name)
        return values[-1] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def __contains__(self, name: str) -> bool:
        return name in self._values


class View:
    """One page request. Procedure calls go through the dispatcher as the signed-in user."""

    def __init__(self, server: UiServer, request: Request[Any, Any, Any]) -> None:
        self.server = server
        self.host = server.host
        self.request = request
        self.info = request_info(request)
        #: Cookies and headers the called procedures asked for (``login`` sets the session).
        self.extras = ResponseExtras()
        self._principal: Principal | None = None
        self._form: Form | None = None
        #: Answers shared by the sections of one page (see :meth:`once`).
        self.memo: dict[str, Any] = {}

    # -- the request ---------------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        """Path parameters (``{id:str}`` in the page's path)."""
        return dict(self.request.path_params)

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def is_post(self) -> bool:
        return self.request.method == "POST"

    @property
    def is_htmx(self) -> bool:
        """Whether htmx asked (render a fragment rather than the whole page)."""
        return self.request.headers.get("hx-request") == "true"

    async def form(self) -> Form:
        """The submitted form fields (``application/x-www-form-urlencoded`` or multipart)."""
        if self._form is None:
            data = await self.request.form()
            values: dict[str, list[str]] = {}
            for key, value in data.multi_items():
                if isinstance(value, str):
                    values.setdefault(key, []).append(value)
            self._form = Form(values)
        return self._form

    # -- procedures ----------------------------------------------------------------------------

    def active(self, plugin_id: str) -> bool:
        """Whether plugin ``plugin_id`` is installed and running."""
        record = self.host.plugins.get(plugin_id)
        return record is not None and record.status == "active"

    def offers(self, plugin_id: str, procedure: str) -> bool:
        """Whether an active plugin ``plugin_id`` has procedure ``procedure`` (optional plugins
        such as healthcheck are asked only when they offer what a page needs)."""
        record = self.host.plugins.get(plugin_id)
        return (
            record is not None
            and record.status == "active"
            and record.contract is not None
            and procedure in record.contract.by_name
        )

    async def call(self, plugin_id: str, procedure: str, input: Any = None) -> Any:
        """Call one procedure as the signed-in user; its output as JSON-like data (camelCase
        keys, datetimes kept). Raises :class:`~checkstack_core.errors.RpcError`."""
        return (await self.batch(plugin_id, {procedure: input}))[procedure]

    async def batch(self, plugin_id: str, calls: Mapping[str, Any]) -> dict[str, Any]:
        """Call several procedures of one plugin in one transaction (all or nothing)."""
        self._check_method(plugin_id, calls)
        raw = [(name, msgspec.to_builtins(value)) for name, value in calls.items()]
        result = await self.host.dispatcher.dispatch(
            plugin_id, raw, self.info, request_id=current_request_id()
        )
        self._principal = result.principal
        self.extras.cookies.extend(result.response.cookies)
        self.extras.headers.update(result.response.headers)
        return {
            name: msgspec.to_builtins(output, builtin_types=(datetime,))
            for name, output in result.outputs.items()
        }

    async def once(self, key: str, factory: Callable[[], Awaitable[Any]]) -> Any:
        """``await factory()`` once per request: sections of one page share an answer (the
        catalog's systems, say) under a key such as ``"catalog.systems"``."""
        if key not in self.memo:
            self.memo[key] = await factory()
        return self.memo[key]

    def _check_method(self, plugin_id: str, calls: Mapping[str, Any]) -> None:
        """Mutations run only for POST requests, which passed the cross-site check."""
        if self.is_post:
            return
        record = self.host.plugins.get(plugin_id)
        contract = record.contract if record is not None else None
        for name in calls:
            procedure = contract.by_name.get(name) if contract is not None else None
            if procedure is not None and procedure.kind != "query":
                raise RuntimeError(
                    f"UI page {self.request.url.path} called mutation {plugin_id}.{name} on a "
                    f"{self.method} request: mutations belong to POST (a form)"
                )

    async def principal(self) -> Principal:
        """Who is signed in (the anonymous principal for guests)."""
        if self._principal is None:
            dispatcher = self.host.dispatcher
            uow = UnitOfWork(self.host, read_only=True)
            try:
                async with self.host.db.turn():
                    self._principal = await dispatcher.authenticate(self.info, uow)
            except PoolTimeout:
                raise database_busy() from None
            finally:
                await uow.close()
        return self._principal

    # -- answers -------------------------------------------------------------------------------

    async def render(self, template: str, *, status: int = 200, **context: Any) -> Response[Any]:
        """Render ``template`` (``<prefix>/<name>``) with ``context`` plus what every page
        gets: ``principal``, ``nav`` (the entries this caller would not be refused),
        ``admin_nav``, ``path`` and ``htmx``."""
        principal = await self.principal()
        context.setdefault("principal", principal)
        context.setdefault("nav", self.server.nav_for(principal, "main"))
        context.setdefault("admin_nav", self.server.nav_for(principal, "admin"))
        context.setdefault("path", self.request.url.path)
        context.setdefault("htmx", self.is_htmx)
        context.setdefault("login_path", self.server.registry.login_path)
        return Template(template_name=template, context=context, status_code=status)

    def redirect(self, url: str) -> Response[Any]:
        """After a successful form post: ``303 See Other`` (``HX-Redirect`` for htmx)."""
        if self.is_htmx:
            return Response(b"", status_code=200, headers={"HX-Redirect": url})
        return Redirect(url, status_code=303)

    def login_redirect(self) -> Response[Any]:
        """To the sign-in page, coming back here afterwards."""
        target = self.server.registry.login_path or "/"
        here = self.request.url.path
        if self.request.url.query:
            here += "?" + self.request.url.query
        return self.redirect(f"{target}?next={quote(here, safe='/')}")
