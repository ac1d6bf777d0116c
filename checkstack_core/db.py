"""The database: an async SQLAlchemy engine with SQLModel sessions (SPEC §7).

SQLite (the default) gets WAL, a busy timeout, ``synchronous=NORMAL`` and foreign keys on every
connection; PostgreSQL is selected with ``postgresql+asyncpg://...``.

Transactions are explicit on both databases. Python's ``sqlite3`` driver would otherwise open a
transaction only at the first write (so DDL and reads before a write run outside any transaction);
following SQLAlchemy's documented recipe for the SQLite drivers, the driver is put in autocommit
mode and the engine emits ``BEGIN`` itself:

- **write** sessions (mutations, jobs, event handlers, migrations) begin with ``BEGIN IMMEDIATE``
  on SQLite, taking the write lock up front, so a mutation's reads are isolated from every other
  writer and two writers never deadlock upgrading their locks; on PostgreSQL they are ordinary
  ``READ COMMITTED`` transactions (use ``SELECT ... FOR UPDATE`` or conditional writes for
  read-then-write rules).
- **read** sessions (query procedures) open no transaction at all: every statement sees the
  latest committed data (PostgreSQL's ``READ COMMITTED`` semantics on both databases) and the call
  costs no ``BEGIN``/``COMMIT`` round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import DateTime, Row, event, text
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from . import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: PostgreSQL connections older than this are replaced when next checked out.
POSTGRES_POOL_RECYCLE_S = 1800
#: Execution option naming how a SQLite transaction begins: ``None`` (no transaction: each
#: statement commits on its own), ``"DEFERRED"`` or ``"IMMEDIATE"``.
SQLITE_BEGIN = "checkstack_sqlite_begin"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime column on every database.

    PostgreSQL keeps the zone; SQLite stores text and hands back naive values. This type refuses
    naive datetimes on the way in and returns aware UTC ones on the way out, so plugin code can
    compare and serialise times without caring which database it runs on. Use it as
    ``Field(sa_type=UtcDateTime)``; in migrations ``sa.DateTime(timezone=True)`` is equivalent.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Naive datetime: store aware UTC datetimes (datetime.now(UTC))")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # SQLite hands back the stored text: one C-level parse instead of the dialect's regex
        # followed by this type's conversion (two Python calls a value; a list of 20 systems
        # reads 40 of them, about 5 % of such a call's time).
        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def core_rows(
    session: AsyncSession, statement: Any, params: dict[str, Any] | None = None
) -> Sequence[Row[Any]]:
    """The rows of a Core ``SELECT`` run on ``session``'s connection, in its transaction.

    Changes made through the session are flushed first (only when there are any). No ORM
    execution or identity-map work: the cheap way to build list outputs from columns.
    """
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    return (await connection.execute(statement, params or {})).all()


async def update_unless_moved(
    session: AsyncSession, row: Any, guard: str, values: dict[str, Any]
) -> bool:
    """Write ``values`` (attribute names) to ``row``'s database row unless its ``guard``
    attribute (e.g. ``status``) changed since ``row`` was read; True when written.

    One conditional ``UPDATE ... WHERE <primary key> AND <guard> = :as_read``: the database
    decides, so of two concurrent changes only one is made on the state it was validated
    against, whatever the isolation level (the row then stays locked by this transaction until
    it ends). On success ``row`` holds the new values as committed state; otherwise the caller
    re-reads the row and decides again from what is stored now.
    """
    model = type(row)
    table = model.__table__
    keys = [
        getattr(model, column.name) == getattr(row, column.name) for column in table.primary_key
    ]
    written = await session.exec(
        sa_update(model)
        .where(*keys, getattr(model, guard) == getattr(row, guard))
        .values(**values)
        # ``row`` is updated below, from what the database accepted.
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        return False
    for name, value in values.items():
        set_committed_value(row, name, value)
    return True


def conflict_insert(dialect: str, table: Any) -> Any:
    """An ``INSERT`` into ``table`` that can say what to do on a conflict, the same on SQLite and
    PostgreSQL: ``.on_conflict_do_nothing()``, ``.on_conflict_do_update(index_elements=...,
    set_=...)`` and ``.excluded``. ``dialect`` is :attr:`Database.dialect` or a connection's
    ``dialect.name``.

    Creating a row this way is free of the check-then-insert race: two transactions creating
    the same row both succeed (with ``do_nothing``, ``rowcount`` tells which one created it),
    where checking first and inserting after fails one of them on the key.
    """
    # Imported here: the dialect modules are needed only once a statement is built.
    from sqlalchemy.dialects import postgresql, sqlite

    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def utcnow() -> datetime:
    """The current time, aware, in UTC (what every stored timestamp should be)."""
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """Pick the async driver when a URL names none (``sqlite:///x`` → ``sqlite+aiosqlite:///x``)."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername in driver:
        parsed = parsed.set(drivername=driver[parsed.drivername])
    if parsed.drivername not in driver.values():
        raise ValueError(
            f"Unsupported database URL scheme {parsed.drivername!r}: use sqlite+aiosqlite or "
            "postgresql+asyncpg"
        )
    return parsed.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Driver-level autocommit: the engine, not pysqlite, decides where transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    journal_mode = cursor.fetchone()[0]
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # In WAL mode a reader never waits for a writer, so cheap reads can skip the thread (see
    # ``sqlite_driver``); in-memory databases answer "memory" and keep to the thread.
    dbapi_connection.busy_timeout_ms = SQLITE_BUSY_TIMEOUT_MS
    dbapi_connection.inline_reads = str(journal_mode).lower() == "wal"


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
    if mode is not None:
        conn.exec_driver_sql(f"BEGIN {mode}")


class ClientWatch(Protocol):
    """A request's client as :meth:`Database.turn` sees it (see ``protocols.common.Departure``)."""

    def watch(self) -> None:
        """Start noticing a hang-up (called only when the call has to wait)."""

    @property
    def gone(self) -> bool:
        """Whether the client has closed its connection."""


class ClientGone(Exception):
    """The client closed its connection while its call waited for a turn; nothing ran."""


class Database:
    """One engine per host; :meth:`session` opens a session (a unit of work owns and closes it).

    ``pool_size`` connections are kept open and at most that many calls hold one at once (as
    many again may be opened for work outside calls, such as readiness probes); a caller
    waits at most ``pool_timeout`` seconds for one, then gets :class:`sqlalchemy.exc.TimeoutError`
    (the dispatcher answers ``503 SERVICE_UNAVAILABLE`` with ``Retry-After``).
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 10,
        pool_timeout: float = 5.0,
    ) -> None:
        self.url = normalize_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        # SQLAlchemy 2 sessions and connections roll back any open transaction when they close,
        # so the pool's extra rollback on every return is a wasted round trip (a thread hop
        # with aiosqlite). Parameters stay out of error messages: they can hold digests.
        options: dict[str, Any] = {
            "echo": echo,
            "pool_reset_on_return": None,
            "hide_parameters": True,
            # JSON columns through msgspec: several times faster than the json module per row.
            "json_serializer": _json_text,
            "json_deserializer": msgspec.json.decode,
        }
        if make_url(self.url).database not in (None, "", ":memory:"):
            # Calls never need more than ``pool_size`` (see ``call_capacity``): the overflow is
            # room for work outside calls (readiness probes, background writes, jobs).
            options.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout)
        #: How many calls may hold a connection at once, and how long a call waits for its turn.
        #: Not more than the pool keeps open: connections opened beyond it under a burst were
        #: closed as soon as the pool had ``pool_size`` idle ones and reopened moments later;
        #: under 256 connections on PostgreSQL that churn (a new backend each time) tripled
        #: p99 in some runs.
        self.call_capacity = pool_size
        self.pool_timeout = pool_timeout
        self._turns: asyncio.Semaphore | None = None
        #: Calls holding a turn, and calls queued for one (``/readyz`` reports both).
        self.calls_running = 0
        self.calls_waiting = 0
        if self.dialect == "postgresql":
            # No ping before every checkout: it tripled the round trips of a read. Connections
            # are recycled before a server's idle timeout would cut them, and a call that still
            # meets a dead one answers 503 with Retry-After (the pool then drops it).
            options.update(pool_recycle=POSTGRES_POOL_RECYCLE_S)
        else:
            options.update(module=sqlite_driver.dbapi())
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            read_engine = self.engine.execution_options(**{SQLITE_BEGIN: None})
            write_engine = self.engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        else:
            read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            write_engine = self.engine
        #: The engine for schema changes: one transaction that holds the write lock throughout.
        self.write_engine: AsyncEngine = write_engine
        self._read_sessions = async_sessionmaker(
            read_engine, class_=AsyncSession, expire_on_commit=False, autoflush=True
        )
        self._write_sessions = async_sessionmaker(
            write_engine, class_=AsyncSession, expire_on_commit=False, autoflush=True
        )

    def session(self, *, read_only: bool = False) -> AsyncSession:
        """A new session; the caller commits or rolls back and closes it.

        ``read_only`` sessions run each statement on its own (no transaction to begin or commit):
        for query procedures. Anything that writes uses the default.
        """
        return self._read_sessions() if read_only else self._write_sessions()

    @asynccontextmanager
    async def turn(self, client: ClientWatch | None = None) -> AsyncIterator[None]:
        """Wait for a turn at the pool, first come first served, for a call's whole duration.

        SQLAlchemy's async pool lets a newcomer take a connection that was just returned before
        the caller woken for it runs, and that caller then queues again at the back: under
        saturation some requests waited many times the average. Calls queue here instead (a
        fair semaphore sized to what the pool can open), so the pool itself never makes them
        wait. Raises :class:`sqlalchemy.exc.TimeoutError` after ``pool_timeout`` seconds.

        ``client``: the request's client, watched while the call waits. One that hung up in the
        meantime (a timeout, a closed tab, a load generator stopping) gets no turn
        (:class:`ClientGone`): nobody would read the answer, and running it would delay every
        call queued behind it by as much.
        """
        turns = self._turns
        if turns is None:
            turns = self._turns = asyncio.Semaphore(self.call_capacity)
        if client is not None and client.gone:
            raise ClientGone  # seen gone while an earlier call of its request queued
        if turns.locked():
            if client is not None:
                client.watch()
            self.calls_waiting += 1
            try:
                async with asyncio.timeout(self.pool_timeout):
                    await turns.acquire()
            except TimeoutError:
                raise PoolTimeout(
                    f"No database connection free within {self.pool_timeout} s"
                ) from None
            finally:
                self.calls_waiting -= 1
            if client is not None and client.gone:
                turns.release()
                raise ClientGone
        else:
            await turns.acquire()
        self.calls_running += 1
        try:
            yield
        finally:
            self.calls_running -= 1
            # The turn comes free at the event loop's next pass, not now. A call whose reads all
            # run inline (SQLite) never yields while it holds its turn: released at once, the
            # turn was free again for the next ready call in the same pass, so under load one
            # pass ran every pending call to the end (0.3-0.5 s with 256 clients) and a request
            # that had to wait a few passes (a new connection, a statement in a thread) waited
            # that many times as long (p99 0.4 s, max 2 s). Held to the next pass, at most
            # ``call_capacity`` calls run in a pass and the rest queue here, first come first
            # served, as they do when calls yield.
            asyncio.get_running_loop().call_soon(turns.release)

    async def ping(self) -> bool:
        """Whether the database answers a trivial query (for ``/readyz``)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({redact_url(self.url)!r})"
