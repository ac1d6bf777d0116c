"""SQLAlchemy's aiosqlite adapter, with one thread hop per statement instead of four.

aiosqlite runs each SQLite connection in a thread of its own; every call into it (create a
cursor, execute, fetch the rows, close the cursor, commit, roll back) is a round trip through a
queue to that thread and back through the event loop. SQLAlchemy's adapter makes four such trips
per statement, and they were most of the cost of a read-only call. This adapter runs the whole
statement — execute, fetch, close — in one trip, and skips ``COMMIT``/``ROLLBACK`` trips when
SQLite says no transaction is open (query calls run without one: see :mod:`checkstack_core.db`).

It is passed to the engine as its DBAPI module (``create_async_engine(..., module=...)``), so the
dialect, the URL and everything else stay SQLAlchemy's own. It leans on two private details that
the pinned version ranges keep stable (and the suite exercises on every statement):
``aiosqlite.Connection._execute`` (queue a function for the connection's thread) and the
attributes of SQLAlchemy's adapted cursor.

**Cheap reads take no trip at all.** Under load the trip, not SQLite, was the cost: a list call
makes three or four statements of 50-200 µs each, and each trip added a queue hand-off, a wake-up
of the event loop and a fight for the GIL with the loop's own work (``getWindows`` with a key,
256 connections: 300 requests/s through the thread, 680-870 run on the loop). So on a connection
that allows it (:attr:`OneHopConnection.inline_reads`, set for WAL databases), a ``SELECT`` outside
any transaction runs right on the event loop's thread, under two limits that keep the loop from
ever waiting on it: it gets no busy timeout (a lock it would wait for makes it fail at once), and
it may run at most :data:`INLINE_BUDGET_STEPS` virtual-machine steps (about 1-2 ms; SQLite
interrupts it after that). Either way it is run again, from the start, in the connection's
thread, where it may wait and take as long as it needs. Re-running is safe: a ``SELECT`` outside a
transaction changes nothing. Statements inside transactions (every write, and reads of a writing
call) always go through the thread.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only

#: VM steps between two checks of an inline read's budget, and the budget: about 1-2 ms of work
#: (SQLite runs some 50-100 million steps a second here). The twenty-row lists of the first-party
#: plugins take 400 steps; a read that outgrows the budget is moved to the connection's thread.
INLINE_CHECK_STEPS = 5_000
INLINE_BUDGET_STEPS = 100_000
_INLINE_CHECKS = INLINE_BUDGET_STEPS // INLINE_CHECK_STEPS
_SELECT = "select"


class _StepBudget:
    """A progress handler that interrupts the statement once its budget is spent."""

    __slots__ = ("checks",)

    def __init__(self) -> None:
        self.checks = 0

    def __call__(self) -> int:
        self.checks += 1
        return 1 if self.checks >= _INLINE_CHECKS else 0


def _run_inline(
    connection: sqlite3.Connection, operation: str, parameters: Any, busy_timeout_ms: int
) -> tuple[Any, list[Any] | None, int | None, int, bool] | None:
    """On the event loop's thread: the read, or ``None`` if it would wait or outgrow its budget."""
    connection.set_progress_handler(_StepBudget(), INLINE_CHECK_STEPS)
    connection.execute("PRAGMA busy_timeout=0").close()
    try:
        return _run_statement(connection, operation, parameters)
    except sqlite3.OperationalError as error:
        # The primary code: SQLite may report an extended one (SQLITE_BUSY_RECOVERY, ...).
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_INTERRUPT):
            return None
        raise
    finally:
        connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}").close()
        connection.set_progress_handler(None, 0)


async def _now(
    connection: sqlite3.Connection, operation: str, parameters: Any, busy_timeout_ms: int
) -> tuple[Any, list[Any] | None, int | None, int, bool] | None:
    # A coroutine that never suspends: SQLAlchemy's greenlet bridge insists that an execution
    # awaits something, and this costs two greenlet switches, not a trip through the loop.
    return _run_inline(connection, operation, parameters, busy_timeout_ms)


