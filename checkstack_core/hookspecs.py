"""The core's pluggy hook specifications, grouped by lifecycle phase.

pluggy collects objects at startup; nothing here runs per request. A plugin implements a hook by
putting a ``@hookimpl`` function on the object it passes as ``Plugin(hooks=...)``::

    from checkstack_core import hookimpl

    @hookimpl
    def checkstack_register_commands(cli):
        @cli.command()
        def hello():
            print("hi")

Each plugin's implementations are isolated: one that raises marks its plugin failed (startup
stops only in strict mode) and the others still run. An implementation of a hook that does not
exist (a misspelling) fails its plugin at load time.

Hooks are synchronous; whatever must run per request is an async object the hook hands over
(an :class:`~checkstack_core.auth.AuthBackend`, a route handler, an engine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .auth import AuthBackend
    from .host import Host
    from .ui import UiRegistrar

hookspec = pluggy.HookspecMarker("checkstack")
hookimpl = pluggy.HookimplMarker("checkstack")


# --- registration: collected once, when the app or the command line is built ------------------


@hookspec
def checkstack_register_commands(cli: click.Group) -> None:
    """Add commands to the ``checkstack`` command line. All implementations are called.

    ``cli`` is the root :class:`click.Group`; add commands or groups to it. Commands that need the
    configured database build a host with ``checkstack_core.cli.open_host()``.

    Example (the auth plugin adds ``checkstack apps ...``)::

        @hookimpl
        def checkstack_register_commands(cli):
            @cli.group()
            def apps():
                "Manage API keys."

    .. versionadded:: 0.1
    """


@hookspec
def checkstack_register_routes(register: Callable[[Any], None]) -> None:
    """Add plain Litestar route handlers beside the procedure protocols. All are called.

    Call ``register(handler)`` with a Litestar route handler (``@get(...)`` function, Router or
    Controller). Use this for what is not a procedure: a status page, a webhook receiver.
    Paths under ``/api/<pluginId>/`` belong to the procedure protocols; use ``/<pluginId>/...``.

    Example::

        @hookimpl
        def checkstack_register_routes(register):
            @get("/status", media_type="text/html")
            async def status_page() -> str:
                return "<h1>All systems operational</h1>"
            register(status_page)

    .. versionadded:: 0.1
    """


@hookspec
def checkstack_register_ui(ui: UiRegistrar) -> None:
    """Contribute to the web UI: pages, navigation entries, status-page sections, feed entries
    and panels of a system's page. All implementations are called.

    ``ui`` is a :class:`~checkstack_core.ui.UiRegistrar`. A page handler receives a
    :class:`~checkstack_core.ui.view.View` and calls procedures through it in process, as the
    signed-in user (``await view.call("hello", "getGreeting")``): the UI checks no access itself.
    Form posts pass the cross-site check before the handler runs. See ``docs/ui.md``.

    Example (the hello plugin's page)::

        @hookimpl
        def checkstack_register_ui(ui):
            ui.templates("hello", Path(__file__).parent / "templates")
            ui.page("/hello", greeting_page)
            ui.nav("Greeting", "/hello", section="main")

        async def greeting_page(view):
            greeting = await view.call("hello", "greet", {"name": "visitor"})
            return await view.render("hello/greeting.html", greeting=greeting)

    .. versionadded:: 0.1
    """


# --- startup: after migrations, before and after plugins' startup callbacks ---------------------


@hookspec
def checkstack_register_engines(register: EngineRegistrar) -> None:
    """Offer event-bus and job-scheduler engines, selected by ``CHECKSTACK_EVENTS_ENGINE`` and
    ``CHECKSTACK_JOBS_ENGINE`` (default ``embedded``). All implementations are called.

    ``register.events(name, factory)`` and ``register.jobs(name, factory)`` take a factory
    ``(host) -> EventBus`` / ``(host) -> JobScheduler``. A duplicate name is an error naming both.

    Example (a PostgreSQL engine as its own distribution)::

        @hookimpl
        def checkstack_register_engines(register):
            register.jobs("procrastinate", lambda host: ProcrastinateScheduler(host.settings))

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def checkstack_auth_backend(host: Host) -> AuthBackend | None:
    """Return the :class:`~checkstack_core.auth.AuthBackend` that authenticates requests and
    answers resource-access questions. The first non-``None`` result wins; the core's built-in
    implementation (anonymous callers holding the ``public`` rules) is registered ``trylast``.

    Called once, after migrations and before any plugin's startup callbacks, so the backend may
    read its tables. It must not perform I/O in this hook; do that lazily or in ``on_startup``.

    The backend's methods receive the call's unit of work (``uow``): read through
    ``await uow.connection()``, the one connection the call holds, never a second one.

    Example (the auth plugin)::

        @hookimpl
        def checkstack_auth_backend(host):
            return DatabaseAuthBackend(host)

    .. versionadded:: 0.1
    """


@hookspec
def checkstack_ready(host: Host) -> None:
    """Called once every plugin has started and the host is about to serve. All are called.

    ``host.plugins`` lists every plugin with its status; use this for cross-plugin wiring that
    needs everything in place (e.g. syncing every plugin's access rules into roles).
    Synchronous: async work belongs in the plugin's ``on_startup`` callbacks, which run before
    this hook with a transaction of their own.

    Example (log what is being served)::

        @hookimpl
        def checkstack_ready(host):
            active = ", ".join(record.id for record in host.active())
            logging.getLogger("my_plugin").info("Serving %s", active)

    .. versionadded:: 0.1
    """


# --- shutdown -------------------------------------------------------------------------------------


@hookspec
def checkstack_shutdown(host: Host) -> None:
    """Called once when the host stops, before plugins' shutdown callbacks. All are called.

    Synchronous and must not block for long; release per-process resources here (the engines
    are still running, the database is still open).

    Example::

        @hookimpl
        def checkstack_shutdown(host):
            metrics_exporter.flush()

    .. versionadded:: 0.1
    """


class EngineRegistrar:
    """Collects engine factories offered through :func:`checkstack_register_engines`."""

    def __init__(self) -> None:
        self.event_engines: dict[str, Callable[[Host], Any]] = {}
        self.job_engines: dict[str, Callable[[Host], Any]] = {}

    def events(self, name: str, factory: Callable[[Host], Any]) -> None:
        if name in self.event_engines:
            raise ValueError(f"Event engine {name!r} is registered twice")
        self.event_engines[name] = factory

    def jobs(self, name: str, factory: Callable[[Host], Any]) -> None:
        if name in self.job_engines:
            raise ValueError(f"Job engine {name!r} is registered twice")
        self.job_engines[name] = factory
