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
            description, rows, lastrowid, rowcount, in_transaction = self.await_(
                self._connection._execute(
                    _run_statement, self._connection._conn, operation, parameters
                )
            )
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

    __slots__ = ("in_transaction",)

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: As SQLite reported after the last statement; ``None`` when unknown.
        self.in_transaction: bool | None = None

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
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True
        return OneHopConnection(self, await_only(connection))


def dbapi() -> OneHopDBAPI:
    """The module to pass as ``create_async_engine(..., module=dbapi())``."""
    return OneHopDBAPI(aiosqlite, sqlite3)
