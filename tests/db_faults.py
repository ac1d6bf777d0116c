"""Database faults on demand, on SQLite as on PostgreSQL: a statement that fails in the driver.

``failing_statement(engine, "INSERT INTO notes_note")`` makes the next statement starting with
that text raise the driver's own ``OperationalError`` instead of running. With ``lost=True``
SQLAlchemy is told, through its ``handle_error`` hook (where dialects decide the same from the
driver's message), that the failure is the connection dying: it invalidates the connection and
raises ``DBAPIError`` with ``connection_invalidated=True``, exactly as when the server restarts
under a call. Killing a real server-side session needs PostgreSQL (tests/test_transactions.py
does that too); this reaches the same code on every database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class InjectedFault(Exception):
    """Marks the driver error this module raised (so ``handle_error`` touches only it)."""


@contextmanager
def failing_statement(
    engine: AsyncEngine, prefix: str, *, lost: bool = False
) -> Iterator[list[str]]:
    """Fail the next statement starting with ``prefix`` (once); yields the statements failed."""
    sync = engine.sync_engine
    error_class = sync.dialect.loaded_dbapi.OperationalError
    failed: list[str] = []

    def fail(statement: str) -> None:
        if not failed and statement.lstrip().upper().startswith(prefix.upper()):
            failed.append(statement)
            error = error_class("injected: the database connection went away")
            error.__cause__ = InjectedFault()
            raise error

    def do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        fail(statement)
        return False

    def do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        fail(statement)
        return False

    def handle_error(context: Any) -> None:
        if lost and isinstance(context.original_exception.__cause__, InjectedFault):
            context.is_disconnect = True

    hooks = [
        ("do_execute", do_execute),
        ("do_executemany", do_execute),
        ("do_execute_no_params", do_execute_no_params),
        ("handle_error", handle_error),
    ]
    for name, hook in hooks:
        event.listen(sync, name, hook)
    try:
        yield failed
    finally:
        for name, hook in hooks:
            event.remove(sync, name, hook)