def _run_statement(
    connection: sqlite3.Connection, operation: str, parameters: Any
) -> tuple[Any, list[Any] | None, int | None, int, bool]:
    """In the connection's thread: the statement from start to end, cursor closed."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount, connection.in_transaction
    finally:
        cursor.close()


def _run_many(
    connection: sqlite3.Connection, operation: str, seq_of_parameters: Any
) -> tuple[int | None, int, bool]:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.lastrowid, cursor.rowcount, connection.in_transaction
    finally:
        cursor.close()


def _finish(connection: sqlite3.Connection, commit: bool) -> None:
    if connection.in_transaction:
        if commit:
            connection.commit()
        else:
            connection.rollback()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements each cost one trip to the connection's thread."""

    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        connection: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            outcome: Any = None
            if (
                connection.inline_reads
                and connection.in_transaction is False
                and operation.lstrip()[:6].lower() == _SELECT
            ):
                outcome = self.await_(
                    _now(self._connection._conn, operation, parameters, connection.busy_timeout_ms)
                )
            if outcome is None:
                outcome = self.await_(
                    self._connection._execute(
                        _run_statement, self._connection._conn, operation, parameters
                    )
                )
            description, rows, lastrowid, rowcount, in_transaction = outcome
        except Exception as error:
            connection.in_transaction = None  # unknown: let commit/rollback ask the thread
            connection._handle_exception(error)
        connection.in_transaction = in_transaction
        if description:
            self.description = description
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows or ())
        else:
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        connection: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            lastrowid, rowcount, in_transaction = self.await_(
                self._connection._execute(
                    _run_many, self._connection._conn, operation, seq_of_parameters
                )
            )
        except Exception as error:
            connection.in_transaction = None
            connection._handle_exception(error)
        connection.in_transaction = in_transaction
        self.description = None
        self.lastrowid = lastrowid
        self.rowcount = rowcount


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """Tracks whether SQLite has a transaction open, so ending none costs no trip."""

    __slots__ = ("busy_timeout_ms", "in_transaction", "inline_reads")

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: As SQLite reported after the last statement; ``None`` when unknown.
        self.in_transaction: bool | None = None
        #: Whether cheap reads outside transactions may run on the event loop's thread (see the
        #: module's docstring). Only for WAL databases, where a reader waits for no writer; the
        #: engine's ``connect`` listener turns it on, with :attr:`busy_timeout_ms`.
        self.inline_reads = False
        #: The busy timeout the connection was set up with, restored after each inline read.
        self.busy_timeout_ms = 0

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:
            return super().cursor(server_side=True)
        return OneHopCursor(self)

    def _end(self, commit: bool) -> None:
        if self.in_transaction is False:
            return
        try:
            self.await_(self._connection._execute(_finish, self._connection._conn, commit))
        except Exception as error:
            self.in_transaction = None
            self._handle_exception(error)
        self.in_transaction = False

    def commit(self) -> None:
        self._end(commit=True)

    def rollback(self) -> None:
        self._end(commit=False)

    def execute(self, *args: Any, **kw: Any) -> Any:
        self.in_transaction = None  # a raw statement may begin or end one
        return super().execute(*args, **kw)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to the engine: aiosqlite connections with :class:`OneHopCursor`."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        if kw.pop("async_fallback", False) or kw.get("async_creator_fn"):
            raise ValueError("checkstack's SQLite driver supports neither fallback nor creators")
        # Inline reads use the connection from the event loop's thread, never at the same time
        # as its own thread: each statement is awaited before the next is sent.
        connection = self.aiosqlite.connect(*arg, **{**kw, "check_same_thread": False})
        connection._thread.daemon = True
        return OneHopConnection(self, await_only(connection))


def dbapi() -> OneHopDBAPI:
    """The module to pass as ``create_async_engine(..., module=dbapi())``."""
    return OneHopDBAPI(aiosqlite, sqlite3)
