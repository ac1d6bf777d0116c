"""The web UI: server-rendered pages that plugins contribute (SPEC §11).

A plugin adds pages, navigation entries, sections of the public status page, entries of the
status feed and panels of a system's page by implementing the ``checkstack_register_ui`` hook
(see ``docs/ui.md``)::

    from checkstack_core import hookimpl

    @hookimpl
    def checkstack_register_ui(ui):
        ui.templates("hello", Path(__file__).parent / "templates")
        ui.page("/hello", greeting_page)
        ui.nav("Greeting", "/hello", section="main")

A page handler receives a :class:`View` and returns ``await view.render(...)`` or
``view.redirect(...)``. Everything it shows comes from procedures it calls **in process, through
the dispatcher, as the signed-in user** (``await view.call("hello", "getGreeting")``): the same
authentication, access rules, validation and errors as over HTTP. The UI decides nothing about
access itself; navigation entries may name rules only to hide links that would be refused.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .view import View

__all__ = [
    "FeedEntry",
    "NavEntry",
    "Page",
    "Panel",
    "Section",
    "UiRegistrar",
    "View",
    "field_errors",
    "offset_of",
]

PageHandler = Callable[["View"], Awaitable[Any]]
#: Renders a piece of HTML (``Markup``/``str``) or ``None`` to show nothing.
SectionRenderer = Callable[["View"], Awaitable[Any]]
PanelRenderer = Callable[["View", dict[str, Any]], Awaitable[Any]]
FeedSource = Callable[["View"], Awaitable[Sequence["FeedEntry"]]]

_PREFIX = re.compile(r"^[a-z][a-z0-9-]*$")
_RESERVED = ("/api", "/static/", "/healthz", "/readyz")


@dataclass(frozen=True, slots=True)
class Page:
    """A page served at ``path`` (Litestar path syntax: ``/auth/applications/{id:str}``)."""

    path: str
    handler: PageHandler
    methods: tuple[str, ...] = ("GET", "POST")


@dataclass(frozen=True, slots=True)
class NavEntry:
    """A link in the header (``section="main"``) or the admin menu (``section="admin"``).

    ``rules``: show the link only to callers holding at least one of these qualified rules
    (empty: everyone; ``"signed-in"`` may be named to show it to any signed-in user). This only
    hides links whose page would answer ``Missing access``; it grants and refuses nothing.
    """

    label: str
    href: str
    section: Literal["main", "admin"] = "admin"
    order: int = 100
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A section of the public status page at ``/`` (lower ``order`` first)."""

    render: SectionRenderer
    order: int = 100


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel on a system's page, given the system as the catalog returns it."""

    title: str
    render: PanelRenderer
    order: int = 100


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the status feed (``/feed.atom``)."""

    id: str
    title: str
    updated: datetime
    summary: str = ""
    link: str = "/"


@dataclass
class UiRegistrar:
    """Collects what plugins contribute through ``checkstack_register_ui``."""

    template_dirs: dict[str, Path] = field(default_factory=dict)
    static_dirs: dict[str, Path] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    nav_entries: list[NavEntry] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    feeds: list[FeedSource] = field(default_factory=list)
    #: The page that signs people in (the auth plugin's); pages refused with
    #: ``Authentication required`` redirect there with ``?next=<path>``.
    login_path: str | None = None

    def templates(self, prefix: str, directory: Path) -> None:
        """Serve the Jinja2 templates of ``directory`` as ``<prefix>/<name>`` (use your plugin
        id). Templates extend ``core/base.html``."""
        self._check_prefix(prefix, self.template_dirs)
        self.template_dirs[prefix] = Path(directory)

    def static(self, prefix: str, directory: Path) -> None:
        """Serve the files of ``directory`` at ``/static/<prefix>/`` (use your plugin id)."""
        self._check_prefix(prefix, self.static_dirs)
        self.static_dirs[prefix] = Path(directory)

    def page(
        self, path: str, handler: PageHandler, *, methods: Sequence[str] = ("GET", "POST")
    ) -> None:
        """Serve ``handler`` at ``path``. ``POST`` requests pass the cross-site check first."""
        if not path.startswith("/") or any(
            path == r.rstrip("/") or path.startswith(r if r.endswith("/") else r + "/")
            for r in _RESERVED
        ):
            raise ValueError(
                f"UI page path {path!r} must start with / and not be under {_RESERVED}"
            )
        if any(p.path == path for p in self.pages):
            raise ValueError(f"UI page {path!r} is registered twice")
        self.pages.append(Page(path, handler, tuple(m.upper() for m in methods)))

    def nav(
        self,
        label: str,
        href: str,
        *,
        section: Literal["main", "admin"] = "admin",
        order: int = 100,
        rules: Sequence[str] = (),
    ) -> None:
        """Add a navigation link (see :class:`NavEntry`)."""
        self.nav_entries.append(NavEntry(label, href, section, order, tuple(rules)))

    def status_section(self, render: SectionRenderer, *, order: int = 100) -> None:
        """Add a section to the public status page (see :class:`Section`)."""
        self.sections.append(Section(render, order))

    def system_panel(self, title: str, render: PanelRenderer, *, order: int = 100) -> None:
        """Add a panel to every system's page (see :class:`Panel`)."""
        self.panels.append(Panel(title, render, order))

    def feed(self, source: FeedSource) -> None:
        """Add entries to the status feed: ``source(view)`` returns :class:`FeedEntry` items."""
        self.feeds.append(source)

    def login(self, path: str) -> None:
        """Name the sign-in page (one plugin, normally auth)."""
        if self.login_path is not None and self.login_path != path:
            raise ValueError(f"Two sign-in pages: {self.login_path!r} and {path!r}")
        self.login_path = path

    @staticmethod
    def _check_prefix(prefix: str, taken: dict[str, Path]) -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"UI prefix {prefix!r} must match {_PREFIX.pattern}")
        if prefix in taken:
            raise ValueError(f"UI prefix {prefix!r} is registered twice")


def field_errors(error: Any) -> dict[str, str]:
    """``{"name": "Expected ..."}`` from an ``RpcError``'s validation issues, keyed by the first
    element of each issue's path (``""`` for the input as a whole), to show next to fields."""
    found: dict[str, str] = {}
    for issue in (getattr(error, "data", None) or {}).get("issues", []) or []:
        path = issue.get("path") or []
        found.setdefault(str(path[0]) if path else "", str(issue.get("message", "")))
    return found


def offset_of(query: Any, limit: int) -> int:
    """The ``?offset=`` of a paginated list page, a multiple of ``limit`` (0 when absent or
    malformed)."""
    raw = query.get("offset", "0")
    offset = int(raw) if str(raw).isdigit() else 0
    return min(offset - offset % limit, 1_000_000_000)


def __getattr__(name: str) -> Any:
    if name == "View":
        from .view import View

        return View
    raise AttributeError(name)
