"""The ``Plugin`` object a distribution's ``checkstack.plugins`` entry point names (SPEC §3.1).

A plugin's ``__init__.py`` builds one and wires the other modules into it::

    plugin = Plugin(
        id="hello",
        name="Hello",
        contract=contract,            # contract.py
        handlers=handlers,            # handlers.py
        models=[Greeting],            # models.py (SQLModel tables, names prefixed "hello_")
        migrations=Path(__file__).parent / "migrations",
    )

    @plugin.on_event("catalog.system.deleted")
    async def forget_system(ctx: Context, event: Event) -> None: ...

    @plugin.on_declared_events(mode="work_queue", group="audit")
    async def audit(ctx: Context, event: Event) -> None: ...  # every event any contract declares

Event handlers, jobs, startup and shutdown callbacks receive a
:class:`~checkstack_core.context.Context` acting as the plugin itself (a service principal) with
a fresh transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .contract import Contract
from .events import DeliveryMode

if TYPE_CHECKING:
    from .context import Context
    from .events import Event
    from .jobs import JobRun

T = TypeVar("T")

#: The event name of a subscription to every event declared in the active plugins' contracts
#: (:meth:`Plugin.on_declared_events`); the host expands it at startup, one subscription per name.
DECLARED_EVENTS = "*"
Handler = Callable[["Context", Any], Awaitable[Any]]
EventCallback = Callable[["Context", "Event"], Awaitable[None]]
JobCallback = Callable[["Context", "JobRun"], Awaitable[None]]
LifecycleCallback = Callable[["Context"], Awaitable[None]]


class Handlers:
    """The implementations of a contract's procedures, collected with a decorator::

    handlers = Handlers(contract)

    @handlers.implement("getGreeting")
    async def get_greeting(ctx: Context, input: GreetingInput) -> Greeting: ...
    """

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.by_name: dict[str, Handler] = {}

    def implement(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine function as the implementation of procedure ``name``."""
        if name not in self.contract.by_name:
            raise ValueError(f"{self.contract.plugin_id} has no procedure {name!r} in its contract")
        if name in self.by_name:
            raise ValueError(f"Procedure {self.contract.plugin_id}.{name} is implemented twice")

        def decorate(fn: Handler) -> Handler:
            self.by_name[name] = fn
            return fn

        return decorate

    def missing(self) -> list[str]:
        """Procedures of the contract that have no implementation."""
        return [p.name for p in self.contract.procedures if p.name not in self.by_name]


@dataclass(frozen=True)  # no slots: ``ServiceRef[X](...)`` sets __orig_class__
class ServiceRef(Generic[T]):
    """A typed name for an in-process service one plugin provides to others (e.g. "is system S
    under maintenance?"). Declare it in the provider's contract module so consumers can import it
    without the provider's implementation."""

    id: str


@dataclass(slots=True)
class EventSubscription:
    event: str
    callback: EventCallback
    mode: DeliveryMode
    group: str | None
    max_retries: int


@dataclass(slots=True)
class JobDefinition:
    name: str
    callback: JobCallback
    timeout: float | None
    max_retries: int


@dataclass
class Plugin:
    """Everything a plugin declares. Only ``id`` and ``name`` are required."""

    id: str
    name: str
    contract: Contract | None = None
    handlers: Handlers | None = None
    depends_on: Sequence[str] = ()
    models: Sequence[type] = ()
    migrations: Path | str | None = None
    #: An object or module holding ``@hookimpl`` functions (core hooks or other plugins' hooks).
    hooks: object | None = None
    #: A module or class of ``@hookspec`` functions other plugins implement (extension hooks).
    hookspecs: object | None = None
    description: str = ""
    subscriptions: list[EventSubscription] = field(default_factory=list)
    jobs: list[JobDefinition] = field(default_factory=list)
    startup: list[LifecycleCallback] = field(default_factory=list)
    shutdown: list[LifecycleCallback] = field(default_factory=list)
    services: dict[str, Callable[[Context], Any]] = field(default_factory=dict)

    def on_event(
        self,
        event: str,
        *,
        mode: DeliveryMode | str = DeliveryMode.BROADCAST,
        group: str | None = None,
        max_retries: int = 3,
    ) -> Callable[[EventCallback], EventCallback]:
        """Subscribe the decorated ``async def (ctx, event)`` to ``event``.

        ``broadcast`` runs it in every process; ``work_queue`` in exactly one per ``group``, with
        retries. Delivery is at least once: handlers must be idempotent.
        """

        def decorate(fn: EventCallback) -> EventCallback:
            self.subscriptions.append(
                EventSubscription(event, fn, DeliveryMode(mode), group, max_retries)
            )
            return fn

        return decorate

    def on_declared_events(
        self,
        *,
        mode: DeliveryMode | str = DeliveryMode.BROADCAST,
        group: str | None = None,
        max_retries: int = 3,
    ) -> Callable[[EventCallback], EventCallback]:
        """Subscribe the decorated ``async def (ctx, event)`` to every event declared in the
        contracts (``Contract(events=[...])``) of the plugins active at startup, a third party's
        included. Options as for :meth:`on_event`; the host subscribes once per declared name."""
        return self.on_event(DECLARED_EVENTS, mode=mode, group=group, max_retries=max_retries)

    def job(
        self, name: str, *, timeout: float | None = None, max_retries: int = 0
    ) -> Callable[[JobCallback], JobCallback]:
        """Register the decorated ``async def (ctx, run)`` as job ``<pluginId>.<name>``.

        Schedule it with ``ctx.jobs.schedule_once("<pluginId>.<name>", key=..., run_at=...)``.
        """

        def decorate(fn: JobCallback) -> JobCallback:
            self.jobs.append(JobDefinition(f"{self.id}.{name}", fn, timeout, max_retries))
            return fn

        return decorate

    def on_startup(self, fn: LifecycleCallback) -> LifecycleCallback:
        """Run the decorated ``async def (ctx)`` at startup, after migrations and after the
        startup callbacks of the plugins this one depends on."""
        self.startup.append(fn)
        return fn

    def on_shutdown(self, fn: LifecycleCallback) -> LifecycleCallback:
        """Run the decorated ``async def (ctx)`` at shutdown, in reverse startup order."""
        self.shutdown.append(fn)
        return fn

    def provide(
        self, ref: ServiceRef[T]
    ) -> Callable[[Callable[[Context], T]], Callable[[Context], T]]:
        """Provide service ``ref``: the decorated factory ``(ctx) -> T`` runs once at startup."""

        def decorate(factory: Callable[[Context], T]) -> Callable[[Context], T]:
            self.services[ref.id] = factory
            return factory

        return decorate

    @property
    def migrations_path(self) -> Path | None:
        return Path(self.migrations) if self.migrations is not None else None
