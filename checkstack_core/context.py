"""The ``Context`` every handler, event handler, job and lifecycle callback receives.

It carries who is calling, the call's database transaction (opened lazily: a handler that never
touches the database costs no connection), the event emitter (events are sent only after the
transaction commits), the job scheduler, in-process calls to other plugins and provided services.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from .auth import Principal, RequestInfo
from .contract import Level
from .events import check_event_name

if TYPE_CHECKING:
    from .host import Host
    from .jobs import JobScheduler
    from .plugin import ServiceRef

T = TypeVar("T")


@dataclass(slots=True)
class Cookie:
    """A cookie a handler asks the protocol adapter to set (or delete, with ``max_age=0``)."""

    name: str
    value: str
    max_age: int | None = None
    http_only: bool = True
    same_site: Literal["lax", "strict", "none"] = "lax"
    secure: bool = False
    path: str = "/"


@dataclass(slots=True)
class ResponseExtras:
    """What a handler adds to the HTTP response besides its output."""

    cookies: list[Cookie] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


class UnitOfWork:
    """One transaction shared by every procedure of a call or batch, and the events it emits.

    It owns the call's only database connection: the session is created on first use, and
    everything the call reads — the handlers, the dispatcher's checks and the auth backend's
    lookups (through :meth:`connection`) — goes through it, so a call never holds one pooled
    connection while waiting for a second. ``commit`` sends the pending events only after the
    transaction has committed, so no subscriber sees a change that was rolled back.

    A ``read_only`` unit of work (query procedures) opens no transaction: each statement sees the
    latest committed data and there is nothing to commit.
    """

    __slots__ = ("_connection", "_host", "_pending_events", "_session", "memo", "read_only")

    def __init__(self, host: Host, *, read_only: bool = False) -> None:
        self._host = host
        self._session: AsyncSession | None = None
        #: The connection of the session's current transaction, and that transaction.
        self._connection: tuple[Any, AsyncConnection] | None = None
        self._pending_events: list[tuple[str, dict[str, Any]]] = []
        self.read_only = read_only
        #: Per-call scratch space for engines (an auth backend notes which cache version this
        #: call validated); keyed by the owner object.
        self.memo: dict[Any, Any] = {}

    @property
    def has_session(self) -> bool:
        """Whether anything opened the session (nothing to flush or commit otherwise)."""
        return self._session is not None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._host.db.session(read_only=self.read_only)
        return self._session

    async def connection(self) -> AsyncConnection:
        """The call's database connection, for Core statements (an auth backend's lookups).

        The same connection (and transaction) the handlers' session uses: never check out
        another one while a call holds this.
        """
        session = self.session
        transaction = session.sync_session.get_transaction()
        cached = self._connection
        if cached is not None and transaction is not None and cached[0] is transaction:
            return cached[1]  # asked on every lookup: skip the session's machinery
        connection = await session.connection()
        self._connection = (session.sync_session.get_transaction(), connection)
        return connection

    def defer_event(self, name: str, payload: dict[str, Any]) -> None:
        self._pending_events.append((name, payload))

    async def commit(self) -> None:
        session = self._session
        if session is not None:
            if not self.read_only:
                await session.commit()
            elif session.new or session.dirty or session.deleted:
                # A query that changed objects anyway: statements autocommit here, so flushing
                # is what keeps the change rather than dropping it silently.
                await session.flush()
        events, self._pending_events = self._pending_events, []
        for name, payload in events:
            await self._host.events.emit(name, payload)

    async def rollback(self) -> None:
        self._pending_events.clear()
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        self._connection = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[UnitOfWork]:
        """Commit when the block succeeds, roll back when it raises, close either way."""
        try:
            yield self
        except BaseException:
            await self.rollback()
            raise
        else:
            await self.commit()
        finally:
            await self.close()


class Context:
    """What a procedure handler (or an event handler, job, startup callback) works with."""

    __slots__ = (
        "_uow",
        "host",
        "plugin_id",
        "principal",
        "request",
        "request_id",
        "response",
    )

    def __init__(
        self,
        host: Host,
        plugin_id: str,
        principal: Principal,
        uow: UnitOfWork,
        *,
        request: RequestInfo | None = None,
        request_id: str | None = None,
        response: ResponseExtras | None = None,
    ) -> None:
        self.host = host
        self.plugin_id = plugin_id
        self.principal = principal
        self.request = request
        self.request_id = request_id
        self.response = response if response is not None else ResponseExtras()
        self._uow = uow

    @property
    def uow(self) -> UnitOfWork:
        """This call's unit of work (its one connection, transaction and pending events)."""
        return self._uow

    @property
    def logger(self) -> logging.Logger:
        """The plugin's logger (``checkstack.plugins.<pluginId>``); records carry the request id."""
        return logging.getLogger(f"checkstack.plugins.{self.plugin_id}")

    @property
    def session(self) -> AsyncSession:
        """The database session of this call's transaction (committed when the call succeeds)."""
        return self._uow.session

    @property
    def jobs(self) -> JobScheduler:
        """The job scheduler (schedule, cancel by key)."""
        return self.host.jobs

    async def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Emit ``event`` once this call's transaction commits (never if it rolls back).

        The name must start with this plugin's id (``catalog.system.deleted``), and the payload
        must be JSON: both are checked now, so a mistake fails the call before anything commits.
        The payload is copied, so later changes to the dict do not leak into the event.
        """
        check_event_name(event)
        if not event.startswith(f"{self.plugin_id}."):
            raise ValueError(f"Plugin {self.plugin_id} cannot emit {event!r}: not its namespace")
        try:
            copy = msgspec.json.decode(msgspec.json.encode(payload))
        except (TypeError, msgspec.EncodeError, ValueError, OverflowError) as exc:
            raise TypeError(f"Payload of event {event!r} is not JSON-serializable: {exc}") from None
        self._uow.defer_event(event, copy)

    def service(self, ref: ServiceRef[T]) -> T:
        """The implementation of service ``ref`` provided by another plugin."""
        try:
            return self.host.services[ref.id]
        except KeyError:
            raise LookupError(f"No loaded plugin provides service {ref.id!r}") from None

    async def call(
        self, plugin_id: str, procedure: str, input: Any = None, *, as_service: bool = False
    ) -> Any:
        """Call another plugin's procedure in process, in this transaction.

        By default the current caller's rights apply; ``as_service=True`` calls as this plugin.
        """
        principal = Principal.service(self.plugin_id) if as_service else self.principal
        return await self.host.dispatcher.call_in_process(
            plugin_id, procedure, input, principal=principal, uow=self._uow, parent=self
        )

    async def admitted_ids(
        self, resource_type: str, ids: list[str], level: Level, *, rule_id: str
    ) -> set[str]:
        """Which ``ids`` the caller may access, for pushing access filters into queries.

        ``rule_id`` is the qualified rule that grants global access (e.g. ``catalog.catalog.read``).
        """
        if self.principal.kind == "service":
            return set(ids)
        return await self.host.auth.admitted_ids(
            self.principal, resource_type, ids, level, self.principal.holds(rule_id), uow=self._uow
        )
