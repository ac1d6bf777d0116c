"""Cheap SQLite reads run on the event loop's thread, and nothing else does: a read that would
wait for a lock or outgrow its step budget moves to the connection's thread, so the event loop
never waits on SQLite (see ``checkstack_core.sqlite_driver``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from checkstack_core.db import Database

#: A read of about a million VM steps: ten times the inline budget.
LONG_READ = (
    "SELECT count(*) FROM (WITH RECURSIVE r(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 100000) SELECT x FROM r)"
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'inline.db'}")

    @event.listens_for(database.engine.sync_engine, "connect")
    def _thread_probe(dbapi_connection, _record):
        # SQL that names the thread it runs on: the loop's or the connection's own.
        raw = dbapi_connection.driver_connection._conn
        raw.create_function("thread_id", 0, threading.get_ident)
        # A second database in rollback-journal mode, where a writer keeps readers out.
        raw.execute(f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other")

    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE thing (id INTEGER PRIMARY KEY)")
    other.execute("INSERT INTO thing VALUES (1)")
    other.commit()
    other.close()
    async with database.session() as session:
        await (await session.connection()).execute(
            text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        )
        await (await session.connection()).execute(
            text("INSERT INTO item VALUES (1, 'one'), (2, 'two')")
        )
        await session.commit()
    yield database
    await database.dispose()


async def _thread_of(session, sql: str = "SELECT thread_id()") -> int:
    return (await (await session.connection()).execute(text(sql))).scalar_one()


async def test_a_cheap_read_outside_a_transaction_runs_on_the_loop_thread(db):
    async with db.session(read_only=True) as session:
        await _thread_of(session)  # the connection's first statement learns its state
        assert await _thread_of(session) == threading.get_ident()
        rows = (
            await (await session.connection()).execute(
                text("SELECT id, name FROM item ORDER BY id")
            )
        ).all()
        assert [tuple(r) for r in rows] == [(1, "one"), (2, "two")]


async def test_statements_of_a_writing_call_go_through_the_connection_thread(db):
    async with db.session() as session:
        assert await _thread_of(session) != threading.get_ident()
        await (await session.connection()).execute(text("INSERT INTO item VALUES (3, 'three')"))
        assert await _thread_of(session) != threading.get_ident()
        await session.commit()
    async with db.session(read_only=True) as session:
        assert (
            await (await session.connection()).execute(text("SELECT count(*) FROM item"))
        ).scalar_one() == 3


async def test_a_long_read_moves_to_the_connection_thread_and_answers_in_full(db):
    async with db.session(read_only=True) as session:
        await _thread_of(session)
        assert (await (await session.connection()).execute(text(LONG_READ))).scalar_one() == 100_000
        where = await _thread_of(
            session, LONG_READ.replace("SELECT count(*)", "SELECT max(thread_id()) + 0 * count(*)")
        )
        assert where != threading.get_ident()
        # The budget is per statement: the next cheap read is inline again.
        assert await _thread_of(session) == threading.get_ident()


async def test_an_interrupted_read_restores_the_connection(db):
    async with db.session(read_only=True) as session:
        await _thread_of(session)
        await (await session.connection()).execute(text(LONG_READ))
        conn = (await (await session.connection()).get_raw_connection()).dbapi_connection
        timeout = conn.driver_connection._conn.execute("PRAGMA busy_timeout").fetchone()[0]
        assert timeout == conn.busy_timeout_ms > 0


async def test_a_read_blocked_by_a_lock_waits_in_its_thread_not_on_the_loop(db, tmp_path):
    # A writer holding an exclusive lock on a rollback-journal database keeps readers out until
    # it commits: the read must wait for it without stopping the event loop.
    holder = sqlite3.connect(tmp_path / "other.db", isolation_level=None, check_same_thread=False)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        async with db.session(read_only=True) as session:
            conn = await session.connection()
            await conn.execute(text("SELECT 1"))  # learns that no transaction is open
            holder.execute("BEGIN EXCLUSIVE")
            holder.execute("INSERT INTO thing VALUES (2)")
            threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
            read = asyncio.create_task(conn.execute(text("SELECT count(*) FROM other.thing")))
            await asyncio.sleep(0.3)
            assert not read.done()
            assert ticks >= 10  # the loop kept running while the read waited
            assert (await asyncio.wait_for(read, 10)).scalar_one() == 2
            assert await _thread_of(session) == threading.get_ident()  # and inline again
    finally:
        ticking.cancel()
        holder.close()


async def test_in_memory_databases_keep_every_statement_in_the_thread():
    database = Database("sqlite:///:memory:")
    try:
        async with database.session(read_only=True) as session:
            await (await session.connection()).execute(text("SELECT 1"))
            conn = (await (await session.connection()).get_raw_connection()).dbapi_connection
            assert conn.inline_reads is False
    finally:
        await database.dispose()
